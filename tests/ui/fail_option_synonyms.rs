// Words from other lock tools, and other languages' syntax, name the fix.

#[relukko::locked(name = "hil-rig-3")]
#[test]
fn name_is_positional() {}

#[relukko::locked("hil-rig-3", max_run_time = "10m")]
#[test]
fn python_clients_word() {}

#[relukko::locked("hil-rig-3", ttl = "60s")]
#[test]
fn ttl_means_lease() {}

#[relukko::locked("hil-rig-3", timeout: "10m")]
#[test]
fn colon_instead_of_equals() {}

fn main() {}
