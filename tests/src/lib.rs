//! Support code shared by the end-to-end suites: fault-injecting proxies, TLS fixtures, child processes.

pub mod browser;
pub mod history;
pub mod imports;
pub mod proxy;
pub mod raw;
pub mod temp;
pub mod tls;
