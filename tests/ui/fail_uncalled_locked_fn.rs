// A `#[locked]` function without a test attribute is an ordinary function:
// when nothing calls it (a test whose `#[test]` was forgotten), rustc's
// `dead_code` warning names it, here denied to make it an error. The
// attribute cannot tell this itself: it never sees the call sites.
#![deny(dead_code)]

#[relukko::locked("ui-rig")]
fn forgot_its_test_attribute() {}

#[relukko::locked("ui-rig", timeout = "1m")]
async fn async_too() {}

fn main() {}
