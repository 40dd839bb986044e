//! `phlix-hub` binary: parses the command line and hands over to the library.

use clap::Parser;

// glibc's malloc keeps what a burst freed (per-thread arenas, a heap top pinned by live
// chunks, 19 MiB Argon2 blocks moved off mmap by its sliding threshold), so the hub stayed
// hundreds of MB resident after one. jemalloc's background threads (the `background_threads`
// feature of tikv-jemallocator) purge freed pages within seconds, with no allocation activity
// needed to trigger it; the 1 s decay is compiled in from .cargo/config.toml (BENCHMARKS.md,
// "Memory after an abuse burst").
#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = phlix_hub::cli::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("phlix-hub: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(phlix_hub::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "phlix-hub failed");
            eprintln!("phlix-hub: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
