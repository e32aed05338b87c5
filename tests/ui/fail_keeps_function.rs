// On a bad attribute the function is still emitted unchanged: the only
// error is the attribute's, not "cannot find function `rig_port`".
#[relukko::locked("ui-rig", timout = "1m")]
fn rig_port() -> u16 {
    7
}

fn main() {
    let _port: u16 = rig_port();
}
