//! The `ledgerline` binary: parse the command line and hand over to [`ledgerline::cli`].
/// mimalloc rather than glibc's allocator: a request allocates and frees many small buffers on
/// one thread and hands some to another (JSON, messages between actors). Its `override` feature
/// also gives it the C code's `malloc`/`free` (SQLite's records and statement journal, libpq):
/// 4–8 % less writer CPU in a 1M-row import, for ~80 MiB more peak memory there; see
/// docs/benchmarks.md, session 10.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long mimalloc keeps freed memory before giving it back to the OS, in milliseconds (its
/// default is 1,000). An import builds and drops hundreds of MiB per 100k-row chunk, a second or
/// so apart: with the default, that memory went back to the OS and was faulted in and zeroed
/// again for the next chunk (`clear_page_erms` was a fifth of the import's parse-and-check
/// thread). Ten seconds keeps it for the whole import and still returns it soon after.
const PURGE_DELAY_MS: &str = "10000";

fn main() -> std::process::ExitCode {
    tune_allocator();
    ledgerline::cli::main()
}

/// mimalloc reads its options from the environment as the process loads, before `main`, and
/// offers no safe call to change them later. So, unless the operator has chosen a purge delay
/// already, the binary runs itself again (same process id, arguments and environment) with
/// [`PURGE_DELAY_MS`] set. If that `exec` fails, it goes on with mimalloc's defaults.
fn tune_allocator() {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let mut command = std::process::Command::new(exe);
        if let Some(arg0) = args.next() {
            command.arg0(arg0);
        }
        // Only returns on failure.
        let _ = command
            .args(args)
            .env("MIMALLOC_PURGE_DELAY", PURGE_DELAY_MS)
            .exec();
    }
}
