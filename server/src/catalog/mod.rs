//! The catalog file: read it from one of its formats, check it (naming the
//! line and field at fault), and reconcile a store with it.
//!
//! Formats (`--catalog-format`, detected by extension or content by default):
//!
//! - **TOML**: optional `revision`, `active_provider_id` / `default_provider_id`,
//!   then `[[providers]]` tables (the admin API's create-provider fields) and
//!   `[[models]]` tables (its create-model fields, `provider_id` included).
//! - **LiteLLM**: its `model_prices_and_context_window.json`, mapped as
//!   `litellm` describes.
//! - **Both**: a TOML file with a `[litellm]` table (`file`, relative to the
//!   TOML file, and optional `modes` and `providers`) takes LiteLLM's catalog
//!   as a base; its `[[providers]]` and `[[models]]` tables then override the
//!   fields they give of an imported entry with the same id (only `id` is
//!   needed), or add entries of their own (with every required field).
//!
//! Reconciling follows `kubectl apply` (see `reconcile`): the store keeps the
//! catalog it last applied; what the file changed since then is applied, and
//! everything else — admin-API edits, entities the file never had — stays.

mod litellm;
mod reconcile;
pub mod watch;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use provider_sync_protocol::{
    ModelSpecification, NewModel, NewProvider, ProviderSyncInfo, SyncState,
};
use serde::{Deserialize, Serialize};
use serde_spanned::Spanned;

pub use litellm::LitellmFilter;
pub use reconcile::{Outcome, Reconciled};

use crate::commands::{model_from, provider_from};
use crate::error::Error;
use crate::validate::{self, Fields};

/// A catalog file's format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CatalogFormat {
    /// By extension (`.json` is LiteLLM's, `.toml` ours), else by content.
    #[default]
    Auto,
    Toml,
    Litellm,
}

/// How to read a catalog file.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub format: CatalogFormat,
    /// For LiteLLM's format: which entries to import. In a TOML file with a
    /// `[litellm]` table, a non-empty list here replaces the file's.
    pub litellm: LitellmFilter,
}

/// A checked catalog, ready to reconcile. Its JSON form is what the store
/// keeps as the last applied catalog.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Catalog {
    /// The file's `revision` (TOML). A store that applied a higher revision
    /// refuses a lower one, so a stale file never moves the catalog
    /// backwards.
    #[serde(default)]
    pub revision: Option<u64>,
    /// The modification time in seconds of the LiteLLM file read (plain,
    /// or named by a TOML file's `[litellm]` table), which plays the same
    /// part among plain LiteLLM files, and among TOML files of one
    /// revision (a revision and a modification time are never compared
    /// with each other).
    #[serde(default)]
    pub modified: Option<u64>,
    /// Read from a plain LiteLLM file (not stored): it has no revision,
    /// where a TOML file without one counts as revision 0.
    #[serde(skip)]
    pub plain_litellm: bool,
    /// Sorted by id.
    pub providers: Vec<ProviderSyncInfo>,
    /// Sorted by id.
    pub models: Vec<ModelSpecification>,
    /// `None`: the file does not say; the store's value stays.
    pub active_provider_id: Option<String>,
    pub default_provider_id: Option<String>,
    /// What reading the file skipped or adjusted (not stored).
    #[serde(skip)]
    pub report: ImportReport,
    /// Files the catalog was read from (not stored): the file itself and,
    /// for a TOML file with a `[litellm]` table, LiteLLM's file.
    #[serde(skip)]
    pub sources: Vec<PathBuf>,
    /// The fields each entry gave a value (not stored), by provider and by
    /// model id: when the file adds an entity the store has already (made
    /// through the admin API), the fields it did not give keep the store's
    /// values.
    #[serde(skip)]
    pub given: Given,
    /// In the record of an applied file only: input limits an admin set
    /// that the file's window, shrinking below them, cut; by model id. While
    /// a model's limit is still what it was cut to, it is the admin's, and
    /// it comes back (up to the window) when the file's window grows again,
    /// rather than following the window as a limit the admin never set.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cut_limits: BTreeMap<String, CutLimit>,
}

/// An admin's input limit, cut to a smaller window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CutLimit {
    /// What the admin set.
    pub admin: u32,
    /// What it was cut to (the window then).
    pub to: u32,
    /// The model's revision once cut. A write that leaves the model's
    /// limits alone and does not name them (a rename, a price, a
    /// retirement) carries the cut, with the model's new revision, in the
    /// record it writes (`Draft::emit`); any other write to the model (one
    /// that changes or names its limits, a delete, a new model of that id)
    /// ends it. A write that changes nothing is none. So does a write that
    /// did not carry it (an instance holding an older record): the
    /// revisions then differ, and the limit follows the window again.
    #[serde(default)]
    pub revision: u64,
}

/// The fields of each entry a file gave a value, by id.
#[derive(Debug, Clone, Default)]
pub struct Given {
    pub providers: HashMap<String, HashSet<String>>,
    pub models: HashMap<String, HashSet<String>>,
}

/// The fields of a create body that have a value; a field the contract
/// derives from another (a model's deprecation status from its date, a
/// provider's display name from its name) counts as given with it. A
/// model's token limits do not: left out, they are the context window's,
/// which does not replace a limit an admin set (see the reconcile's
/// `merge_model`).
fn given_fields<T: Serialize>(body: &T) -> HashSet<String> {
    let mut given: HashSet<String> = match serde_json::to_value(body) {
        Ok(serde_json::Value::Object(map)) => map
            .into_iter()
            .filter(|(_, value)| !value.is_null())
            .map(|(key, _)| key)
            .collect(),
        _ => HashSet::new(),
    };
    for (from, derived) in [
        ("deprecation_date", "deprecation_status"),
        ("sunset_date", "deprecation_status"),
        ("name", "display_name"),
    ] {
        if given.contains(from) {
            given.insert(derived.to_owned());
        }
    }
    given
}

impl Catalog {
    /// Whether two catalogs say the same thing (what was read, not how).
    pub fn same_content(&self, other: &Self) -> bool {
        self.revision == other.revision
            && self.modified == other.modified
            && self.providers == other.providers
            && self.models == other.models
            && self.active_provider_id == other.active_provider_id
            && self.default_provider_id == other.default_provider_id
    }

    pub fn provider(&self, id: &str) -> Option<&ProviderSyncInfo> {
        self.providers
            .binary_search_by(|p| p.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.providers[i])
    }

