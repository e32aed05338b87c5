//! `relukko`: hold a Relukko lock while a command runs, and see or free the
//! locks others hold. Run `relukko --help`; it reads the same `RELUKKO_*`
//! settings as the library.

#[cfg(unix)]
fn main() -> std::process::ExitCode {
    relukko_cli::main()
}

#[cfg(not(unix))]
fn main() -> std::process::ExitCode {
    eprintln!("relukko: the command line needs a Unix system (it passes signals on to CMD)");
    std::process::ExitCode::from(125)
}
