#[relukko::locked("ui-rig", timeout = "1m", lease = "60s", timeout = "2m")]
fn twice() {}

fn main() {}