    pub fn model(&self, id: &str) -> Option<&ModelSpecification> {
        self.models
            .binary_search_by(|m| m.id.as_str().cmp(id))
            .ok()
            .map(|i| &self.models[i])
    }
}

/// What reading a file skipped or changed, by reason, with the first few
/// entries for each.
#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    /// Entries in the source (LiteLLM's format).
    pub entries: usize,
    /// Entries left out by the mode and provider filters.
    pub filtered: usize,
    /// Entries that could not be mapped: reason, count, first few ids.
    pub skipped: Vec<(String, usize, Vec<String>)>,
    /// Entries imported with a field left out: reason, count, first few ids.
    pub adjusted: Vec<(String, usize, Vec<String>)>,
    /// Ids of the entries skipped for a value that could not be read or
    /// did not pass the checks, by kind: one the store has already keeps
    /// its current values and waits for a file that can be read (it was
    /// removed, as if the file had dropped it).
    pub unreadable_providers: std::collections::BTreeSet<String>,
    pub unreadable_models: std::collections::BTreeSet<String>,
    /// The fields of each imported model whose values in the file could
    /// not be read (left out or taken as false), by model id: a model the
    /// store has already keeps its current values of them (they were
    /// cleared).
    pub unreadable_fields: BTreeMap<String, Vec<&'static str>>,
}

const EXAMPLES: usize = 3;

fn tally(list: &mut Vec<(String, usize, Vec<String>)>, reason: &str, id: &str) {
    let at = match list.iter().position(|(r, ..)| r == reason) {
        Some(at) => at,
        None => {
            list.push((reason.to_owned(), 0, Vec::new()));
            list.len() - 1
        }
    };
    let (_, count, examples) = &mut list[at];
    *count += 1;
    if examples.len() < EXAMPLES {
        examples.push(crate::validate::shown(id));
    }
}

impl ImportReport {
    pub(crate) fn skip(&mut self, reason: &str, id: &str) {
        tally(&mut self.skipped, reason, id);
    }

    pub(crate) fn adjust(&mut self, reason: &str, id: &str) {
        tally(&mut self.adjusted, reason, id);
    }

    pub fn skipped_count(&self) -> usize {
        self.skipped.iter().map(|(_, n, _)| n).sum()
    }

    /// Logs what was skipped and adjusted, one line per reason.
    pub fn log(&self, path: &str) {
        for (reason, count, examples) in &self.skipped {
            // Shown escaped already (`tally`).
            let first = examples.join(", ");
            tracing::warn!(catalog = path, count, %first, "skipped: {reason}");
        }
        for (reason, count, examples) in &self.adjusted {
            let first = examples.join(", ");
            tracing::info!(catalog = path, count, %first, "imported with a change: {reason}");
        }
    }
}

/// Why a catalog file was refused.
#[derive(Debug, thiserror::Error)]
#[error("{path}{}: {}{message}", line.map(|l| format!(":{l}")).unwrap_or_default(), field.as_ref().map(|f| format!("{f}: ")).unwrap_or_default())]
pub struct CatalogError {
    pub path: String,
    pub line: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The field whose key is written on the line at `offset`, with the table it
/// is in (`models[3].context_window`, `litellm.file`, `revision`): the last
/// header above it (`[[models]]` counted) and the line's key. `None` when
/// the line is not `key = …` (a header, a broken line).
fn field_at(text: &str, offset: usize) -> Option<String> {
    let offset = offset.min(text.len());
    let start = text.get(..offset)?.rfind('\n').map_or(0, |i| i + 1);
    let bare = |key: &str| {
        !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    };
    let line = text[start..].lines().next().unwrap_or_default();
    let key = line.split_once('=')?.0.trim();
    if !bare(key) {
        return None;
    }
    let mut counts = std::collections::HashMap::<&str, usize>::new();
    let mut table = String::new();
    for line in text[..start].lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.split_once("]]")) {
            let name = name.0.trim();
            let n = counts.entry(name).or_default();
            table = format!("{name}[{n}]");
            *n += 1;
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.split_once(']')) {
            let name = name.0.trim();
            // `[models.pricing]` after `[[models]]`: the last model's.
            table = match name.split_once('.') {
                Some((array, rest)) if counts.get(array).is_some_and(|n| *n > 0) => {
                    format!("{array}[{}].{rest}", counts[array] - 1)
                }
                _ => name.to_owned(),
            };
        }
    }
    Some(if table.is_empty() {
        key.to_owned()
    } else {
        format!("{table}.{key}")
    })
}

/// The TOML format.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TomlFile {
    #[serde(default)]
    revision: Option<u64>,
    #[serde(default)]
    active_provider_id: Option<Spanned<String>>,
    #[serde(default)]
    default_provider_id: Option<Spanned<String>>,
    #[serde(default)]
    providers: Vec<Spanned<NewProvider>>,
    #[serde(default)]
    models: Vec<Spanned<NewModel>>,
}

/// The TOML format over a LiteLLM base: entries may be partial overrides.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CombinedFile {
    #[serde(default)]
    revision: Option<u64>,
    litellm: LitellmSection,
    #[serde(default)]
    active_provider_id: Option<Spanned<String>>,
    #[serde(default)]
    default_provider_id: Option<Spanned<String>>,
    #[serde(default)]
    providers: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    models: Vec<Spanned<toml::Table>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LitellmSection {
    /// LiteLLM's JSON file, relative to the TOML file.
    file: Spanned<String>,
    #[serde(default)]
    modes: Vec<String>,
    #[serde(default)]
    providers: Vec<String>,
}

/// One entry on its way into a catalog: where it came from decides what an
/// error does to it.
struct Entry<T> {
    value: T,
    /// A TOML entry: its span and index (an error refuses the file). `None`:
    /// imported from LiteLLM (an error skips the entry).
    origin: Option<(Range<usize>, usize)>,
}

/// The refusal of one file, naming its line and field.
struct Refuse<'a> {
    path: &'a str,
    text: &'a str,
}

