const RIG: &str = "ui-rig";

#[relukko::locked(42)]
fn number() {}

#[relukko::locked(RIG)]
fn constant() {}

fn main() {
    let _ = RIG;
}
