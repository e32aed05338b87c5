#[relukko::locked("ui-rig", lease = "2s")]
fn short() {}

fn main() {}