impl Refuse<'_> {
    /// A TOML error at its line, as toml words it, with the field written
    /// there when the line is a key's (`models[3].context_window`); a
    /// number past what TOML holds (a 64-bit integer) is said so, not as
    /// toml's "invalid type: integer … as i128".
    fn syntax(&self, e: toml::de::Error) -> CatalogError {
        let message = e.message().trim();
        let message = match message
            .strip_prefix("invalid type: integer `")
            .and_then(|rest| rest.split_once('`'))
        {
            Some((number, rest)) if rest.starts_with(" as i128") => format!(
                "{number} is out of range: a number in the file is at most {}",
                i64::MAX
            ),
            _ => message.to_owned(),
        };
        let mut error = self.at(e.span(), None, message);
        error.field = e.span().and_then(|span| field_at(self.text, span.start));
        error
    }

    fn at(
        &self,
        span: Option<Range<usize>>,
        field: Option<String>,
        message: String,
    ) -> CatalogError {
        let at = span.map(|s| match &field {
            Some(field) => self.key_in(s, field),
            None => s.start,
        });
        CatalogError {
            path: self.path.to_owned(),
            line: at.map(|at| line_of(self.text, at)),
            field,
            message,
        }
    }

    /// Where in `span` (an entry's table) its field `field`
    /// (`models[3].pricing.input_per_million`) is written, at its key's
    /// line (`pricing = …`); the span's start when it is not found there
    /// (a value's own span, a key written quoted).
    fn key_in(&self, span: Range<usize>, field: &str) -> usize {
        let rest = field.split_once(']').map_or(field, |(_, rest)| rest);
        let key = rest
            .trim_start_matches('.')
            .split(['.', '['])
            .next()
            .unwrap_or_default();
        // An entry's span may be its header alone: its keys follow, up to
        // the next header.
        let Some(text) = self.text.get(span.start..).filter(|_| !key.is_empty()) else {
            return span.start;
        };
        let mut offset = 0;
        for (i, line) in text.split_inclusive('\n').enumerate() {
            let trimmed = line.trim_start();
            if i > 0 && trimmed.starts_with('[') && offset >= span.len() {
                break;
            }
            if let Some(after) = trimmed.strip_prefix(key)
                && (after.trim_start().starts_with('=') || after.starts_with('.'))
            {
                return span.start + offset + (line.len() - trimmed.len());
            }
            offset += line.len();
        }
        span.start
    }
}

impl<'a> Refuse<'a> {
    /// Reads the file as `T`; a value of the wrong type or an unknown key is
    /// refused with its line and the path to its field
    /// (`providers[1].priority`), not only serde's "invalid type".
    ///
    /// A whole number written as a float (`128000.0`, `1e3`) where an
    /// integer is expected is read as that integer, as the admin API's
    /// bodies are: written again as one and the file read again (the lines
    /// stay where they were). With the text read, which the spans in `T`
    /// point into.
    fn typed<T: serde::de::DeserializeOwned>(
        &self,
    ) -> Result<(T, std::borrow::Cow<'a, str>), CatalogError> {
        let mut text = std::borrow::Cow::Borrowed(self.text);
        let mut rewritten = 0;
        loop {
            let here = Refuse {
                path: self.path,
                text: &text,
            };
            let deserializer = toml::Deserializer::parse(&text).map_err(|e| here.syntax(e))?;
            // A key serde would skip: one in a nested table of a type the
            // server also sends (`pricing`), which does not refuse unknown
            // keys itself.
            let mut unknown = None;
            let mut note = |path: serde_ignored::Path<'_>| {
                unknown.get_or_insert_with(|| crate::error::unknown_field(&path));
            };
            let read = serde_path_to_error::deserialize(serde_ignored::Deserializer::new(
                deserializer,
                &mut note,
            ));
            let e = match read {
                Ok(value) => match unknown {
                    Some((field, message)) => {
                        let span = key_span(&text, &field);
                        return Err(here.at(span, Some(field), message));
                    }
                    None => return Ok((value, text)),
                },
                Err(e) => e,
            };
            let field = field_path(e.path());
            let e = e.into_inner();
            let mut message = e.message().trim().to_owned();
            // A TOML date (`sunset_date = 2026-02-01`) reads as a map to
            // serde: said as what it is.
            let written = e.span().and_then(|span| text.get(span)).unwrap_or_default();
            if message.starts_with("invalid type: map")
                && written.starts_with(|c: char| c.is_ascii_digit())
            {
                message = format!("{written} is a TOML date: write it as a string (\"{written}\")");
            }
            let whole = e
                .span()
                .filter(|_| {
                    rewritten < 256
                        && message.starts_with("invalid type: floating point")
                        && message.rsplit_once("expected ").is_some_and(|(_, ty)| {
                            ["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64"].contains(&ty)
                        })
                })
                .and_then(|span| Some((whole_number(text.get(span.clone())?)?, span)));
            match whole {
                Some((integer, span)) => {
                    let mut next = text.into_owned();
                    next.replace_range(span, &integer);
                    text = std::borrow::Cow::Owned(next);
                    rewritten += 1;
                }
                None => return Err(here.at(e.span(), field, message)),
            }
        }
    }
}

/// Where the last key of `field` (`models[4].pricing.x`) is written in
/// `text`, for the line of an error that names it: within the entry's
/// table (the fifth `[[models]]`) when the path names one, as a key (`x =`,
/// bare or quoted).
fn key_span(text: &str, field: &str) -> Option<Range<usize>> {
    let key = field.rsplit('.').next()?;
    let (mut from, mut to) = (0, text.len());
    if let Some((table, rest)) = field.split_once('[')
        && let Some((index, _)) = rest.split_once(']')
        && let Ok(index) = index.parse::<usize>()
    {
        let header = format!("[[{table}]]");
        let mut offset = 0;
        let mut headers = Vec::new();
        for line in text.split_inclusive('\n') {
            if line.trim_start().starts_with("[[") || line.trim_start().starts_with('[') {
                headers.push((offset, line.trim() == header));
            }
            offset += line.len();
        }
        let ours: Vec<usize> = (0..headers.len()).filter(|&i| headers[i].1).collect();
        if let Some(&i) = ours.get(index) {
            from = headers[i].0;
            // Up to the next entry of any array of tables (its own nested
            // tables, `[models.pricing]`, stay in).
            to = headers[i + 1..]
                .iter()
                .find(|(at, _)| text[*at..].trim_start().starts_with("[["))
                .map_or(text.len(), |(at, _)| *at);
        }
    }
    let within = &text[from..to];
    within
        .match_indices(key)
        .map(|(at, _)| at)
        .find(|&at| {
            let before = within[..at].trim_end_matches(['"', '\'']);
            let after = within[at + key.len()..].trim_start_matches(['"', '\'']);
            (before.is_empty()
                || before
                    .ends_with(|c: char| c.is_whitespace() || c == '{' || c == ',' || c == '.'))
                && after.trim_start_matches([' ', '\t']).starts_with('=')
        })
        .map(|at| from + at..from + at + key.len())
}

