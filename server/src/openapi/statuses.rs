//! Every status an operation can answer. The handlers' annotations name
//! their own (404 for an unknown id, 409 for a taken one …); the layers in
//! front of every handler add more, which follow here from what an
//! operation is: its token (401), any page's origin (403), the rate limits
//! (429), the connection cap and the start (503), the request timeout
//! (504), a body (400, 413, 415, 422, 501), a query (400), an `If-Match`
//! (400, 412). Each error
//! has the JSON error body; 401 says `WWW-Authenticate`, 429 and 503 say
//! `Retry-After`, and every answer carries `X-Request-Id`.

use serde_json::{Map, Value, json};

/// What an operation is, as far as the layers in front of it go.
struct Operation {
    path: String,
    admin: bool,
    /// An admin write: its answers say the catalog version after it.
    write: bool,
    read: bool,
    body: bool,
    query: bool,
    path_id: bool,
    if_match: bool,
}

impl Operation {
    fn of(path: &str, method: &str, operation: &Value) -> Self {
        let security = operation["security"].to_string();
        let params = operation["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let has = |at: &str| params.iter().any(|p| p["in"] == at);
        Self {
            path: path.to_owned(),
            admin: security.contains("admin_token"),
            write: security.contains("admin_token") && method != "get",
            read: security.contains("read_token"),
            body: operation.get("requestBody").is_some(),
            query: has("query"),
            path_id: has("path"),
            if_match: params
                .iter()
                .any(|p| p["in"] == "header" && p["name"] == "If-Match"),
        }
    }

    /// The probes are answered past the connection cap.
    fn probe(&self) -> bool {
        matches!(self.path.as_str(), "/healthz" | "/readyz")
    }

    /// The entity a write by id answers with, for the bodies that carry it.
    fn entity(&self) -> Option<&'static str> {
        if self.path.starts_with("/admin/providers/{id}") {
            Some("ProviderSyncInfo")
        } else if self.path.starts_with("/admin/models/{id}") {
            Some("ModelSpecification")
        } else {
            None
        }
    }

    /// The statuses the layers and extractors add, with a description for
    /// the ones the handler did not name.
    fn statuses(&self) -> Vec<(&'static str, String)> {
        let mut statuses = Vec::new();
        let mut unreadable = Vec::new();
        if self.body {
            unreadable.push("the body is not JSON");
            unreadable.push("Transfer-Encoding names chunked twice");
        }
        if self.query {
            unreadable.push("a query parameter has the wrong type");
        }
        if self.if_match {
            unreadable.push("If-Match is not of its pattern's form");
        }
        if self.path == "/ws" {
            unreadable.push("the request is not a WebSocket upgrade");
        }
        if !unreadable.is_empty() {
            statuses.push((
                "400",
                format!("The request cannot be read: {}", unreadable.join("; ")),
            ));
        }
        if self.admin {
            statuses.push((
                "401",
                "No admin token, or not a valid one (or no admin token is configured)".into(),
            ));
        } else if self.read {
            statuses.push((
                "401",
                "With --read-tokens-file: no read or admin token, or not a valid one".into(),
            ));
        }
        statuses.push((
            "403",
            "With --cors-origins: a page of an origin not on the list (its Origin header)".into(),
        ));
        if self.path_id {
            statuses.push(("404", "No such entity".into()));
        }
        if self.if_match {
            statuses.push((
                "412",
                "If-Match names a stale revision; the body has the current entity".into(),
            ));
        }
        if self.body {
            statuses.push(("413", "The body is larger than --body-limit".into()));
            statuses.push((
                "415",
                "The body is not sent as application/json, or is sent compressed (a Content-Encoding other than identity)".into(),
            ));
            statuses.push((
                "422",
                "A field's value is not acceptable (named in `field`), or an object gives a key twice".into(),
            ));
        }
        if self.admin || self.read {
            statuses.push((
                "429",
                "Past this address's rate limit (--read-rate-limit, --admin-rate-limit); see Retry-After".into(),
            ));
        }
        if self.body {
            statuses.push((
                "501",
                "The body is sent in a transfer coding other than chunked (Transfer-Encoding: gzip, chunked)".into(),
            ));
        }
        if self.admin || self.read {
            statuses.push((
                "503",
                "At the server's connection limit, or the store does not answer (an instance of several that cannot reach it serves no reads: it cannot tell whether its copy is current), or the server is still starting; see Retry-After"
                    .into(),
            ));
        } else if self.probe() {
            // Answered past the connection cap; not while starting.
            statuses.push((
                "503",
                "The server is still starting (a store's lock waited for, its catalog read); see Retry-After".into(),
            ));
        } else {
            // `/metrics` answers whatever the store does.
            statuses.push((
                "503",
                "At the server's connection limit, or the server is still starting; see Retry-After".into(),
            ));
        }
        statuses.push(("504", "Not answered within --request-timeout-ms".into()));
        statuses
    }
}

