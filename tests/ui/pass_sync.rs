use relukko::{Lease, locked};

#[locked("ui-pass-one")]
fn one() -> u32 {
    1
}

#[locked(
    "ui-pass-b",
    "ui-pass-a",
    timeout = "1m",
    lease = "30s",
    creator = "trybuild"
)]
fn several() {}

#[locked]
fn derived(lease: Lease) {
    let _ = lease.name();
}

#[locked(any_of("ui-pass-pool-1", "ui-pass-pool-2"))]
fn pool(lease: relukko::Lease) -> String {
    lease.name().to_owned()
}

#[locked("ui-pass-result")]
fn result() -> Result<u8, std::num::ParseIntError> {
    let n: u8 = "5".parse()?;
    if n == 5 {
        return Ok(n);
    }
    Ok(0)
}

#[locked("ui-pass-impl")]
fn opaque() -> impl std::fmt::Debug {
    "opaque"
}

fn main() {
    assert_eq!(one(), 1);
    several();
    derived();
    let _ = pool();
    assert_eq!(result(), Ok(5));
    let _ = format!("{:?}", opaque());
}
