use relukko::{Lease, locked};

#[locked("ui-pass-async")]
async fn with_lease(lease: Lease) -> Result<usize, std::num::ParseIntError> {
    let _ = lease.name();
    let n: usize = "3".parse()?;
    Ok(n)
}

#[locked(any_of("ui-pass-apool-1", "ui-pass-apool-2"), timeout = "1m")]
async fn pool() {}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(with_lease()), Ok(3));
    rt.block_on(pool());
}