/// The headers answers carry, once in `components`; responses refer to them.
fn headers() -> Value {
    let header = |description: &str, schema: Value| json!({ "description": description, "required": true, "schema": schema });
    json!({
        "X-Request-Id": header(
            "The request's id: the client's own when it sent a usable one (1 to 128 printable ASCII characters, no spaces, quotes or backslashes), else one the server made",
            json!({ "type": "string", "minLength": 1, "maxLength": 128 }),
        ),
        "Retry-After": header(
            "Seconds to wait before trying again",
            json!({ "type": "string", "pattern": "^[1-9][0-9]*$" }),
        ),
        "WWW-Authenticate": header(
            "The scheme to authenticate with",
            json!({ "type": "string", "enum": ["Bearer"] }),
        ),
        "X-Sync-Version": header(
            "The catalog version after the write",
            json!({ "type": "string", "pattern": "^[0-9]+$" }),
        ),
        "ETag": header(
            "The entity's revision, quoted: what `If-Match` names",
            json!({ "type": "string", "pattern": "^\"[0-9]+\"$" }),
        ),
    })
}

fn header(name: &str) -> Value {
    json!({ "$ref": format!("#/components/headers/{name}") })
}

fn error_body() -> Value {
    json!({ "application/json": { "schema": { "$ref": "#/components/schemas/ErrorBody" } } })
}

/// An error body that also carries the entity as it is now.
fn error_with_current(entity: &str) -> Value {
    json!({ "application/json": { "schema": {
        "allOf": [{ "$ref": "#/components/schemas/ErrorBody" }],
        "type": "object",
        "required": ["error", "current"],
        "properties": {
            "current": {
                "$ref": format!("#/components/schemas/{entity}"),
                "description": "The entity as it is now",
            },
        },
    } } })
}

pub(super) fn apply(doc: &mut Value) {
    doc["components"]["headers"] = headers();
    for (path, method, operation) in super::operations(doc) {
        let op = Operation::of(&path, &method, operation);
        let responses = operation["responses"]
            .as_object_mut()
            .expect("an operation has responses");
        for (status, description) in op.statuses() {
            responses
                .entry(status)
                .or_insert_with(|| json!({ "description": description }));
        }
        for (status, response) in responses.iter_mut() {
            let response = response.as_object_mut().expect("a response is an object");
            shape(&op, status, response);
        }
    }
}

/// The body and headers of one response.
fn shape(op: &Operation, status: &str, response: &mut Map<String, Value>) {
    let error = status.starts_with('4') || status.starts_with('5');
    if error {
        let content = match (status, op.entity()) {
            ("412", Some(entity)) => error_with_current(entity),
            // A write by id that contradicts the entity's own fields.
            ("409", Some(entity)) => error_with_current(entity),
            _ => error_body(),
        };
        response.insert("content".into(), content);
    }
    let headers = response
        .entry("headers")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("headers are an object");
    headers.insert("X-Request-Id".into(), header("X-Request-Id"));
    match status {
        "401" => {
            headers.insert("WWW-Authenticate".into(), header("WWW-Authenticate"));
        }
        // The readiness probe's 503 is mostly the store's, said without a
        // wait (a starting server's says one).
        "429" | "503" if op.path != "/readyz" => {
            headers.insert("Retry-After".into(), header("Retry-After"));
        }
        "503" => {
            headers.insert(
                "Retry-After".into(),
                json!({
                    "description": "Seconds to wait before trying again: sent while the server is starting, not when the store does not answer (a readiness probe asks again at its own interval)",
                    "required": false,
                    "schema": { "type": "string", "pattern": "^[1-9][0-9]*$" },
                }),
            );
        }
        _ if op.write && status.starts_with('2') => {
            headers.insert("X-Sync-Version".into(), header("X-Sync-Version"));
        }
        _ => {}
    }
    // Entities written, or read one at a time, answer with their revision.
    let entity = response.get("content").is_some_and(|c| {
        c.to_string().contains("ProviderSyncInfo") || c.to_string().contains("ModelSpecification")
    });
    let one = response
        .get("content")
        .and_then(|c| c.pointer("/application~1json/schema/$ref"))
        .is_some();
    if status.starts_with('2') && entity && (op.write || one) {
        response["headers"]["ETag"] = header("ETag");
    }
}
