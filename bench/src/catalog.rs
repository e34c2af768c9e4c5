//! A synthetic catalog shaped like a real one (ids, names, prices, a share of
//! deprecated models), in the catalog file format.

use std::fmt::Write;

/// The size of a generated catalog, as command-line flags.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct CatalogSize {
    #[arg(long, default_value_t = 50)]
    pub providers: usize,
    #[arg(long, default_value_t = 2000)]
    pub models: usize,
}

/// `providers` providers with `models` models spread over them.
pub fn catalog_toml(providers: usize, models: usize) -> String {
    catalog_toml_priced(providers, models, 0)
}

/// `catalog_toml` with every input price raised by `raise` dollars: the
/// same catalog with every model changed, for a reload that emits one event
/// per model.
pub fn catalog_toml_priced(providers: usize, models: usize, raise: usize) -> String {
    let mut out = String::from("active_provider_id = \"provider-000\"\n");
    for p in 0..providers {
        let _ = write!(
            out,
            "\n[[providers]]\nid = \"provider-{p:03}\"\nname = \"provider-{p:03}\"\ndisplay_name = \"Provider {p}\"\n\
             provider_type = \"openai_compatible\"\nbase_url = \"https://api.provider-{p:03}.example/v1\"\n\
             priority = {}\ncapabilities = [\"chat\", \"streaming\", \"function_calling\"]\n",
            100 - (p % 100)
        );
    }
    for m in 0..models {
        let provider = m % providers.max(1);
        let deprecated = m % 10 == 9;
        let _ = write!(
            out,
            "\n[[models]]\nid = \"model-{m:05}\"\nprovider_id = \"provider-{provider:03}\"\nname = \"Model {m} Large\"\n\
             context_window = {}\nmax_output_tokens = 8192\nsupports_streaming = true\nsupports_vision = {}\n\
             supports_function_calling = true\nsupports_json_mode = {}\n\
             pricing = {{ input_per_million = {}.25, output_per_million = {}.5 }}\n",
            32_768 << (m % 4),
            m % 2 == 0,
            m % 3 == 0,
            1 + m % 7 + raise,
            2 + m % 11,
        );
        if deprecated {
            let _ = write!(
                out,
                "deprecation_date = \"2026-06-01\"\nsunset_date = \"2027-06-01\"\nreplacement_model_id = \"model-{:05}\"\n",
                m - 1
            );
        }
    }
    out
}
