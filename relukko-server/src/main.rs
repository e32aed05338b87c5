//! `relukko-server`: a Relukko-compatible lock server that keeps its locks in
//! memory. Run `relukko-server --help` for its settings; it needs
//! `RELUKKO_API_KEY`.

fn main() -> std::process::ExitCode {
    relukko_server::cli::main()
}
