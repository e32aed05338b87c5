use relukko::Lease;

#[relukko::locked(any_of("ui-rig-1", "ui-rig-2"))]
fn two(first: Lease, second: relukko::Lease) {
    let _ = (first, second);
}

fn main() {}
