//! YClients webhook events, `{company_id, resource, resource_id, status,
//! data}`, read as hints: which entity of which stream to fetch again.
//! The platform signs nothing and documents no retries or ordering, so
//! `data` is never used as data.

use serde_json::Value;
use sync_core::Hint;

use crate::catalogue::{CatalogueKind, YclientsCatalogue};
use crate::clients::YclientsClients;
use crate::records::YclientsRecords;

/// The largest body read as an event; larger ones are refused unread.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// Why a webhook body is not an event.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// Not JSON, or not an object.
    #[error("the body is not a JSON object: {0}")]
    NotJson(String),
    /// A field is missing or of the wrong kind.
    #[error("field {field}: {problem}")]
    Field {
        /// Which field.
        field: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Larger than [`MAX_EVENT_BYTES`].
    #[error("the body is larger than {MAX_EVENT_BYTES} bytes")]
    TooLarge,
}

/// What an event asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum WebhookHint {
    /// Fetch this entity's stream again.
    Fetch {
        /// The company the event is about.
        company_id: u64,
        /// The entity.
        hint: Hint,
    },
    /// A resource no stream keeps (e.g. `goods_transaction`): nothing to do.
    Ignored {
        /// The resource named.
        resource: String,
    },
}

/// Reads a webhook body.
pub fn parse_event(body: &[u8]) -> Result<WebhookHint, WebhookError> {
    if body.len() > MAX_EVENT_BYTES {
        return Err(WebhookError::TooLarge);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::NotJson(e.to_string()))?;
    let Value::Object(event) = value else {
        return Err(WebhookError::NotJson("not an object".into()));
    };
    let field = |field: &'static str, problem: &'static str| WebhookError::Field { field, problem };
    let company_id = match event.get("company_id") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        None => return Err(field("company_id", "missing")),
        _ => None,
    }
    .filter(|&id| id > 0)
    .ok_or_else(|| field("company_id", "not a positive integer"))?;
    let resource = match event.get("resource") {
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 64 => s.as_str(),
        None => return Err(field("resource", "missing")),
        _ => return Err(field("resource", "not a short string")),
    };
    let resource_id = match event.get("resource_id") {
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        None => return Err(field("resource_id", "missing")),
        _ => None,
    }
    .filter(|&id| id > 0)
    .ok_or_else(|| field("resource_id", "not a positive integer"))?;
    match event.get("status") {
        Some(Value::String(s)) if matches!(s.as_str(), "create" | "update" | "delete") => {}
        None => return Err(field("status", "missing")),
        _ => return Err(field("status", "not create, update or delete")),
    }
    let (stream, entity) = match resource {
        "record" => (YclientsRecords::stream_id(company_id), "record"),
        "client" => (YclientsClients::stream_id(company_id), "client"),
        other => match CatalogueKind::ALL.iter().find(|k| k.entity() == other) {
            Some(&kind) => (
                YclientsCatalogue::stream_id(company_id, kind),
                kind.entity(),
            ),
            None => {
                return Ok(WebhookHint::Ignored {
                    resource: other.to_string(),
                })
            }
        },
    };
    Ok(WebhookHint::Fetch {
        company_id,
        hint: Hint {
            stream,
            entity: entity.to_string(),
            external_id: resource_id.to_string(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_as_the_reference_shows_them_become_hints() {
        let body = br#"{"company_id": 101, "resource": "record", "resource_id": 5001,
            "status": "update", "data": {"id": 5001, "services": []}}"#;
        let WebhookHint::Fetch { company_id, hint } = parse_event(body).unwrap() else {
            panic!("not a fetch");
        };
        assert_eq!(company_id, 101);
        assert_eq!(hint.stream, YclientsRecords::stream_id(101));
        assert_eq!(
            (hint.entity.as_str(), hint.external_id.as_str()),
            ("record", "5001")
        );
        let body = br#"{"company_id": "101", "resource": "service_category",
            "resource_id": "7", "status": "delete", "data": null}"#;
        let WebhookHint::Fetch { hint, .. } = parse_event(body).unwrap() else {
            panic!("not a fetch");
        };
        assert_eq!(
            hint.stream,
            YclientsCatalogue::stream_id(101, CatalogueKind::ServiceCategories)
        );
        let body = br#"{"company_id": 101, "resource": "goods_transaction",
            "resource_id": 3, "status": "create", "data": {}}"#;
        assert_eq!(
            parse_event(body).unwrap(),
            WebhookHint::Ignored {
                resource: "goods_transaction".into()
            }
        );
    }

    #[test]
    fn bad_bodies_name_what_is_wrong() {
        for (body, needle) in [
            (&b"not json"[..], "not a JSON object"),
            (b"[1, 2]", "not an object"),
            (b"{\"resource\": \"record\"}", "company_id: missing"),
            (
                b"{\"company_id\": -4, \"resource\": \"record\", \"resource_id\": 1, \"status\": \"update\"}",
                "company_id: not a positive integer",
            ),
            (
                b"{\"company_id\": 1, \"resource\": \"record\", \"resource_id\": 1, \"status\": \"drop\"}",
                "status: not create",
            ),
            (
                b"{\"company_id\": 1, \"resource\": {}, \"resource_id\": 1, \"status\": \"update\"}",
                "resource: not a short string",
            ),
        ] {
            let e = parse_event(body).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
        let huge = vec![b' '; MAX_EVENT_BYTES + 1];
        assert_eq!(parse_event(&huge).unwrap_err(), WebhookError::TooLarge);
    }
}
