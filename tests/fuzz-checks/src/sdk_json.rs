//! The SDK's JSON reader (`provider_sync_sdk::json`) against serde_json on
//! the same text. Each input is read as:
//!
//! - `serde_json::Value`: the grammar and the number model;
//! - `SyncState` and the cache's `CacheRecord` as the SDK reads them (the
//!   table derived by `provider_sync_wire::Read`) against serde's derived
//!   readers of the same types in serde_json, and what the SDK writes of
//!   them; `WireEvent` / `WireResponse` against the protocol's `SyncEvent`
//!   / `SyncResponse` as serde_json (the server's reader) reads them;
//! - `json::Raw`, against serde_json stepping over the value.
//!
//! Both readers accept with equal values, or both refuse, but for these
//! deliberate differences, each allowed only where it applies:
//!
//! - **Lone surrogate escapes** (`"\ud800"`) read as U+FFFD, as a JS string
//!   crossing into Rust does; serde_json refuses them. serde_json is given
//!   the text with each lone surrogate escape written `\ufffd` (the same
//!   length, so positions stay).
//! - **Nesting**: the reader refuses text nested deeper than 128 arrays and
//!   objects anywhere, even in a value it steps over (it recurses, and the
//!   wasm's stack is small); serde_json builds at most 127 levels and steps
//!   over any depth. So text deeper than 128 levels must be refused by the
//!   reader, whatever serde_json says, and serde_json may refuse text of
//!   exactly 128 levels that the reader takes.
//! - **Unit enum variants** are read as their name only; serde_json also
//!   takes the externally tagged object form (`{"full": null}`).
//! - **Structs** are read from objects only; serde_json also takes an array
//!   of the fields in order (`[1, "e", "t", "c"]`).
//! - **`json::Raw`** (a value's text, unparsed) exists only in this
//!   reader: it is compared with serde_json stepping over the value.
//! - **`WireEvent::Unknown`**: an event of a type this release does not know
//!   (or of the seed's `incremental_update`, a `SyncEventType` no event
//!   carries) is kept as its type and version, where `SyncEvent` is an
//!   error.
//! - **`WireResponse`'s `reason`**: a reason this release does not know
//!   reads as none, where `SyncResponse` is an error.

use provider_sync_protocol::{FullSyncReason, SyncEvent, SyncEventType, SyncResponse, SyncState};
use provider_sync_sdk::cache::CacheRecord;
use provider_sync_sdk::json;
use provider_sync_sdk::wire::{WireEvent, WireResponse};
use serde::Deserialize;
use serde::de::{DeserializeOwned, IgnoredAny};
use serde_json::Value;

/// `json.rs`'s `MAX_DEPTH`.
const MAX_DEPTH: usize = 128;

pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let input = Input::new(text);
    value(&input);
    raw(&input);
    typed::<SyncState>(&input, "SyncState");
    typed::<CacheRecord>(&input, "CacheRecord");
    event(&input);
    response(&input);
}

/// The text, and what the differences depend on.
struct Input<'a> {
    text: &'a str,
    /// The text serde_json reads: lone surrogate escapes written `\ufffd`.
    theirs: String,
    /// The deepest nesting of arrays and objects, outside strings.
    depth: usize,
}

impl<'a> Input<'a> {
    fn new(text: &'a str) -> Self {
        let (theirs, depth) = scan(text);
        Self {
            text,
            theirs,
            depth,
        }
    }

    /// serde_json's answer, for `T` read with the same code.
    fn theirs<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.theirs)
    }

    /// Both answers must agree, but for the differences that apply: `ours`
    /// refused and `theirs` accepted, or the other way round.
    fn agree<A, B>(
        &self,
        what: &str,
        ours: &Result<A, json::Error>,
        theirs: &Result<B, serde_json::Error>,
    ) {
        if self.depth > MAX_DEPTH {
            assert!(
                ours.is_err(),
                "{what}: text nested {} deep was read",
                self.depth
            );
            return;
        }
        match (ours, theirs) {
            (Ok(_), Err(e)) => assert!(
                self.depth == MAX_DEPTH && e.to_string().starts_with("recursion limit exceeded"),
                "{what}: the SDK reads what serde_json refuses ({e}): {:?}",
                self.text
            ),
            (Err(e), Ok(_)) => assert!(
                self.other_form(e),
                "{what}: the SDK refuses what serde_json reads ({e}): {:?}",
                self.text
            ),
            _ => {}
        }
    }

    /// Whether the reader stopped at a form it does not read, in text
    /// serde_json reads: wanting a string where the text has an object (the
    /// only place serde_json takes one is a unit enum variant), or an
    /// object where it has an array (a struct, as its fields in order).
    fn other_form(&self, error: &json::Error) -> bool {
        let message = error.to_string();
        let at = |prefix: &str| {
            let at = message.strip_prefix(prefix)?.parse::<usize>().ok()?;
            self.text.as_bytes().get(at).copied()
        };
        at("expected a string at byte ") == Some(b'{')
            || at("expected an object at byte ") == Some(b'[')
    }
}

