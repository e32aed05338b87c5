// `#[relukko::test]` takes `#[locked]`'s arguments, with its messages.
#[relukko::test("ui-rig", timout = "10m")]
fn typo() {}

#[relukko::test("ui-rig", flavor = "multi_thread")]
async fn flavor() {}

#[relukko::test("ui-rig")]
struct NotAFunction;

fn main() {}
