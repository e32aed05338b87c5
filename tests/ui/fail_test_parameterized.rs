// `#[relukko::test]` makes a plain test: a parameterized one (`rstest`)
// takes `#[relukko::locked]` above its own attribute, and a parameter other
// than the `Lease` is an error, as on any `#[test]`.
use rstest::rstest;

#[relukko::test("ui-rig")]
#[rstest]
#[case(1)]
fn cases(#[case] x: u32) {
    let _ = x;
}

#[relukko::test("ui-rig")]
fn takes_a_number(n: u32) {
    let _ = n;
}

fn main() {}
