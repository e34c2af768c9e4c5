//! The host application: `cargo run -p provider-sync-embedded-example`, then
//! open http://127.0.0.1:3000/ and http://127.0.0.1:3000/catalog/api/state.

use provider_sync_embedded_example::build;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let (app, sync) = build("sqlite://embedded-example.db").await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("host application on http://127.0.0.1:3000/ (catalog at /catalog/api)");
    // The application's own shutdown (Ctrl-C) stops provider-sync too: its
    // WebSocket clients get a close frame, then the listener stops.
    let stopped = sync.shutdown_signal();
    let serving = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
    });
    tokio::signal::ctrl_c().await?;
    // Starts the graceful shutdown above; once the listener has finished its
    // requests, provider-sync lets go of its store.
    sync.begin_shutdown();
    serving.await??;
    sync.shutdown().await;
    Ok(())
}
