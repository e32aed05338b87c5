#[relukko::locked("ui-rig", timout = "10m")]
fn typo() {}

#[relukko::locked("ui-rig", retries = 3)]
fn unknown() {}

fn main() {}
