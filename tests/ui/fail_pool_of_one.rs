#[relukko::locked(any_of("ui-rig-1"))]
fn lonely() {}

fn main() {}