/// A TOML float without a fractional part (`128000.0`, `1e3`, `+5.0`) as an
/// integer's text; `None` for any other.
fn whole_number(text: &str) -> Option<String> {
    let float: f64 = text
        .trim()
        .trim_start_matches('+')
        .replace('_', "")
        .parse()
        .ok()?;
    let whole = float.is_finite() && float.fract() == 0.0 && float.abs() < 2f64.powi(63);
    whole.then(|| format!("{}", float as i64))
}

/// `providers[1].priority` from serde_path_to_error's path, without the keys
/// `Spanned` reads its value through.
fn field_path(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut shown = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => shown.push_str(&format!("[{index}]")),
            Segment::Map { key } if key.starts_with("$__serde_spanned") => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !shown.is_empty() {
                    shown.push('.');
                }
                shown.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    (!shown.is_empty()).then_some(shown)
}

impl Catalog {
    /// Reads a catalog file in any format, by extension or content.
    pub fn load(path: &Path) -> Result<Self, CatalogError> {
        Self::load_with(path, &LoadOptions::default())
    }

    pub fn load_with(path: &Path, options: &LoadOptions) -> Result<Self, CatalogError> {
        let shown = path.display().to_string();
        let cannot_read = |e: std::io::Error| CatalogError {
            path: shown.clone(),
            line: None,
            field: None,
            message: format!("cannot read the file: {e}"),
        };
        let text = read_text(path).map_err(cannot_read)?;
        let format = match options.format {
            CatalogFormat::Auto => detect(path, &text),
            other => other,
        };
        let mut catalog = match format {
            CatalogFormat::Litellm => {
                let mut report = ImportReport::default();
                let imported = litellm::import(&shown, &text, &options.litellm, &mut report)?;
                let mut catalog = assemble(
                    &Refuse {
                        path: &shown,
                        text: &text,
                    },
                    entries(imported.providers),
                    entries(imported.models),
                    [None, None],
                    report,
                )?;
                catalog.modified = modified_secs(path);
                catalog.plain_litellm = true;
                catalog
            }
            _ => {
                let mut catalog = Self::parse_toml(path, &text, options)?;
                // The LiteLLM file a `[litellm]` table names.
                catalog.modified = catalog.sources.first().and_then(|base| modified_secs(base));
                catalog
            }
        };
        if catalog.revision.is_none() && !catalog.plain_litellm {
            tracing::warn!(catalog = %shown, "the catalog has no `revision`: between two copies without one nothing tells the older, so an instance restarted with an older copy would undo a newer one; give it `revision = 1` and raise it with every edit");
            // Kept as revision 0 in the record, so that the record says it
            // was a TOML file: a plain LiteLLM file after it is another kind
            // of file, not an older one.
            catalog.revision = Some(0);
        }
        catalog.sources.insert(0, path.to_owned());
        Ok(catalog)
    }

    /// Reads the TOML format from text (a `[litellm]` table's file is read
    /// relative to the current directory).
    pub fn parse(path: &str, text: &str) -> Result<Self, CatalogError> {
        Self::parse_toml(Path::new(path), text, &LoadOptions::default())
    }

    fn parse_toml(path: &Path, text: &str, options: &LoadOptions) -> Result<Self, CatalogError> {
        Self::parse_with(path, text, options, read_text)
    }

    /// Reads the TOML format from text, as [`Catalog::load_with`] does, with
    /// `read` reading a `[litellm]` table's file (its path relative to
    /// `path`'s directory): nothing else touches the filesystem, so the fuzz
    /// target runs the loader as it is on text alone.
    pub fn parse_with(
        path: &Path,
        text: &str,
        options: &LoadOptions,
        read: impl FnOnce(&Path) -> std::io::Result<String>,
    ) -> Result<Self, CatalogError> {
        let shown = path.display().to_string();
        let refuse = Refuse { path: &shown, text };
        let table: toml::Table = toml::from_str(text).map_err(|e| refuse.syntax(e))?;
        if table.contains_key("litellm") {
            return Self::parse_combined(path, options, &refuse, read);
        }
        // The filters choose LiteLLM entries: given for a file that has
        // none, they would be dropped without a word.
        if !options.litellm.modes.is_empty() || !options.litellm.providers.is_empty() {
            return Err(refuse.at(
                None,
                None,
                "--catalog-modes and --catalog-providers choose entries of LiteLLM's catalog, \
                 and this TOML file has no [litellm] table: leave them out, or give LiteLLM's \
                 file"
                    .into(),
            ));
        }
        let (file, text): (TomlFile, _) = refuse.typed()?;
        let refuse = Refuse {
            path: &shown,
            text: &text,
        };
        let mut catalog = assemble(
            &refuse,
            file.providers
                .into_iter()
                .enumerate()
                .map(|(i, p)| Entry {
                    origin: Some((p.span(), i)),
                    value: p.into_inner(),
                })
                .collect(),
            file.models
                .into_iter()
                .enumerate()
                .map(|(i, m)| Entry {
                    origin: Some((m.span(), i)),
                    value: m.into_inner(),
                })
                .collect(),
            [file.active_provider_id, file.default_provider_id],
            ImportReport::default(),
        )?;
        catalog.revision = file.revision;
        Ok(catalog)
    }

    fn parse_combined(
        path: &Path,
        options: &LoadOptions,
        refuse: &Refuse<'_>,
        read: impl FnOnce(&Path) -> std::io::Result<String>,
    ) -> Result<Self, CatalogError> {
        let (file, text): (CombinedFile, _) = refuse.typed()?;
        let refuse = &Refuse {
            path: refuse.path,
            text: &text,
        };
        let base_path = path
            .parent()
            .unwrap_or(Path::new("."))
            .join(file.litellm.file.get_ref());
        let base_text = read(&base_path).map_err(|e| {
            refuse.at(
                Some(file.litellm.file.span()),
                Some("litellm.file".into()),
                format!("cannot read {}: {e}", base_path.display()),
            )
        })?;
        let filter = LitellmFilter {
            modes: if options.litellm.modes.is_empty() {
                file.litellm.modes.clone()
            } else {
                options.litellm.modes.clone()
            },
            providers: if options.litellm.providers.is_empty() {
                file.litellm.providers.clone()
            } else {
                options.litellm.providers.clone()
            },
        };
        let mut report = ImportReport::default();
        let imported = litellm::import(
            &base_path.display().to_string(),
            &base_text,
            &filter,
            &mut report,
        )?;

        let providers = overlay(
            refuse,
            "providers",
            imported.providers,
            file.providers,
            |p| &p.id,
        )?;
        let models = overlay(refuse, "models", imported.models, file.models, |m| &m.id)?;
        let mut catalog = assemble(
            refuse,
            providers,
            models,
            [file.active_provider_id, file.default_provider_id],
            report,
        )?;
        catalog.revision = file.revision;
        catalog.sources.push(base_path);
        Ok(catalog)
    }
}

