//! Prints a generated catalog file (default 50 providers × 2,000 models).

use clap::Parser;

#[derive(Debug, Parser)]
struct Args {
    #[command(flatten)]
    size: provider_sync_bench::catalog::CatalogSize,
    /// Raise every input price by this many dollars (every model changed).
    #[arg(long, default_value_t = 0)]
    raise: usize,
}

fn main() {
    let args = Args::parse();
    print!(
        "{}",
        provider_sync_bench::catalog::catalog_toml_priced(
            args.size.providers,
            args.size.models,
            args.raise
        )
    );
}
