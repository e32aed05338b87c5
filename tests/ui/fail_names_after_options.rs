#[relukko::locked(timeout = "1m", "ui-rig")]
fn late_name() {}

fn main() {}