/// Writes lone surrogate escapes as `\ufffd`, pairs kept, and measures the
/// nesting, in one pass over the text's strings and brackets.
fn scan(text: &str) -> (String, usize) {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let (mut depth, mut deepest, mut in_string) = (0usize, 0usize, false);
    let mut i = 0;
    let hex4 = |at: usize| -> Option<u32> {
        let digits = bytes.get(at..at + 4)?;
        let digits = std::str::from_utf8(digits).ok()?;
        digits
            .bytes()
            .all(|b| b.is_ascii_hexdigit())
            .then(|| u32::from_str_radix(digits, 16).ok())?
    };
    while i < bytes.len() {
        let b = bytes[i];
        if !in_string {
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    deepest = deepest.max(depth);
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
            out.push(b);
            i += 1;
            continue;
        }
        match (b, bytes.get(i + 1)) {
            (b'"', _) => {
                in_string = false;
                out.push(b);
                i += 1;
            }
            (b'\\', Some(b'u')) => match hex4(i + 2) {
                Some(high @ 0xD800..0xDC00)
                    if bytes.get(i + 6..i + 8) == Some(b"\\u")
                        && hex4(i + 8).is_some_and(|low| (0xDC00..0xE000).contains(&low)) =>
                {
                    let _ = high;
                    out.extend_from_slice(&bytes[i..i + 12]);
                    i += 12;
                }
                Some(0xD800..0xE000) => {
                    out.extend_from_slice(b"\\ufffd");
                    i += 6;
                }
                _ => {
                    out.extend_from_slice(&bytes[i..i + 2]);
                    i += 2;
                }
            },
            (b'\\', Some(&next)) => {
                out.extend_from_slice(&[b, next]);
                i += 2;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    // Only ASCII escapes were replaced by ASCII: still UTF-8.
    (String::from_utf8(out).expect("UTF-8"), deepest)
}

/// Numbers compared by value: the SDK's writer writes `1.0` as `1`, as
/// `JSON.stringify` does.
fn by_value(value: &Value) -> Value {
    match value {
        Value::Number(n) => n.as_f64().map_or(Value::Null, |f| f.into()),
        Value::Array(items) => items.iter().map(by_value).collect(),
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), by_value(v))).collect(),
        other => other.clone(),
    }
}

fn value(input: &Input<'_>) {
    let ours = json::from_str::<Value>(input.text);
    let theirs = input.theirs::<Value>();
    input.agree("Value", &ours, &theirs);
    if let (Ok(ours), Ok(theirs)) = (&ours, &theirs) {
        assert_eq!(ours, theirs, "Value: {:?}", input.text);
    }
    // What the SDK writes, serde_json reads back (within its own limit).
    if let Some(ours) = ours.as_ref().ok().filter(|_| input.depth < MAX_DEPTH) {
        let written = json::to_string(ours).expect("a value is written");
        let read: Value = serde_json::from_str(&written).expect("serde_json reads it");
        assert_eq!(by_value(&read), by_value(ours), "{written}");
    }
}

fn raw(input: &Input<'_>) {
    let ours = json::from_str::<json::Raw<'_>>(input.text);
    let theirs = input.theirs::<IgnoredAny>();
    input.agree("Raw", &ours, &theirs);
    if let Ok(json::Raw(text)) = ours {
        assert_eq!(text, input.text.trim_matches([' ', '\n', '\r', '\t']));
    }
}

