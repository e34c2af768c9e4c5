//! Rebuilds the SDK when its JavaScript snippet changes: wasm-bindgen reads
//! `js/host.js` while compiling the crate (the glue imports it), and cargo
//! would not otherwise know the crate depends on it.

fn main() {
    println!("cargo:rerun-if-changed=js/host.js");
}
