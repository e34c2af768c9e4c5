//! Prints a generated catalog file (default 50 providers × 2,000 models).

use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    size: provider_sync_bench::catalog::CatalogSize,
}

fn main() {
    let args = Args::parse();
    print!(
        "{}",
        provider_sync_bench::catalog::catalog_toml(args.size.providers, args.size.models)
    );
}