/// A type the SDK reads and writes with its derived tables ([`json::Read`],
/// [`json::Write`]) and serde_json with serde's derived reader (the cache
/// record, and the state in it).
fn typed<T>(input: &Input<'_>, what: &str)
where
    T: json::Read + json::Write + DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let ours = json::read::<T>(input.text);
    let theirs = input.theirs::<T>();
    input.agree(what, &ours, &theirs);
    if let (Ok(ours), Ok(theirs)) = (&ours, &theirs) {
        assert_eq!(ours, theirs, "{what}: {:?}", input.text);
    }
    // What the SDK writes, serde_json reads back the same (within its own
    // nesting limit).
    if let Some(ours) = ours.as_ref().ok().filter(|_| input.depth < MAX_DEPTH) {
        let written = json::write(ours);
        let read: T = serde_json::from_str(&written).expect("serde_json reads it");
        assert_eq!(&read, ours, "{what}: {written}");
    }
}

/// Whether `kind` names a type events carry: any `SyncEventType` but the
/// seed's `incremental_update`.
fn carried(kind: &Value) -> bool {
    SyncEventType::deserialize(kind).is_ok_and(|kind| kind != SyncEventType::IncrementalUpdate)
}

fn event(input: &Input<'_>) {
    let ours = json::read::<WireEvent>(input.text);
    let protocol = input.theirs::<SyncEvent>();
    match &ours {
        Ok(WireEvent::Known(event)) => {
            input.agree("SyncEvent", &ours, &protocol);
            if let Ok(protocol) = &protocol {
                assert_eq!(event, protocol, "SyncEvent: {:?}", input.text);
            }
        }
        Ok(WireEvent::Unknown { kind, .. }) => {
            assert!(!carried(&Value::from(kind.as_str())), "{kind} is known");
            assert!(protocol.is_err(), "SyncEvent of type {kind}");
        }
        Err(_) => input.agree("SyncEvent", &ours, &protocol),
    }
}

fn response(input: &Input<'_>) {
    let ours = json::read::<WireResponse>(input.text).map(WireResponse::into_parts);
    let protocol = input.theirs::<SyncResponse>();
    match (&ours, &protocol) {
        // Every answer serde_json reads, the SDK reads the same.
        (Ok(ours), Ok(protocol)) => {
            assert_eq!(
                ours,
                &(protocol.clone(), None),
                "SyncResponse: {:?}",
                input.text
            );
        }
        // What the SDK reads and serde_json refuses: an answer with a
        // reason this release does not know (read as none), or an event of
        // a type it does not know (the events before it kept), or nested as
        // deep as the SDK reads and serde_json not. With the reason made
        // null and the events cut there, serde_json reads the same answer.
        (Ok((ours, unknown)), Err(e)) => {
            assert!(
                input.depth <= MAX_DEPTH,
                "SyncResponse: text nested {} deep was read",
                input.depth
            );
            let mut value = match serde_json::from_str::<Value>(&input.theirs) {
                Ok(value) => value,
                Err(ve) => {
                    assert!(
                        input.depth == MAX_DEPTH
                            && ve.to_string().starts_with("recursion limit exceeded"),
                        "WireResponse: the SDK reads what serde_json refuses ({e}; {ve}): {:?}",
                        input.text
                    );
                    return;
                }
            };
            if let Some(reason) = value.get_mut("reason").filter(|r| r.is_string())
                && FullSyncReason::deserialize(&*reason).is_err()
            {
                *reason = Value::Null;
            }
            if let Some(Value::Array(events)) = value.get_mut("events")
                && let Some(first) = events
                    .iter()
                    .position(|e| !e.get("type").is_some_and(carried))
            {
                assert!(
                    unknown.is_some(),
                    "an event cut that the SDK read: {:?}",
                    input.text
                );
                // The events after the cut the SDK read too: those of a
                // known type serde_json reads as well.
                for event in &events[first..] {
                    if event.get("type").is_some_and(carried) {
                        assert!(
                            SyncEvent::deserialize(event).is_ok(),
                            "an event after the cut that serde_json refuses: {:?}",
                            input.text
                        );
                    }
                }
                events.truncate(first);
            }
            let theirs = serde_json::from_value::<SyncResponse>(value).unwrap_or_else(|e| {
                panic!(
                    "WireResponse: the SDK reads what serde_json refuses ({e}): {:?}",
                    input.text
                )
            });
            assert_eq!(ours, &theirs, "SyncResponse: {:?}", input.text);
        }
        (Err(_), _) => input.agree("SyncResponse", &ours, &protocol),
    }
}
