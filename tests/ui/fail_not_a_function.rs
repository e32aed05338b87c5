#[relukko::locked("ui-rig")]
struct Rig {
    port: u16,
}

#[relukko::locked("ui-rig")]
const PORT: u16 = 7;

fn main() {
    // Both items are still emitted unchanged, so uses of them type-check.
    let _ = Rig { port: PORT }.port;
}
