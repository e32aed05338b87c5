#[relukko::locked(any_of())]
fn empty_pool() {}

fn main() {}
