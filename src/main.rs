//! The `ledgerline` binary: parse the command line and hand over to [`ledgerline::cli`].
/// mimalloc rather than glibc's allocator: a request allocates and frees many small buffers on
/// one thread and hands some to another (JSON, messages between actors); see docs/benchmarks.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ledgerline::cli::main()
}
