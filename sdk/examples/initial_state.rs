//! Prints what `getState()` shows before any data, as JSON: the package
//! build writes it into `pkg/initial-state.js` (the React layer's state
//! before a service exists), so it comes from the SDK and is never restated
//! in TypeScript, and the wasm does not carry a function only the build uses.

fn main() {
    let state = provider_sync_sdk::view::ProviderSyncClientState::initial();
    println!(
        "{}",
        serde_json::to_string(&state).expect("plain data serializes")
    );
}