/// Lays `over` on `base`, objects field by field (a `pricing` override
/// that gives one price keeps the others).
fn overlay_json(base: &mut serde_json::Value, over: &serde_json::Value) {
    match (base, over) {
        (serde_json::Value::Object(base), serde_json::Value::Object(over)) => {
            for (key, value) in over {
                match base.get_mut(key) {
                    Some(slot) if slot.is_object() && value.is_object() => {
                        overlay_json(slot, value)
                    }
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// Said when a file applied gives the revision last applied
/// ([`Reconciled::revision_unchanged`](reconcile::Reconciled)).
pub const REVISION_UNCHANGED: &str = "the catalog's content changed but its `revision` did not: raise it with every edit (an instance restarted with another copy of this revision cannot tell which is newer, and a copy cut short that still reads is applied as an edit, removing what it lost)";

/// What to do about a LiteLLM file judged older by its modification time
/// (said wherever a reconcile refuses one): the time is the file's, and a
/// file taken out of a wheel with `unzip` keeps the date the archive holds
/// (1980-01-01 in some releases), whatever release it is.
pub const OLDER_BY_TIME_HINT: &str = "a LiteLLM file's age is its modification time, and `unzip` keeps the archive's (1980-01-01 for some releases): to apply this file, `touch` it (or extract it with `unzip -DD`), or name it from a TOML file's [litellm] table with a raised `revision`";

/// The most a catalog file may hold (LiteLLM's whole catalog is about
/// 3.5 MB): a path such as `/dev/zero` was read until memory ran out.
pub(crate) const MAX_CATALOG_BYTES: u64 = 64 << 20;

/// At most `limit` bytes of `path` and one more (to tell a larger file);
/// a regular file larger than that is refused before it is read.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() > limit {
        return Err(too_large(limit));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(limit));
    }
    Ok(bytes)
}

fn too_large(limit: u64) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("larger than {} MiB: no catalog is that large", limit >> 20),
    )
}

/// A catalog file's text: UTF-8, its byte-order mark (which editors on
/// Windows write) left out; a byte that is not UTF-8 is refused with its
/// line and column; more than [`MAX_CATALOG_BYTES`] is refused.
fn read_text(path: &Path) -> std::io::Result<String> {
    let mut bytes = read_bounded(path, MAX_CATALOG_BYTES)?;
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        bytes.drain(..3);
    }
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let before = std::str::from_utf8(&bytes[..at]).expect("valid up to here");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "not UTF-8 text: the byte 0x{:02x} at line {line}, column {column} (save the file as UTF-8)",
                bytes[at]
            ),
        )
    })
}

fn detect(path: &Path, text: &str) -> CatalogFormat {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("json") => CatalogFormat::Litellm,
        Some(ext) if ext.eq_ignore_ascii_case("toml") => CatalogFormat::Toml,
        _ if text.trim_start().starts_with('{') => CatalogFormat::Litellm,
        _ => CatalogFormat::Toml,
    }
}

fn modified_secs(path: &Path) -> Option<u64> {
    let modified = std::fs::metadata(path).ok()?.modified().ok()?;
    Some(
        modified
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs(),
    )
}

fn entries<T>(values: Vec<T>) -> Vec<Entry<T>> {
    values
        .into_iter()
        .map(|value| Entry {
            value,
            origin: None,
        })
        .collect()
}

/// A model's override that gives a deprecation or sunset date, and no
/// status, over an imported model that is active: the date makes it
/// deprecated, as it does an entry of the file's own (it was refused, an
/// active model with a date).
fn dated_means_deprecated(merged: &mut serde_json::Value, over: &serde_json::Value) {
    let dated = ["deprecation_date", "sunset_date"]
        .iter()
        .any(|key| over.get(key).is_some_and(|v| !v.is_null()));
    if dated
        && over.get("deprecation_status").is_none()
        && merged.get("deprecation_status").and_then(|v| v.as_str()) == Some("active")
    {
        merged["deprecation_status"] = "deprecated".into();
    }
}

/// Lays TOML tables over imported entries: a table whose id matches an
/// imported entry overrides the fields it gives; any other table is an entry
/// of its own.
fn overlay<T>(
    refuse: &Refuse<'_>,
    kind: &str,
    imported: Vec<T>,
    tables: Vec<Spanned<toml::Table>>,
    id_of: impl Fn(&T) -> &String,
) -> Result<Vec<Entry<T>>, CatalogError>
where
    T: Serialize + serde::de::DeserializeOwned,
{
    let mut out = entries(imported);
    // The tables' ids: one given twice is refused, as in a file without
    // `[litellm]` (the last copy won, and the first was dropped unsaid).
    let mut tabled = HashSet::new();
    for (i, table) in tables.into_iter().enumerate() {
        let span = table.span();
        let table = table.into_inner();
        let Some(id) = table
            .get("id")
            .and_then(toml::Value::as_str)
            .map(str::to_owned)
        else {
            return Err(refuse.at(
                Some(span),
                Some(format!("{kind}[{i}].id")),
                "missing field `id`".into(),
            ));
        };
        if !tabled.insert(id.clone()) {
            let what = kind.strip_suffix('s').unwrap_or(kind);
            return Err(refuse.at(
                Some(span),
                Some(format!("{kind}[{i}].id")),
                format!("{what} '{}' is listed twice", crate::validate::shown(&id)),
            ));
        }
        let at = out.iter().position(|e| id_of(&e.value) == &id);
        let refused = |e: serde_json::Error| {
            refuse.at(
                Some(span.clone()),
                Some(format!("{kind}[{i}]")),
                e.to_string(),
            )
        };
        let mut fields = serde_json::to_value(&table).map_err(refused)?;
        // `128000.0` is an integer here too.
        crate::error::whole_numbers_as_integers(&mut fields);
        let value: T = match at {
            // Only the fields given change.
            Some(at) => {
                let mut merged = serde_json::to_value(&out[at].value).expect("serialises");
                overlay_json(&mut merged, &fields);
                dated_means_deprecated(&mut merged, &fields);
                from_value_strict(merged).map_err(refused)?
            }
            // Not an override: a whole entry of its own, which says so when
            // it is not whole (an override of an entry the `[litellm]`
            // filters leave out, or one the import skipped).
            None => from_value_strict(fields).map_err(|e| {
                let mut err = refused(e);
                err.message = format!(
                    "'{}' is no entry imported from the LiteLLM file (the [litellm] filters leave it out, the import skipped it, or the file has none), so this table is a new entry and needs every field: {}",
                    crate::validate::shown(&id),
                    err.message
                );
                err
            })?,
        };
        let entry = Entry {
            value,
            origin: Some((span, i)),
        };
        match at {
            Some(at) => out[at] = entry,
            None => out.push(entry),
        }
    }
    Ok(out)
}

