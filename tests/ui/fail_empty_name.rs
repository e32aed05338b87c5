#[relukko::locked("")]
fn flashes_firmware() {}

fn main() {}
