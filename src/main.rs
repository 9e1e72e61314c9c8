//! The `trawl` binary: parse the command line, set up logging, run.

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    trawl::memory::tune_allocator();
    let args = match trawl::config_file::expand(std::env::args_os().collect()) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("trawl: {msg}");
            return ExitCode::from(trawl::app::EXIT_USAGE);
        }
    };
    let cli = trawl::cli::Cli::parse_from(args);
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "trawl=debug,info",
        (false, _) => "trawl=trace,debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Log lines and the progress bar share stderr through this.
    let stderr = trawl::progress::Stderr::default();
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(stderr.clone())
        .with_ansi(trawl::progress::colour_on_stderr())
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("trawl: cannot start the async runtime: {e}");
            return ExitCode::from(trawl::app::EXIT_FAILURE);
        }
    };
    let code = runtime.block_on(trawl::app::run(cli, stderr));
    // Don't wait for stray blocking tasks (a parse of a huge page) at exit.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