/// `serde_json::from_value`, refusing a key serde would skip (one in
/// `pricing`, whose type does not refuse unknown keys itself), as the plain
/// TOML file and the admin API do.
fn from_value_strict<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, serde_json::Error> {
    let mut unknown = None;
    let read = serde_ignored::deserialize(value, |path| {
        unknown.get_or_insert_with(|| crate::error::unknown_field(&path));
    })?;
    match unknown {
        Some((field, message)) => Err(serde::de::Error::custom(format_args!("{field}: {message}"))),
        None => Ok(read),
    }
}

/// The reason an imported entry is skipped, naming the field that failed
/// its check (`model does not pass the checks: pricing.input_per_million`).
fn failed_check(what: &str, err: &Error) -> String {
    match err {
        Error::Invalid { field, .. } => format!("{what} does not pass the checks: {field}"),
        _ => format!("{what} does not pass the checks"),
    }
}

/// Turns create bodies into a checked catalog. An error in a TOML entry
/// refuses the file with its line and field; an imported entry that does not
/// pass is skipped and counted (and references to it are cleared).
fn assemble(
    refuse: &Refuse<'_>,
    providers: Vec<Entry<NewProvider>>,
    models: Vec<Entry<NewModel>>,
    pointers: [Option<Spanned<String>>; 2],
    mut report: ImportReport,
) -> Result<Catalog, CatalogError> {
    let listed_twice =
        |kind: &str, what: &str, origin: &Option<(Range<usize>, usize)>, id: &str| {
            let (span, i) = origin.clone().map_or((None, 0), |(s, i)| (Some(s), i));
            refuse.at(
                span,
                Some(format!("{kind}[{i}].id")),
                format!("{what} '{}' is listed twice", crate::validate::shown(id)),
            )
        };
    let mut seen = HashSet::new();
    for entry in &providers {
        if !seen.insert(entry.value.id.clone()) {
            return Err(listed_twice(
                "providers",
                "provider",
                &entry.origin,
                &entry.value.id,
            ));
        }
    }
    seen.clear();
    for entry in &models {
        if !seen.insert(entry.value.id.clone()) {
            return Err(listed_twice(
                "models",
                "model",
                &entry.origin,
                &entry.value.id,
            ));
        }
    }

    let mut state = SyncState {
        providers: providers
            .iter()
            .map(|e| provider_from(e.value.clone()))
            .collect(),
        all_models: models.iter().map(|e| model_from(e.value.clone())).collect(),
        ..SyncState::default()
    };
    state.normalize();

    let as_catalog_error = |origin: &Option<(Range<usize>, usize)>, err: Error| {
        let span = origin.as_ref().map(|(s, _)| s.clone());
        match err {
            Error::Invalid { field, message } => refuse.at(span, Some(field), message),
            other => refuse.at(span, None, other.to_string()),
        }
    };
    // Imported entries that do not pass are dropped first, so that what
    // refers to them can be checked against what is left.
    let mut dropped_providers = HashSet::new();
    for entry in providers.iter().filter(|e| e.origin.is_none()) {
        let provider = state.provider(&entry.value.id).expect("just added");
        if let Err(err) = validate::provider(&state, provider, Fields("")) {
            report.skip(&failed_check("provider", &err), &entry.value.id);
            dropped_providers.insert(entry.value.id.clone());
            report.unreadable_providers.insert(entry.value.id.clone());
        }
    }
    let mut dropped_models = HashSet::new();
    for entry in models.iter().filter(|e| e.origin.is_none()) {
        let mut model = state.model(&entry.value.id).expect("just added").clone();
        model.replacement_model_id = None;
        let failed = if dropped_providers.contains(&model.provider_id) {
            Some("model of a provider left out".to_owned())
        } else {
            validate::model(&state, &model, Fields(""))
                .err()
                .map(|err| failed_check("model", &err))
        };
        if let Some(reason) = failed {
            report.skip(&reason, &entry.value.id);
            dropped_models.insert(entry.value.id.clone());
            report.unreadable_models.insert(entry.value.id.clone());
        }
    }
    if !dropped_providers.is_empty() || !dropped_models.is_empty() {
        state
            .providers
            .retain(|p| !dropped_providers.contains(&p.id));
        state.all_models.retain(|m| !dropped_models.contains(&m.id));
        for model in &mut state.all_models {
            if model
                .replacement_model_id
                .as_ref()
                .is_some_and(|r| dropped_models.contains(r))
            {
                // As for a successor that could not be read: the store's
                // replacement stays.
                model.replacement_model_id = None;
                (report
                    .unreadable_fields
                    .entry(model.id.clone())
                    .or_default())
                .push("replacement_model_id");
            }
        }
        state.normalize();
    }

    for entry in &providers {
        let Some(provider) = state.provider(&entry.value.id) else {
            continue;
        };
        let at = entry
            .origin
            .as_ref()
            .map_or(String::new(), |(_, i)| format!("providers[{i}]."));
        validate::provider(&state, provider, Fields(&at))
            .map_err(|e| as_catalog_error(&entry.origin, e))?;
    }
    for entry in &models {
        let Some(model) = state.model(&entry.value.id) else {
            continue;
        };
        let at = entry
            .origin
            .as_ref()
            .map_or(String::new(), |(_, i)| format!("models[{i}]."));
        validate::model(&state, model, Fields(&at))
            .map_err(|e| as_catalog_error(&entry.origin, e))?;
    }
    // As through the admin API: at most so many models per provider.
    let mut per_provider = std::collections::HashMap::<&str, usize>::new();
    for entry in &models {
        let Some(model) = state.model(&entry.value.id) else {
            continue;
        };
        let held = per_provider.entry(model.provider_id.as_str()).or_default();
        *held += 1;
        if *held > validate::MAX_MODELS_PER_PROVIDER {
            let (span, at) = entry
                .origin
                .as_ref()
                .map_or((None, String::new()), |(s, i)| {
                    (Some(s.clone()), format!("models[{i}]."))
                });
            return Err(refuse.at(
                span,
                Some(format!("{at}provider_id")),
                format!(
                    "provider '{}' would have more than {} models, the most one provider may have",
                    model.provider_id,
                    validate::MAX_MODELS_PER_PROVIDER
                ),
            ));
        }
    }
    // A file without a provider would remove every provider the file had:
    // an empty or half-written file (a save in progress), or filters that
    // match nothing; never a catalog.
    if state.providers.is_empty() {
        return Err(refuse.at(
            None,
            None,
            "holds no providers: refused, as it would remove every provider a file gave (an empty or half-written file, or filters that match nothing?)".to_owned(),
        ));
    }
    let [active, default] = pointers;
    for (field, pointer) in [
        ("active_provider_id", &active),
        ("default_provider_id", &default),
    ] {
        if let Some(id) = pointer
            && state.provider(id.get_ref()).is_none()
        {
            return Err(refuse.at(
                Some(id.span()),
                Some(field.to_owned()),
                format!(
                    "no provider '{}' in the file",
                    crate::validate::shown(id.get_ref())
                ),
            ));
        }
    }
    let given = Given {
        providers: providers
            .iter()
            .map(|e| (e.value.id.clone(), given_fields(&e.value)))
            .collect(),
        models: models
            .iter()
            .map(|e| (e.value.id.clone(), given_fields(&e.value)))
            .collect(),
    };
    Ok(Catalog {
        revision: None,
        modified: None,
        plain_litellm: false,
        providers: state.providers,
        models: state.all_models,
        active_provider_id: active.map(Spanned::into_inner),
        default_provider_id: default.map(Spanned::into_inner),
        report,
        sources: Vec::new(),
        given,
        cut_limits: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(list: &[(String, usize, Vec<String>)]) -> Vec<(&str, usize, Vec<&str>)> {
        list.iter()
            .map(|(reason, n, first)| {
                (
                    reason.as_str(),
                    *n,
                    first.iter().map(String::as_str).collect(),
                )
            })
            .collect()
    }

    /// The TOML format read from text, as the library's users call it.
    #[test]
    fn parse_reads_toml_text_and_names_the_path_in_errors() {
        let catalog = Catalog::parse(
            "inline.toml",
            "revision = 2\n[[providers]]\nid = \"a\"\nname = \"A\"\n",
        )
        .unwrap();
        assert_eq!(catalog.revision, Some(2));
        assert_eq!(catalog.provider("a").unwrap().name, "A");
        let err = Catalog::parse("inline.toml", "[[providers]]\nname = \"A\"\n").unwrap_err();
        assert!(err.to_string().starts_with("inline.toml"), "{err}");
        // A pointer to no provider is named escaped (it is not checked as
        // an id: a bidirectional override would reorder the line).
        let err = Catalog::parse(
            "inline.toml",
            "active_provider_id = \"x\u{202e}y\"\n[[providers]]\nid = \"a\"\nname = \"A\"\n",
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("no provider 'x\\u{202e}y' in the file"),
            "{err}"
        );
    }

    /// A file saved with a byte-order mark reads (TOML, LiteLLM's JSON and
    /// a combined file's base); one with a byte that is not UTF-8 is refused
    /// with the byte's line and column.
    #[test]
    fn a_byte_order_mark_is_read_and_a_non_utf8_byte_is_placed() {
        let dir = tempfile::tempdir().unwrap();
        let bom = |text: &str| [b"\xEF\xBB\xBF".as_slice(), text.as_bytes()].concat();
        let toml = dir.path().join("c.toml");
        std::fs::write(
            &toml,
            bom("revision = 1\n[[providers]]\nid = \"a\"\nname = \"A\"\n"),
        )
        .unwrap();
        assert_eq!(
            Catalog::load(&toml).unwrap().provider("a").unwrap().name,
            "A"
        );
        let json = dir.path().join("l.json");
        let entry = r#"{"m": {"litellm_provider": "openai", "mode": "chat", "max_tokens": 10}}"#;
        std::fs::write(&json, bom(entry)).unwrap();
        assert!(Catalog::load(&json).unwrap().model("m").is_some());
        let combined = dir.path().join("both.toml");
        std::fs::write(&combined, "revision = 1\n[litellm]\nfile = \"l.json\"\n").unwrap();
        assert!(Catalog::load(&combined).unwrap().model("m").is_some());

        std::fs::write(
            &toml,
            b"revision = 1\n[[providers]]\nid = \"a\"\nname = \"Caf\xE9\"\n",
        )
        .unwrap();
        let err = Catalog::load(&toml).unwrap_err().to_string();
        assert!(
            err.contains("not UTF-8 text: the byte 0xe9 at line 4, column 12"),
            "{err}"
        );
        std::fs::write(&json, b"{\"m\xff\": {}}").unwrap();
        let err = Catalog::load(&combined).unwrap_err().to_string();
        assert!(err.contains("the byte 0xff at line 1, column 4"), "{err}");
    }

    /// A whole number written as a float is an integer, as in the admin
    /// API's bodies (it was refused: "expected u32"); a fraction is still
    /// refused at its line.
    #[test]
    fn whole_numbers_written_as_floats_are_integers() {
        let text = "[[providers]]\nid = \"a\"\nname = \"A\"\npriority = 1e1\n\n\
                    [[models]]\nid = \"m\"\nprovider_id = \"a\"\nname = \"M\"\n\
                    context_window = 128_000.0\nmax_output_tokens = 8192.0\n\
                    pricing = { input_per_million = 2.0, output_per_million = 10.0 }\n";
        let catalog = Catalog::parse("f.toml", text).unwrap();
        assert_eq!(catalog.provider("a").unwrap().priority, 10);
        let model = catalog.model("m").unwrap();
        assert_eq!(
            (model.context_window, model.max_output_tokens),
            (128_000, 8192)
        );
        assert_eq!(model.pricing.as_ref().unwrap().input_per_million, 2.0);
        // A zero with a sign is 0: it was served as `-0.0`.
        let catalog = Catalog::parse("f.toml", &text.replace("= 2.0", "= -0.0")).unwrap();
        let price = catalog
            .model("m")
            .unwrap()
            .pricing
            .unwrap()
            .input_per_million;
        assert!(price == 0.0 && price.is_sign_positive(), "{price}");
        let err = Catalog::parse("f.toml", &text.replace("8192.0", "8192.5")).unwrap_err();
        assert_eq!(err.line, Some(11), "{err}");
        assert!(err.to_string().contains("floating point"), "{err}");
        // Errors found after the rewrite point into the text as read (an
        // offset into the file as written fell inside a character: a panic).
        let text = "[[providers]]\nid = \"a\"\npriority = 128_000.0\nname = \"Modèle été\"\n\n\
                    [[providers]]\nid = \"b\"\nname = \"B\"\nfallback_provider_id = \"zz\"\n";
        let err = Catalog::parse("f.toml", text).unwrap_err();
        assert_eq!(err.line, Some(9), "{err}");
        assert_eq!(
            err.field.as_deref(),
            Some("providers[1].fallback_provider_id")
        );
    }

    /// A value toml cannot read is refused naming its field, as a value of
    /// the wrong type is: a number past a 64-bit integer (it was "invalid
    /// type: integer `…` as i128, expected any valid TOML value", with no
    /// field), a broken string.
    #[test]
    fn a_value_toml_cannot_read_names_its_field() {
        let text = "revision = 1\n[[providers]]\nid = \"a\"\nname = \"A\"\n\n\
                    [[providers]]\nid = \"b\"\nname = \"B\"\n\n\
                    [[models]]\nid = \"m\"\nprovider_id = \"a\"\nname = \"M\"\n\
                    context_window = 99999999999999999999999\n";
        let err = Catalog::parse("f.toml", text).unwrap_err();
        assert_eq!(err.line, Some(14), "{err}");
        assert_eq!(
            err.field.as_deref(),
            Some("models[0].context_window"),
            "{err}"
        );
        assert!(
            err.message
                .contains("99999999999999999999999 is out of range: a number in the file is at most 9223372036854775807"),
            "{err}"
        );
        let text = text.replace(
            "context_window = 99999999999999999999999",
            "context_window = 10",
        ) + "[models.pricing]\ninput_per_million = 1\noutput_per_million = 1e999999\n";
        let err = Catalog::parse("f.toml", &text).unwrap_err();
        assert_eq!(err.line, Some(17), "{err}");
        assert_eq!(
            err.field.as_deref(),
            Some("models[0].pricing.output_per_million"),
            "{err}"
        );
        // A TOML date where a string is expected is said as one (it was
        // "invalid type: map, expected a string").
        let dated = text.replace("1e999999", "1").replace(
            "context_window = 10\n",
            "context_window = 10\nsunset_date = 2027-02-01\n",
        );
        let err = Catalog::parse("f.toml", &dated).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("models[0].sunset_date"), "{err}");
        assert_eq!(
            err.message,
            "2027-02-01 is a TOML date: write it as a string (\"2027-02-01\")"
        );
        let err = Catalog::parse("f.toml", "[[providers]]\nid = \"a\nname = \"A\"\n").unwrap_err();
        assert_eq!(err.field.as_deref(), Some("providers[0].id"), "{err}");
        // A broken header names no field.
        let err = Catalog::parse("f.toml", "[[providers]\nid = \"a\"\n").unwrap_err();
        assert_eq!((err.line, err.field.as_deref()), (Some(1), None), "{err}");
    }

    /// A file without a provider is refused (an empty or half-written file
    /// would otherwise remove the whole catalog), and so is one that gives
    /// a provider more models than the admin API lets it have, naming the
    /// first model over the bound.
    #[test]
    fn an_empty_file_and_a_provider_past_its_bound_are_refused() {
        for text in ["", "revision = 3\n", "active_provider_id = \"a\"\n"] {
            let err = Catalog::parse("empty.toml", text).unwrap_err();
            assert!(
                err.message.contains("holds no providers"),
                "{text:?}: {err}"
            );
        }
        let mut text = String::from("[[providers]]\nid = \"a\"\nname = \"A\"\n");
        for i in 0..=validate::MAX_MODELS_PER_PROVIDER {
            text.push_str(&format!(
                "[[models]]\nid = \"m{i}\"\nname = \"M\"\nprovider_id = \"a\"\ncontext_window = 10\n"
            ));
        }
        let err = Catalog::parse("big.toml", &text).unwrap_err();
        assert_eq!(
            err.field.as_deref(),
            Some(format!("models[{}].provider_id", validate::MAX_MODELS_PER_PROVIDER).as_str())
        );
        assert!(err.message.contains("more than 10000 models"), "{err}");
        // At the bound itself it passes.
        let at_bound = &text[..text.rfind("[[models]]").unwrap()];
        assert_eq!(
            Catalog::parse("big.toml", at_bound).unwrap().models.len(),
            validate::MAX_MODELS_PER_PROVIDER
        );
    }

    /// `--catalog-format auto`: the extension decides (in any case), and
    /// without a known one the content does.
    #[test]
    fn the_format_is_told_by_extension_then_by_content() {
        use CatalogFormat::{Litellm, Toml};
        for (path, text, format) in [
            ("prices.JSON", "revision = 1", Litellm),
            ("catalog.Toml", "{}", Toml),
            ("catalog", "  {\"gpt-4o\": {}}", Litellm),
            ("catalog.conf", "revision = 1\n", Toml),
            ("prices.txt", "{}", Litellm),
            ("catalog", "", Toml),
        ] {
            assert_eq!(detect(Path::new(path), text), format, "{path}: {text}");
        }
    }

    /// What `catalog check` and the start-up log show of an import: each
    /// reason once, in the order first met, with its count and its first
    /// three entries.
    #[test]
    fn the_report_counts_each_reason_and_names_its_first_three() {
        let mut report = ImportReport::default();
        for id in ["a", "b", "c", "d"] {
            report.skip("no limit", id);
        }
        report.skip("the example", "sample_spec");
        report.adjust("a bad date", "x");
        report.adjust("a bad date", "y");
        assert_eq!(
            entries(&report.skipped),
            [
                ("no limit", 4, vec!["a", "b", "c"]),
                ("the example", 1, vec!["sample_spec"])
            ]
        );
        assert_eq!(
            entries(&report.adjusted),
            [("a bad date", 2, vec!["x", "y"])]
        );
        assert_eq!(report.skipped_count(), 5);
        // A key is shown escaped (it may be what the checks refused).
        report.skip("odd", "a\u{202e}b");
        assert_eq!(report.skipped.last().unwrap().2, ["a\\u{202e}b"]);
    }
}
