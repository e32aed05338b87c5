#[relukko::locked("ui-rig", crate = "relukko")]
fn string_path() {}

fn main() {}
