//! The `ledgerline` binary: parse the command line and hand over to [`ledgerline::cli`].
fn main() -> std::process::ExitCode {
    ledgerline::cli::main()
}
