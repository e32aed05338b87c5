#[relukko::locked("ui-rig", timeout)]
fn bare() {}

#[relukko::locked("ui-rig", lease =)]
fn empty() {}

fn main() {}
