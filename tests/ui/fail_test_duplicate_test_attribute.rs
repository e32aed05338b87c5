// `#[relukko::test]` is the test attribute: another one below it is an
// error at that attribute (the function would be two tests). (`#[test]`
// written above it expands first and leaves no trace on the function: that
// order cannot be told, see the rustdoc of `relukko::test`.)
#[relukko::test("ui-rig")]
#[test]
fn twice() {}

// `#[tokio::test]` below it: the function would get two runtimes.
#[relukko::test("ui-rig")]
#[tokio::test]
async fn two_runtimes() {}

fn main() {}
