#[relukko::locked("ui-a", "ui-b", "ui-a")]
fn twice() {}

fn main() {}
