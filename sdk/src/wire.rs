//! The server's messages as the SDK reads them. `SyncEvent` flattens its
//! payload, and serde reads a flattened field by buffering the whole object
//! into a generic tree first: code the wasm cannot afford. Here `type`
//! picks the payload's type and `data` is read straight into it; `data` sent
//! before `type` is kept as text ([`json::Raw`]) until the type is known.
//! The JSON is the same; only the reading differs.

use std::fmt;

use provider_sync_protocol::{
    EventPayload, FullSyncReason, SyncEvent, SyncEventType, SyncResponse, SyncState, SyncType,
};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::json;

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
#[derive(Debug, Deserialize)]
pub struct WireResponse {
    sync_type: SyncType,
    version: u64,
    epoch: String,
    events: Vec<WireEvent>,
    state: Option<SyncState>,
    /// A reason this release does not know reads as none; so does a
    /// missing one, as for any `Option` (`deserialize_with` alone would
    /// make it required).
    #[serde(default, deserialize_with = "reason")]
    reason: Option<FullSyncReason>,
    checksum: String,
}

fn reason<'de, D: Deserializer<'de>>(d: D) -> Result<Option<FullSyncReason>, D::Error> {
    use serde::de::IntoDeserializer;
    let Some(name) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    Ok(FullSyncReason::deserialize(
        <&str as IntoDeserializer<'_, de::value::Error>>::into_deserializer(&name),
    )
    .ok())
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

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Key {
    Id,
    Version,
    Timestamp,
    Type,
    Data,
    #[serde(other)]
    Other,
}

/// An event's `type`: one this release knows, or another's name.
enum Kind {
    Known(SyncEventType),
    Unknown(String),
}

impl<'de> Deserialize<'de> for Kind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::IntoDeserializer;
        let name = String::deserialize(d)?;
        let known = SyncEventType::deserialize(
            <&str as IntoDeserializer<'_, de::value::Error>>::into_deserializer(&name),
        );
        Ok(match known {
            Ok(kind) => Kind::Known(kind),
            Err(_) => Kind::Unknown(name),
        })
    }
}

/// Reads an event's `data` as the payload its `type` names.
struct Payload(SyncEventType);

impl<'de> DeserializeSeed<'de> for Payload {
    type Value = EventPayload;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<EventPayload, D::Error> {
        use EventPayload as P;
        use SyncEventType as T;
        Ok(match self.0 {
            T::FullSync => P::FullSync(Deserialize::deserialize(d)?),
            T::ProviderAdded => P::ProviderAdded(Deserialize::deserialize(d)?),
            T::ProviderUpdated => P::ProviderUpdated(Deserialize::deserialize(d)?),
            T::ProviderRemoved => P::ProviderRemoved(Deserialize::deserialize(d)?),
            T::ProviderStatusChanged => P::ProviderStatusChanged(Deserialize::deserialize(d)?),
            T::ModelAdded => P::ModelAdded(Deserialize::deserialize(d)?),
            T::ModelUpdated => P::ModelUpdated(Deserialize::deserialize(d)?),
            T::ModelRemoved => P::ModelRemoved(Deserialize::deserialize(d)?),
            T::ModelDeprecated => P::ModelDeprecated(Deserialize::deserialize(d)?),
            T::ActiveProviderChanged => P::ActiveProviderChanged(Deserialize::deserialize(d)?),
            T::Hello => P::Hello(Deserialize::deserialize(d)?),
            T::Heartbeat => P::Heartbeat(Deserialize::deserialize(d)?),
            T::ResyncRequired => P::ResyncRequired(Deserialize::deserialize(d)?),
            T::Error => P::Error(Deserialize::deserialize(d)?),
        })
    }
}

/// Reads the value of `field` into `slot`; a field given twice is an error,
/// as in serde's derived readers.
fn once<'de, A: MapAccess<'de>, T: Deserialize<'de>>(
    map: &mut A,
    slot: &mut Option<T>,
    field: &'static str,
) -> Result<(), A::Error> {
    if slot.is_some() {
        return Err(de::Error::duplicate_field(field));
    }
    *slot = Some(map.next_value()?);
    Ok(())
}

struct EventVisitor;

impl<'de> Visitor<'de> for EventVisitor {
    type Value = WireEvent;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sync event")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WireEvent, A::Error> {
        let (mut id, mut version, mut timestamp) = (None, None, None);
        let (mut kind, mut payload, mut early) = (None, None, None);
        while let Some(key) = map.next_key()? {
            match key {
                Key::Id => once(&mut map, &mut id, "id")?,
                Key::Version => once(&mut map, &mut version, "version")?,
                Key::Timestamp => once(&mut map, &mut timestamp, "timestamp")?,
                Key::Type => once(&mut map, &mut kind, "type")?,
                Key::Data if payload.is_some() || early.is_some() => {
                    return Err(de::Error::duplicate_field("data"));
                }
                Key::Data => match &kind {
                    Some(Kind::Known(kind)) => payload = Some(map.next_value_seed(Payload(*kind))?),
                    Some(Kind::Unknown(_)) => {
                        map.next_value::<IgnoredAny>()?;
                        early = Some(json::Raw(""));
                    }
                    None => early = Some(map.next_value::<json::Raw<'de>>()?),
                },
                Key::Other => drop(map.next_value::<IgnoredAny>()?),
            }
        }
        let version = version.ok_or_else(|| de::Error::missing_field("version"))?;
        let kind = match kind.ok_or_else(|| de::Error::missing_field("type"))? {
            Kind::Known(kind) => kind,
            Kind::Unknown(kind) => return Ok(WireEvent::Unknown { kind, version }),
        };
        let payload = match (payload, early) {
            (Some(payload), _) => payload,
            (None, Some(text)) => {
                json::from_str_seed(text.0, Payload(kind)).map_err(de::Error::custom)?
            }
            (None, None) => return Err(de::Error::missing_field("data")),
        };
        Ok(WireEvent::Known(SyncEvent {
            id: id.ok_or_else(|| de::Error::missing_field("id"))?,
            version,
            timestamp: timestamp.ok_or_else(|| de::Error::missing_field("timestamp"))?,
            payload,
        }))
    }
}

impl<'de> Deserialize<'de> for WireEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(EventVisitor)
    }
}
