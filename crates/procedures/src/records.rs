//! Notification records as admins and services manage them (the Directus-style API).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tidings_domain::{
    Caller, Error, ExternalId, GENERAL_TYPE_KEY, format_timestamp, validate_type_key,
};
use tidings_persistence::{NewNotification, NotificationRecord};

use crate::Ctx;
use crate::input::decode_at;

/// At most this many records in one `notifications.create` call.
pub(crate) const MAX_CREATE: usize = 1000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateInput {
    recipient: String,
    subject: String,
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    data: Option<Value>,
    sender_id: Option<String>,
    collection: Option<String>,
    item: Option<String>,
}

/// A notification record as admins and services see it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RecordOutput {
    id: String,
    recipient: String,
    organization_id: String,
    #[serde(rename = "type")]
    kind: String,
    subject: String,
    message: String,
    data: Option<Value>,
    status: &'static str,
    read: bool,
    read_at: Option<String>,
    seen_at: Option<String>,
    sender_id: Option<String>,
    collection: Option<String>,
    item: Option<String>,
    timestamp: String,
}

impl From<NotificationRecord> for RecordOutput {
    fn from(n: NotificationRecord) -> Self {
        Self {
            id: n.id.to_string(),
            recipient: n.user_id.into_string(),
            organization_id: n.organization_id.into_string(),
            kind: n.kind,
            subject: n.title,
            message: n.message,
            data: n.data,
            status: n.status.as_str(),
            read: n.read,
            read_at: n.read_at.map(format_timestamp),
            seen_at: n.seen_at.map(format_timestamp),
            sender_id: n.sender_id,
            collection: n.collection,
            item: n.item,
            timestamp: format_timestamp(n.created_at),
        }
    }
}

fn text(field: &str, value: String, min: usize, max: usize) -> Result<String, Error> {
    let n = value.chars().count();
    if n < min || n > max {
        return Err(Error::field(
            field,
            format!("must be {min} to {max} characters, got {n}"),
        ));
    }
    Ok(value)
}

fn optional_text(field: &str, value: Option<String>, max: usize) -> Result<Option<String>, Error> {
    value.map(|v| text(field, v, 1, max)).transpose()
}

/// Checks one record's fields; `at` is its place in the input (`""` or `[3]`).
fn validate(at: &str, input: CreateInput) -> Result<(ExternalId, NewNotification), Error> {
    let field = |name: &str| {
        if at.is_empty() {
            name.to_owned()
        } else {
            format!("{at}.{name}")
        }
    };
    let recipient = ExternalId::parse(&field("recipient"), &input.recipient)?;
    let kind = input.kind.unwrap_or_else(|| GENERAL_TYPE_KEY.to_owned());
    validate_type_key(&field("type"), &kind)?;
    let data = match input.data {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(Value::Object(map)),
        Some(_) => return Err(Error::field(&field("data"), "must be an object")),
    };
    let new = NewNotification {
        user_id: recipient.clone(),
        kind,
        title: text(&field("subject"), input.subject, 1, 500)?,
        message: text(
            &field("message"),
            input.message.unwrap_or_default(),
            0,
            10_000,
        )?,
        data,
        sender_id: optional_text(&field("senderId"), input.sender_id, 128)?,
        collection: optional_text(&field("collection"), input.collection, 100)?,
        item: optional_text(&field("item"), input.item, 256)?,
    };
    Ok((recipient, new))
}

/// `notifications.create`: one record or an array of them, all created or none.
pub(crate) async fn create(ctx: Ctx, input: Value) -> Result<Value, Error> {
    let (many, items) = match input {
        Value::Array(items) => {
            if items.is_empty() || items.len() > MAX_CREATE {
                return Err(Error::field(
                    "input",
                    format!("must hold 1 to {MAX_CREATE} records, got {}", items.len()),
                ));
            }
            let items = items
                .into_iter()
                .enumerate()
                .map(|(i, v)| {
                    let at = format!("[{i}]");
                    validate(&at, decode_at(&at, v)?)
                })
                .collect::<Result<Vec<_>, Error>>()?;
            (true, items)
        }
        other => (false, vec![validate("", decode_at("", other)?)?]),
    };

    // Every recipient must exist, and an admin reaches only their own organization.
    let mut ids: Vec<ExternalId> = items.iter().map(|(r, _)| r.clone()).collect();
    ids.sort();
    ids.dedup();
    let found = ctx.db().users_by_ids(&ids).await?;
    let admin_org = match &ctx.caller {
        Some(Caller::User(u)) => Some(u.organization_id.clone()),
        _ => None,
    };
    let organizations: HashMap<ExternalId, ExternalId> = found
        .into_iter()
        .filter(|u| {
            admin_org
                .as_ref()
                .is_none_or(|org| *org == u.organization_id)
        })
        .map(|u| (u.id, u.organization_id))
        .collect();
    let unknown: Vec<&str> = ids
        .iter()
        .filter(|id| !organizations.contains_key(*id))
        .map(|id| id.as_str())
        .collect();
    if !unknown.is_empty() {
        return Err(Error::field(
            "recipient",
            format!("unknown users: {}", unknown.join(", ")),
        ));
    }

    let mut kinds: Vec<&str> = items.iter().map(|(_, n)| n.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let known = ctx.db().notification_types().await?;
    if let Some(bad) = kinds
        .iter()
        .find(|k| !known.iter().any(|t| t.channels.key == **k))
    {
        return Err(Error::field(
            "type",
            format!("unknown notification type {bad:?}"),
        ));
    }

    let rows = items
        .into_iter()
        .map(|(recipient, new)| {
            let org = organizations[&recipient].clone();
            (new, org)
        })
        .collect();
    let created: Vec<RecordOutput> = ctx
        .db()
        .insert_notifications(rows)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    let value = if many {
        serde_json::to_value(created)
    } else {
        serde_json::to_value(created.into_iter().next())
    };
    value.map_err(Error::internal)
}
