//! The server's messages as the SDK reads them, on the table-driven reader
//! of `provider_sync_wire`. `SyncEvent` flattens its payload, and serde
//! reads a flattened field by buffering the whole object into a generic
//! tree first: code the wasm cannot afford. Here `type` picks the payload's
//! type and `data` is read straight into it; `data` sent before `type` is
//! kept as text ([`Reader::raw`]) until the type is known. The JSON is the
//! same; only the reading differs.

use provider_sync_protocol::{
    EventPayload, FullSyncReason, SyncEvent, SyncEventType, SyncResponse, SyncState, SyncType,
};

use crate::json::{self, Read, Reader};

/// A `SyncEvent` read without buffering, or the type and version of an
/// event of a type this release does not know (its data skipped): a newer
/// server's event must not make a whole answer unreadable.
#[derive(Debug, Clone, PartialEq)]
// Read and taken apart at once; boxing the common case would cost an
// allocation per event to save stack in the rare one.
#[allow(clippy::large_enum_variant)]
pub enum WireEvent {
    Known(SyncEvent),
    Unknown { kind: String, version: u64 },
}

impl WireEvent {
    pub fn known(self) -> Option<SyncEvent> {
        match self {
            Self::Known(event) => Some(event),
            Self::Unknown { .. } => None,
        }
    }
}

/// `POST /sync`'s answer, with its events read as [`WireEvent`]s.
#[derive(Debug, Read)]
pub struct WireResponse {
    sync_type: SyncType,
    version: u64,
    epoch: String,
    events: Vec<WireEvent>,
    state: Option<SyncState>,
    /// A reason this release does not know reads as none, as does a
    /// missing one.
    #[serde(default)]
    #[wire(with = "reason")]
    reason: Option<FullSyncReason>,
    checksum: String,
}

fn reason(r: &mut Reader<'_>) -> json::Result<Option<FullSyncReason>> {
    // A string or null, as any `Option<String>`.
    let text = r.raw()?;
    let name: Option<String> = json::read(text)?;
    Ok(name.and_then(|_| json::read(text).ok()))
}

impl WireResponse {
    /// The answer, with its events up to the first of a type this release
    /// does not know, and that type.
    pub fn into_parts(self) -> (SyncResponse, Option<String>) {
        let mut unknown = None;
        let mut events = Vec::with_capacity(self.events.len());
        for event in self.events {
            match event {
                WireEvent::Known(event) => events.push(event),
                WireEvent::Unknown { kind, .. } => {
                    unknown = Some(kind);
                    break;
                }
            }
        }
        let response = SyncResponse {
            sync_type: self.sync_type,
            version: self.version,
            epoch: self.epoch,
            events,
            state: self.state,
            reason: self.reason,
            checksum: self.checksum,
        };
        (response, unknown)
    }
}

/// An event's `type`: one this release knows, or another's name.
enum Kind {
    Known(SyncEventType),
    Unknown(String),
}

// SAFETY: the default `read_to`.
unsafe impl Read for Kind {
    fn read(r: &mut Reader<'_>) -> json::Result<Self> {
        let text = r.raw()?;
        let name = String::read(&mut Reader::new(text))?;
        Ok(match json::read(text) {
            // The seed's name that no event carries: as a newer server's.
            Ok(SyncEventType::IncrementalUpdate) | Err(_) => Kind::Unknown(name),
            Ok(kind) => Kind::Known(kind),
        })
    }
}

/// Reads an event's `data` as the payload its `type` names.
fn payload(r: &mut Reader<'_>, kind: SyncEventType) -> json::Result<EventPayload> {
    use EventPayload as P;
    use SyncEventType as T;
    Ok(match kind {
        T::FullSync => P::FullSync(Read::read(r)?),
        T::ProviderAdded => P::ProviderAdded(Read::read(r)?),
        T::ProviderUpdated => P::ProviderUpdated(Read::read(r)?),
        T::ProviderRemoved => P::ProviderRemoved(Read::read(r)?),
        T::ProviderStatusChanged => P::ProviderStatusChanged(Read::read(r)?),
        T::ModelAdded => P::ModelAdded(Read::read(r)?),
        T::ModelUpdated => P::ModelUpdated(Read::read(r)?),
        T::ModelRemoved => P::ModelRemoved(Read::read(r)?),
        T::ModelDeprecated => P::ModelDeprecated(Read::read(r)?),
        T::ActiveProviderChanged => P::ActiveProviderChanged(Read::read(r)?),
        T::Hello => P::Hello(Read::read(r)?),
        T::Heartbeat => P::Heartbeat(Read::read(r)?),
        T::ResyncRequired => P::ResyncRequired(Read::read(r)?),
        T::Error => P::Error(Read::read(r)?),
        // Never `Kind::Known` (see `Kind::read`).
        T::IncrementalUpdate => {
            return Err(json::Error::new(crate::json::concat(&[
                "unknown variant `",
                "incremental_update`",
            ])));
        }
    })
}

/// Reads the value of `field` into `slot`; a field given twice is an error,
/// as in serde's derived readers.
fn once<T: Read>(r: &mut Reader<'_>, slot: &mut Option<T>, field: &str) -> json::Result<()> {
    if slot.is_some() {
        return Err(duplicate(field));
    }
    *slot = Some(T::read(r)?);
    Ok(())
}

fn duplicate(field: &str) -> json::Error {
    json::Error::new(crate::json::concat(&["duplicate field `", field, "`"]))
}

fn missing(field: &str) -> json::Error {
    json::Error::new(crate::json::concat(&["missing field `", field, "`"]))
}

// SAFETY: the default `read_to`.
unsafe impl Read for WireEvent {
    fn read(r: &mut Reader<'_>) -> json::Result<Self> {
        let (mut id, mut version, mut timestamp) = (None, None, None);
        let (mut kind, mut data, mut early) = (None, None, None);
        r.object(&mut |r, key| match key {
            "id" => once(r, &mut id, "id"),
            "version" => once(r, &mut version, "version"),
            "timestamp" => once(r, &mut timestamp, "timestamp"),
            "type" => once(r, &mut kind, "type"),
            "data" if data.is_some() || early.is_some() => Err(duplicate("data")),
            "data" => {
                match &kind {
                    Some(Kind::Known(kind)) => data = Some(payload(r, *kind)?),
                    // The data of an event this release does not know is
                    // stepped over; `early` marks it seen.
                    Some(Kind::Unknown(_)) => early = Some(r.raw().map(|_| "")?),
                    // Before its type: kept as text until the type is known.
                    None => early = Some(r.raw()?),
                }
                Ok(())
            }
            _ => r.skip(),
        })?;
        let version = version.ok_or_else(|| missing("version"))?;
        let kind = match kind.ok_or_else(|| missing("type"))? {
            Kind::Known(kind) => kind,
            Kind::Unknown(kind) => return Ok(WireEvent::Unknown { kind, version }),
        };
        let payload = match (data, early) {
            (Some(payload), _) => payload,
            (None, Some(text)) => json::read_with(text, |r| payload(r, kind))?,
            (None, None) => return Err(missing("data")),
        };
        Ok(WireEvent::Known(SyncEvent {
            id: id.ok_or_else(|| missing("id"))?,
            version,
            timestamp: timestamp.ok_or_else(|| missing("timestamp"))?,
            payload,
        }))
    }
}
