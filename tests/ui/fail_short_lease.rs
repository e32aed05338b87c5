#[relukko::locked("ui-rig", lease = "1s")]
fn short() {}

fn main() {}
