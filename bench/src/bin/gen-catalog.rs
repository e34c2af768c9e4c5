//! Prints a generated catalog file (default 50 providers × 2,000 models).

use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    #[arg(long, default_value_t = 50)]
    providers: usize,
    #[arg(long, default_value_t = 2000)]
    models: usize,
}

fn main() {
    let args = Args::parse();
    print!(
        "{}",
        provider_sync_bench::catalog::catalog_toml(args.providers, args.models)
    );
}
