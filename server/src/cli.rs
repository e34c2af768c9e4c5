//! `provider-sync-server catalog check FILE` and `catalog diff FILE`: a
//! catalog file checked, and the events a reconcile would emit (like
//! `terraform plan`), without changing anything; `store copy` and `backup`.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use provider_sync_protocol::{EventPayload, SyncEvent, SyncState};
use serde_json::Value;

use crate::catalog::{Catalog, LoadOptions};
use crate::config::{CatalogCommand, StoreCommand};
use crate::service::Draft;
use crate::store::{PostgresStore, SqliteStore, is_postgres, without_password};

/// Exit codes of the catalog tools.
pub const NOTHING_TO_CHANGE: u8 = 0;
pub const CHANGES: u8 = 1;
pub const INVALID: u8 = 2;

/// Runs one catalog tool; returns its exit code.
pub async fn run(command: CatalogCommand, out: &mut impl Write) -> u8 {
    match command {
        CatalogCommand::Check { file, source } => check(&file, &source.options(), out),
        CatalogCommand::Diff {
            file,
            database,
            source,
        } => diff(&file, &database, &source.options(), out).await,
    }
}

fn load(file: &Path, options: &LoadOptions) -> Result<Catalog, u8> {
    Catalog::load_with(file, options).map_err(|err| {
        eprintln!("provider-sync-server: catalog refused: {err}");
        INVALID
    })
}

fn check(file: &Path, options: &LoadOptions, out: &mut impl Write) -> u8 {
    let catalog = match load(file, options) {
        Ok(catalog) => catalog,
        Err(code) => return code,
    };
    let deprecated = catalog.models.iter().filter(|m| m.is_deprecated()).count();
    let _ = writeln!(
        out,
        "{}: valid: {} providers, {} models ({} deprecated){}",
        file.display(),
        catalog.providers.len(),
        catalog.models.len(),
        deprecated,
        match (catalog.revision, catalog.modified) {
            (Some(r), _) => format!(", revision {r}"),
            (None, Some(m)) => format!(", modified at {m} s (its revision)"),
            (None, None) => String::new(),
        }
    );
    report(&catalog, out);
    NOTHING_TO_CHANGE
}

fn report(catalog: &Catalog, out: &mut impl Write) {
    let report = &catalog.report;
    if report.entries > 0 {
        let _ = writeln!(
            out,
            "  {} entries read, {} left out by --catalog-modes/--catalog-providers; {} skipped (entries, and providers their entries name)",
            report.entries,
            report.filtered,
            report.skipped_count()
        );
    }
    for (reason, count, first) in &report.skipped {
        let _ = writeln!(
            out,
            "  skipped {count}: {reason} (first: {})",
            first.join(", ")
        );
    }
    for (reason, count, first) in &report.adjusted {
        let _ = writeln!(
            out,
            "  imported {count} with a change: {reason} (first: {})",
            first.join(", ")
        );
    }
}

/// The store URL a tool was given, normalized (`normalized_url`), or the
/// refusal printed (exit code 2).
fn store_url(flag: &str, url: &str) -> Result<String, u8> {
    crate::store::normalized_url(url).map_err(|err| {
        eprintln!("provider-sync-server: {flag}: {err}");
        INVALID
    })
}

