//! A text frame a WebSocket client sends, read by the function a session
//! reads it with. Whatever the text, the answer is a message or an error
//! frame; a message reads back from what serde_json and the SDK write of it,
//! and the error frame, which quotes the client's text, is one the SDK reads.

use provider_sync_protocol::{EventPayload, SyncEvent};
use provider_sync_sdk::json;
use provider_sync_sdk::wire::WireEvent;
use provider_sync_server::ws::read_client_frame;

pub fn check(data: &[u8]) {
    // The socket refuses a text frame that is not UTF-8 before a session
    // sees it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match read_client_frame(text) {
        Ok(message) => {
            let written = serde_json::to_string(&message).expect("a client message serialises");
            assert_eq!(
                read_client_frame(&written),
                Ok(message.clone()),
                "{written}"
            );
            let sdk = json::to_string(&message).expect("the SDK writes a client message");
            assert_eq!(read_client_frame(&sdk), Ok(message), "{sdk}");
        }
        Err(error) => {
            assert_eq!(error.code, "invalid_message");
            assert_eq!(error.field, None);
            // The frame as a session sends it (`Snapshot::control_event`).
            let event = SyncEvent {
                id: "e:7:error".into(),
                version: 7,
                timestamp: "2026-01-01T00:00:00Z".into(),
                payload: EventPayload::Error(error),
            };
            let frame = serde_json::to_string(&event).expect("an event serialises");
            match json::read::<WireEvent>(&frame) {
                Ok(WireEvent::Known(read)) => assert_eq!(read, event, "{frame}"),
                other => panic!("the SDK cannot read the error frame {frame}: {other:?}"),
            }
        }
    }
}
