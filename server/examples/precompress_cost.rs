//! What `GET /state`'s precompression costs per version: for each state
//! JSON file given (for example saved from `GET /state`), its size, its
//! brotli (quality 11) and gzip (level 9) sizes, and the CPU time of
//! compressing it both ways (median of 5).
//!
//!   cargo run --release -p provider-sync-server --example precompress_cost -- FILE...

use std::time::Instant;

fn main() {
    println!("| state | JSON | brotli 11 | gzip 9 | CPU per version (median of 5) |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for path in std::env::args().skip(1) {
        let json = std::fs::read(&path).expect("a readable file");
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..5 {
            let started = Instant::now();
            last = Some(provider_sync_server::precompress::compress(&json));
            times.push(started.elapsed().as_secs_f64() * 1000.0);
        }
        times.sort_by(f64::total_cmp);
        let done = last.expect("five runs");
        println!(
            "| {path} | {} | {} | {} | {:.0} ms ({:.0}–{:.0}) |",
            json.len(),
            done.br.len(),
            done.gzip.len(),
            times[2],
            times[0],
            times[4]
        );
    }
}
