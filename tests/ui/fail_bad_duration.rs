#[relukko::locked("ui-rig", timeout = "ten minutes")]
fn words() {}

#[relukko::locked("ui-rig", timeout = 90)]
fn unquoted() {}

fn main() {}

#[relukko::locked("ui-rig", lease = "10 minuts")]
fn unit_typo() {}
