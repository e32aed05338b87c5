//! Support code shared by the end-to-end suites: fault-injecting proxies, TLS fixtures, child processes.