async fn diff(file: &Path, database: &str, options: &LoadOptions, out: &mut impl Write) -> u8 {
    let database = match store_url("--database (DATABASE_URL)", database) {
        Ok(url) => url,
        Err(code) => return code,
    };
    let database = database.as_str();
    let catalog = match load(file, options) {
        Ok(catalog) => catalog,
        Err(code) => return code,
    };
    let loaded = if is_postgres(database) {
        PostgresStore::peek(database).await
    } else {
        SqliteStore::peek(database).await
    };
    let shown = without_password(database);
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("provider-sync-server: cannot read the store {shown}: {err}");
            return INVALID;
        }
    };
    let (state, applied) = match loaded {
        None => {
            let _ = writeln!(out, "no store at {shown} yet: a new store would be seeded");
            (SyncState::default(), None)
        }
        Some(loaded) => {
            let (state, _, record) = crate::service::state_of(loaded);
            let applied = record
                .as_deref()
                .and_then(|json| serde_json::from_str::<Catalog>(json).ok())
                .map(Arc::new);
            (state, applied)
        }
    };
    let before = state.clone();
    let mut draft = Draft::scratch(state, applied);
    let done = catalog.reconcile(&mut draft);
    if let crate::catalog::Outcome::Older {
        file: f,
        stored,
        by_time,
    } = done.outcome
    {
        let _ = if by_time {
            writeln!(
                out,
                "{}: its LiteLLM file (modified at {f}, Unix seconds) is older than the one applied (modified at {stored}): a reconcile applies nothing ({})",
                file.display(),
                crate::catalog::OLDER_BY_TIME_HINT
            )
        } else {
            writeln!(
                out,
                "{}: revision {f} is older than the applied revision {stored}: a reconcile applies nothing",
                file.display()
            )
        };
        return NOTHING_TO_CHANGE;
    }
    for event in draft.events() {
        let _ = writeln!(out, "{}", describe(&before, event));
    }
    let _ = writeln!(
        out,
        "Plan: {} to add, {} to change, {} to remove ({} events); {} admin edits kept.",
        done.added, done.updated, done.removed, done.events, done.kept_edits
    );
    if done.revision_unchanged {
        let _ = writeln!(out, "Warning: {}.", crate::catalog::REVISION_UNCHANGED);
    }
    if done.pending > 0 {
        let more = done.pending.saturating_sub(done.pending_ids.len());
        let _ = writeln!(
            out,
            "{} of the file's entries not applied in full ({}{}): their values do not pass the checks, name an entity that is not there, or would take a provider past its bound on models; tried again by the next reconcile.",
            done.pending,
            done.pending_ids.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
    if done.events == 0 {
        NOTHING_TO_CHANGE
    } else {
        CHANGES
    }
}

/// One line per event: `+` added, `~` changed (with the fields), `-` removed.
fn describe(before: &SyncState, event: &SyncEvent) -> String {
    let kind = event.event_type();
    let kind = serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default();
    match &event.payload {
        EventPayload::ProviderAdded(p) => format!("+ {kind} {}", p.id),
        EventPayload::ModelAdded(m) => format!("+ {kind} {}", m.id),
        EventPayload::ProviderRemoved(r) => format!(
            "- {kind} {} (with {} models)",
            r.provider_id,
            r.model_ids.len()
        ),
        EventPayload::ModelRemoved(r) => format!("- {kind} {}", r.model_id),
        EventPayload::ProviderUpdated(p) => format!(
            "~ {kind} {}{}",
            p.id,
            fields(
                before.provider(&p.id),
                p,
                &["revision", "model_ids", "status", "health"]
            )
        ),
        EventPayload::ModelUpdated(m) | EventPayload::ModelDeprecated(m) => format!(
            "~ {kind} {}{}",
            m.id,
            fields(before.model(&m.id), m, &["revision"])
        ),
        EventPayload::ActiveProviderChanged(c) => format!(
            "~ {kind} active={} default={}",
            c.active_provider_id.as_deref().unwrap_or("none"),
            c.default_provider_id.as_deref().unwrap_or("none")
        ),
        _ => format!("~ {kind}"),
    }
}

/// `: field: old -> new, …` for the fields that differ.
fn fields<T: serde::Serialize>(before: Option<&T>, after: &T, skip: &[&str]) -> String {
    let Some(before) = before else {
        return String::new();
    };
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return String::new();
    };
    let mut changes = Vec::new();
    for key in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
        if skip.contains(&key.as_str()) {
            continue;
        }
        let (old, new) = (a.get(key), b.get(key));
        if old != new {
            let show = |v: Option<&Value>| v.map_or("absent".to_owned(), Value::to_string);
            changes.push(format!("{key}: {} -> {}", show(old), show(new)));
        }
    }
    if changes.is_empty() {
        String::new()
    } else {
        format!(": {}", changes.join(", "))
    }
}

/// Runs one store tool; returns its exit code (0 done, 2 refused).
pub async fn store(command: StoreCommand, out: &mut impl Write) -> u8 {
    let StoreCommand::Copy { from, to } = command;
    let (from, to) = match (store_url("--from", &from), store_url("--to", &to)) {
        (Ok(from), Ok(to)) => (from, to),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    if !is_postgres(&to) {
        eprintln!("provider-sync-server: store copy writes to PostgreSQL (--to postgres://…)");
        return INVALID;
    }
    let loaded = match SqliteStore::peek_exclusive(&from).await {
        Ok(Some(loaded)) => loaded,
        Ok(None) => {
            eprintln!("provider-sync-server: no SQLite store at {from}");
            return INVALID;
        }
        Err(err) => {
            eprintln!("provider-sync-server: cannot read {from}: {err}");
            return INVALID;
        }
    };
    // Into a database of its own: tables of another application beside the
    // store's were taken for an empty database.
    match PostgresStore::other_tables(&to).await {
        Ok(others) if !others.is_empty() => {
            eprintln!(
                "provider-sync-server: store copy refused: {} holds other tables ({}); copy into a new, empty database",
                without_password(&to),
                others.join(", ")
            );
            return INVALID;
        }
        Ok(_) => {}
        Err(err) => {
            eprintln!(
                "provider-sync-server: cannot open {}: {err}",
                without_password(&to)
            );
            return INVALID;
        }
    }
    let target = match PostgresStore::open(&to).await {
        Ok(target) => target,
        Err(err) => {
            eprintln!(
                "provider-sync-server: cannot open {}: {err}",
                without_password(&to)
            );
            return INVALID;
        }
    };
    match target.import(&loaded).await {
        Ok(()) => {
            let _ = writeln!(
                out,
                "copied epoch {} at version {}: {} providers, {} models, {} events",
                loaded.epoch,
                loaded.version,
                loaded.providers.len(),
                loaded.models.len(),
                loaded.log.len()
            );
            NOTHING_TO_CHANGE
        }
        Err(err) => {
            eprintln!("provider-sync-server: store copy refused: {err}");
            INVALID
        }
    }
}

/// `backup`: a consistent copy of the store at `database` in the new file
/// `out`; returns the exit code (0 written, 2 refused).
pub async fn backup(database: &str, out: &Path, w: &mut impl Write) -> u8 {
    let database = match store_url("--database (DATABASE_URL)", database) {
        Ok(url) => url,
        Err(code) => return code,
    };
    match crate::store::backup::backup(&database, out).await {
        Ok(taken) => {
            let _ = writeln!(
                w,
                "backed up version {} of epoch {} ({} providers, {} models) to {}; \
                 a server that opens it starts a new epoch",
                taken.version,
                taken.epoch,
                taken.providers,
                taken.models,
                out.display()
            );
            NOTHING_TO_CHANGE
        }
        Err(err) => {
            eprintln!(
                "provider-sync-server: backup of {} refused: {err}",
                without_password(&database)
            );
            INVALID
        }
    }
}
