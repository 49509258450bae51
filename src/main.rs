//! The `geoward` binary: a thin command line over the library.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use geoward::app::Application;
use geoward::config::Config;

/// Many small allocations per fix (frames, JSON, batches): mimalloc spends far less time in
/// them than glibc's malloc, which was the largest single cost in the server's profile.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "geoward",
    version,
    about = "GPS location supervision for community corrections"
)]
struct Cli {
    /// A TOML file overriding the built-in defaults (see `geoward config`).
    #[arg(long, global = true, env = "GEOWARD_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations and serve until SIGTERM or SIGINT.
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the commented default configuration.
    Config,
}

fn main() -> anyhow::Result<()> {
    limit_malloc_arenas();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run())
}

/// glibc gives every thread that allocates its own arena, and an idle connection's few
/// allocations, spread over many arenas, pin far more memory than they use (measured: 6.3 KiB
/// per idle device connection with the default arenas, 4.7 KiB with two). Two arenas serve a
/// runtime of a few worker threads without contention that shows in the ingest benchmark.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator tuning; it is called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Command::Config = cli.command {
        print!("{}", geoward::config::DEFAULT_CONFIG);
        return Ok(());
    }
    let config = Config::load(cli.config.as_deref()).context("loading configuration")?;
    geoward::telemetry::init(&config.log);
    match cli.command {
        Command::Serve => {
            geoward::app::raise_open_files_limit(config.ingest.max_connections);
            let app = Application::build(config)
                .await
                .context("starting geoward")?;
            let shutdown = CancellationToken::new();
            tokio::spawn(signal_on_termination(shutdown.clone()));
            app.run(shutdown).await.context("serving")?;
        }
        Command::Migrate => {
            let pool = geoward::store::connect(&config.database)?;
            geoward::store::migrate(&pool).await.context("migrating")?;
            println!("migrations applied");
        }
        Command::Config => {}
    }
    Ok(())
}

/// Cancels `shutdown` on SIGTERM or SIGINT.
async fn signal_on_termination(shutdown: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested; draining");
    shutdown.cancel();
}
