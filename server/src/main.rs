//! `provider-sync-server`: parse the flags, start, serve until Ctrl-C or
//! SIGTERM, then shut down gracefully.

use clap::Parser;
use provider_sync_server::config::Command;
use provider_sync_server::{Config, StartError, cli, shutdown};
use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    // An empty variable counts as not set (a deployment template writes
    // `PROVIDER_SYNC_CATALOG=` for "none"): clap would refuse it as a
    // missing value of the flag.
    for (name, value) in std::env::vars_os() {
        let ours = name
            .to_str()
            .is_some_and(|n| n.starts_with("PROVIDER_SYNC_") || n == "DATABASE_URL");
        if ours && value.is_empty() {
            // SAFETY: no other thread runs yet: the runtime starts below.
            unsafe { std::env::remove_var(&name) };
        }
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts")
        .block_on(run())
}

async fn run() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let mut config = match Config::try_parse() {
        Ok(config) => config,
        Err(err) if !err.use_stderr() => err.exit(),
        Err(err) => {
            let _ = err.print();
            environment_notes(&err.to_string());
            std::process::exit(err.exit_code());
        }
    };
    match config.command.take() {
        Some(Command::Catalog(tool)) => {
            let code = cli::run(tool, &mut std::io::stdout()).await;
            return std::process::ExitCode::from(code);
        }
        Some(Command::Store(tool)) => {
            let code = cli::store(tool, &mut std::io::stdout()).await;
            return std::process::ExitCode::from(code);
        }
        Some(Command::Backup { database, out }) => {
            let code = cli::backup(&database, &out, &mut std::io::stdout()).await;
            return std::process::ExitCode::from(code);
        }
        None => {}
    }
    let drain = std::time::Duration::from_millis(config.shutdown_timeout_ms);
    let store_shown = provider_sync_server::store::without_password(&config.database);
    // Caught from here on: a signal sent as soon as the server says it
    // listens shuts it down (it could kill it before the first wait).
    let mut signals = shutdown::OsSignals::new();
    #[cfg(unix)]
    if config.catalog.is_none() {
        // SIGHUP reloads the catalog file; without one its default would
        // end the process (a service manager's `kill -HUP` reload, a log
        // rotation's hook).
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut hangups) = signal(SignalKind::hangup()) {
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    tracing::warn!("SIGHUP: no --catalog to reload; ignored");
                }
            });
        }
    }
    // With a catalog, SIGHUP reloads it, but the listener that does is
    // started with the server: until then (a store lock waited for, a long
    // catalog import) the signal's default action ended the process. Caught
    // from here on; one heard during the start is raised again once the
    // server runs, so the file is read again (it may have changed after the
    // start read it).
    #[cfg(unix)]
    let mut early_hangups = config.catalog.is_some().then(|| {
        use tokio::signal::unix::{SignalKind, signal};
        signal(SignalKind::hangup()).ok()
    });
    // A signal during the start (a store lock waited for, a long catalog
    // import) stops it there, as it did before it was caught.
    let started = tokio::select! {
        started = provider_sync_server::start(config) => started,
        () = signals.recv() => {
            eprintln!("provider-sync-server: stopped by a signal before it started");
            // At once: returning would drop the runtime, which waits for
            // its blocking tasks (the wait for a store's lock).
            std::process::exit(1);
        }
    };
    let server = match started {
        Ok(server) => server,
        Err(err) => {
            match &err {
                // Which store: the error alone may not say (SQLite's "file
                // is not a database", a refused connection).
                StartError::Store(inner) if !inner.to_string().contains(&store_shown) => {
                    eprintln!("provider-sync-server: cannot open the store {store_shown}: {inner}")
                }
                _ => eprintln!("provider-sync-server: {err}"),
            }
            environment_notes(&err.to_string());
            return match err {
                StartError::Catalog(_) => std::process::ExitCode::from(2),
                _ => std::process::ExitCode::FAILURE,
            };
        }
    };
    #[cfg(unix)]
    if let Some(Some(hangups)) = &mut early_hangups {
        use futures_util::FutureExt;
        // A signal that came since the listener was made is still there to
        // be taken, heard or not.
        if hangups.recv().now_or_never().is_some() {
            tracing::info!("SIGHUP during the start: the catalog is read again");
            // The catalog's own listener runs now, and hears it.
            // SAFETY: `raise` only sends the process a signal, whose
            // handler (tokio's) is installed.
            unsafe { libc::raise(libc::SIGHUP) };
        }
    }
    println!("provider-sync-server listening on {}", server.base_url());
    signals.recv().await;
    tracing::info!("shutting down (a second Ctrl-C or SIGTERM exits at once)");
    // Exit code 1 when requests in flight were cut short: at the shutdown
    // timeout, or by a second signal.
    tokio::select! {
        stopped = tokio::time::timeout(drain, server.stop()) => {
            if stopped.is_err() {
                tracing::warn!(
                    timeout_ms = drain.as_millis() as u64,
                    "requests still in flight at the shutdown timeout; exiting anyway"
                );
                return std::process::ExitCode::FAILURE;
            }
        }
        () = signals.recv() => {
            tracing::warn!("a second signal: exiting without waiting for requests in flight");
            // At once: returning would drop the runtime, which waits for
            // its blocking tasks (a precompression, a catalog read).
            std::process::exit(1);
        }
    }
    std::process::ExitCode::SUCCESS
}

/// After an error that names flags, the environment variables that gave
/// any of them (not the command line).
fn environment_notes(message: &str) {
    let args: Vec<_> = std::env::args_os().collect();
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    for note in provider_sync_server::config::from_environment(message, &args, set) {
        eprintln!("provider-sync-server: note: {note}");
    }
}
