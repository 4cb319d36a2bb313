//! The `ledgerline` binary: parse the command line and hand over to [`ledgerline::cli`].
/// mimalloc rather than glibc's allocator: a request allocates and frees many small buffers on
/// one thread and hands some to another (JSON, messages between actors). Its `override` feature
/// also gives it the C code's `malloc`/`free` (SQLite's records and statement journal, libpq):
/// 4–8 % less writer CPU in a 1M-row import, for ~80 MiB more peak memory there; see
/// docs/benchmarks.md, session 10.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ledgerline::cli::main()
}
