#[relukko::locked("ui-db", any_of("ui-rig-1", "ui-rig-2"))]
fn mixed() {}

fn main() {}
