#[relukko::locked("ui-rig", timeout = "0s")]
fn no_wait() {}

fn main() {}
