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
/// A record to create and who it is for.
type Recipient = (ExternalId, NewNotification);

fn validate(at: &str, input: CreateInput) -> Result<Recipient, Error> {
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

/// Reads `notifications.create`'s input, one object or an array of them: whether it was an
/// array, and each record's recipient and contents.
fn parse_create(input: Value) -> Result<(bool, Vec<Recipient>), Error> {
    Ok(match input {
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
    })
}

/// `notifications.create`'s input decoding alone, as the registry's decoder.
pub(crate) fn decode_create(input: Value) -> Result<(), Error> {
    parse_create(input).map(|_| ())
}

/// `notifications.create`: one record or an array of them, all created or none.
pub(crate) async fn create(ctx: Ctx, input: Value) -> Result<Value, Error> {
    let (many, items) = parse_create(input)?;

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
    let kinds: Vec<_> = known.into_iter().map(|t| t.channels).collect();
    let created: Vec<RecordOutput> = ctx
        .db()
        .insert_records(rows, &kinds)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    ctx.app.outbox.notify_one();
    ctx.app.hub.users_changed(&ids).await;
    let value = if many {
        serde_json::to_value(created)
    } else {
        serde_json::to_value(created.into_iter().next())
    };
    value.map_err(Error::internal)
}

// Reading, changing and deleting records (Directus' read/update/delete, one or many).

use tidings_domain::{NotificationId, NotificationStatus};
use tidings_persistence::{KeysOutcome, RecordChanges, RecordFilter, RecordQuery, TextMatch};

use crate::accounts::admin_organization;
use crate::banners::{not_null, nullable, parse_timestamp};

/// At most this many keys in one `notifications.updateMany` or `notifications.deleteMany`.
pub(crate) const MAX_KEYS: usize = 10_000;
pub(crate) const DEFAULT_QUERY_LIMIT: i64 = 100;
pub(crate) const MAX_QUERY_LIMIT: i64 = 1000;
/// At most this many values in one `_in` filter.
pub(crate) const MAX_IN: usize = 1000;

fn record_not_found(id: NotificationId) -> Error {
    Error::not_found(format!("Notification {id} not found"))
}

/// The first ids of a list, and how many more there are.
fn named(ids: &[NotificationId]) -> String {
    let shown: Vec<String> = ids.iter().take(20).map(ToString::to_string).collect();
    match ids.len().saturating_sub(20) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GetInput {
    id: String,
}

/// `notifications.get`: one record; an admin sees only its organization's.
pub(crate) async fn get(ctx: Ctx, input: GetInput) -> Result<RecordWithDeliveries, Error> {
    let id = NotificationId::parse("id", &input.id)?;
    let only = admin_organization(&ctx);
    let record: RecordOutput = ctx
        .db()
        .notification(id)
        .await?
        .filter(|n| only.is_none_or(|org| *org == n.organization_id))
        .map(Into::into)
        .ok_or_else(|| record_not_found(id))?;
    let deliveries = crate::deliveries::of_notification(&ctx, id).await?;
    Ok(RecordWithDeliveries { record, deliveries })
}

/// A record with the state of its email and push deliveries, oldest first.
#[derive(Debug, Serialize)]
pub(crate) struct RecordWithDeliveries {
    #[serde(flatten)]
    record: RecordOutput,
    /// Left out for a record with no email or push delivery, so such a record reads as before.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    deliveries: Vec<crate::deliveries::DeliveryOutput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct FilterInput {
    recipient: Option<Value>,
    sender_id: Option<Value>,
    status: Option<Value>,
    #[serde(rename = "type")]
    kind: Option<Value>,
    collection: Option<Value>,
    item: Option<Value>,
    read: Option<Value>,
    timestamp: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct QueryInput {
    filter: Option<FilterInput>,
    sort: Option<Value>,
    limit: Option<i64>,
    offset: Option<i64>,
    meta: Option<Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MetaOutput {
    #[serde(skip_serializing_if = "Option::is_none")]
    total_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filter_count: Option<u64>,
}

#[derive(Debug, Serialize)]
pub(crate) struct QueryOutput {
    data: Vec<RecordOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<MetaOutput>,
}

/// A text field's filter: a string (equals), `{_eq}`, `{_in: [...]}`, or for a field that may be
/// empty `{_null: bool}`.
fn text_match(field: &str, value: Value, may_be_null: bool) -> Result<TextMatch, Error> {
    let expected = if may_be_null {
        "must be a string, {_eq: string}, {_in: [string]} or {_null: bool}"
    } else {
        "must be a string, {_eq: string} or {_in: [string]}"
    };
    let map = match value {
        Value::String(s) => return Ok(TextMatch::Eq(s)),
        Value::Object(map) if map.len() == 1 => map,
        _ => return Err(Error::field(field, expected)),
    };
    let Some((op, value)) = map.into_iter().next() else {
        return Err(Error::field(field, expected));
    };
    let at = format!("{field}.{op}");
    match (op.as_str(), value) {
        ("_eq", Value::String(s)) => Ok(TextMatch::Eq(s)),
        ("_eq", _) => Err(Error::field(&at, "must be a string")),
        ("_in", Value::Array(items)) => {
            if items.is_empty() || items.len() > MAX_IN {
                return Err(Error::field(
                    &at,
                    format!("must hold 1 to {MAX_IN} values, got {}", items.len()),
                ));
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(Error::field(&format!("{at}[{i}]"), "must be a string")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(TextMatch::In)
        }
        ("_in", _) => Err(Error::field(&at, "must be a list of strings")),
        ("_null", Value::Bool(b)) if may_be_null => Ok(TextMatch::Null(b)),
        ("_null", _) if may_be_null => Err(Error::field(&at, "must be true or false")),
        _ => Err(Error::field(field, expected)),
    }
}

fn filter(input: Option<FilterInput>) -> Result<RecordFilter, Error> {
    let Some(f) = input else {
        return Ok(RecordFilter::default());
    };
    let text = |field: &str, value: Option<Value>, may_be_null: bool| {
        value
            .map(|v| text_match(&format!("filter.{field}"), v, may_be_null))
            .transpose()
    };
    let status = text("status", f.status, false)?;
    match &status {
        Some(TextMatch::Eq(s)) => {
            NotificationStatus::parse("filter.status", s)?;
        }
        Some(TextMatch::In(values)) => {
            for (i, s) in values.iter().enumerate() {
                NotificationStatus::parse(&format!("filter.status._in[{i}]"), s)?;
            }
        }
        _ => {}
    }
    let read = match f.read {
        None => None,
        Some(Value::Bool(b)) => Some(b),
        Some(Value::Object(map))
            if map.len() == 1 && map.get("_eq").is_some_and(Value::is_boolean) =>
        {
            map.get("_eq").and_then(Value::as_bool)
        }
        Some(_) => {
            return Err(Error::field(
                "filter.read",
                "must be true, false or {_eq: bool}",
            ));
        }
    };
    let mut out = RecordFilter {
        recipient: text("recipient", f.recipient, false)?,
        sender_id: text("senderId", f.sender_id, true)?,
        status,
        kind: text("type", f.kind, false)?,
        collection: text("collection", f.collection, true)?,
        item: text("item", f.item, true)?,
        read,
        ..RecordFilter::default()
    };
    match f.timestamp {
        None => {}
        Some(Value::Object(map)) => {
            for (op, value) in map {
                let at = format!("filter.timestamp.{op}");
                let Value::String(s) = value else {
                    return Err(Error::field(&at, "must be an ISO-8601 date-time string"));
                };
                let t = parse_timestamp(&at, &s)?;
                match op.as_str() {
                    "_gt" => out.created_gt = Some(t),
                    "_gte" => out.created_gte = Some(t),
                    "_lt" => out.created_lt = Some(t),
                    "_lte" => out.created_lte = Some(t),
                    _ => {
                        return Err(Error::field(
                            &at,
                            "unknown operator, expected _gt, _gte, _lt or _lte",
                        ));
                    }
                }
            }
        }
        Some(_) => {
            return Err(Error::field(
                "filter.timestamp",
                "must be an object of _gt, _gte, _lt, _lte",
            ));
        }
    }
    Ok(out)
}

/// `"-timestamp"` (newest first, the default) or `"timestamp"`, alone or as a list of one.
fn newest_first(sort: Option<Value>) -> Result<bool, Error> {
    let (field, value) = match sort {
        None => return Ok(true),
        Some(Value::Array(mut items)) if items.len() == 1 => ("sort[0]", items.remove(0)),
        Some(other) => ("sort", other),
    };
    match value.as_str() {
        Some("-timestamp") => Ok(true),
        Some("timestamp") => Ok(false),
        _ => Err(Error::field(
            field,
            format!("must be \"timestamp\" or \"-timestamp\", got {value}"),
        )),
    }
}

/// Which counts to return: `"totalCount"`, `"filterCount"`, `"*"` (both), or a list of them.
fn meta(value: Option<Value>) -> Result<(bool, bool), Error> {
    let items = match value {
        None => return Ok((false, false)),
        Some(Value::Array(items)) => items,
        Some(other) => vec![other],
    };
    let (mut total, mut filtered) = (false, false);
    for item in items {
        match item.as_str() {
            Some("totalCount") => total = true,
            Some("filterCount") => filtered = true,
            Some("*") => (total, filtered) = (true, true),
            _ => {
                return Err(Error::field(
                    "meta",
                    format!("must be \"totalCount\", \"filterCount\" or \"*\", got {item}"),
                ));
            }
        }
    }
    Ok((total, filtered))
}

/// `notifications.query`: records matching `filter`, newest first unless `sort` says
/// otherwise, `limit` from `offset`, with the counts `meta` asks for.
pub(crate) async fn query(ctx: Ctx, input: QueryInput) -> Result<QueryOutput, Error> {
    let limit = input.limit.unwrap_or(DEFAULT_QUERY_LIMIT);
    if !(1..=MAX_QUERY_LIMIT).contains(&limit) {
        return Err(Error::field(
            "limit",
            format!("must be between 1 and {MAX_QUERY_LIMIT}, got {limit}"),
        ));
    }
    let offset = input.offset.unwrap_or(0);
    if offset < 0 {
        return Err(Error::field(
            "offset",
            format!("must be 0 or more, got {offset}"),
        ));
    }
    let (total_count, filter_count) = meta(input.meta)?;
    let query = RecordQuery {
        organization: admin_organization(&ctx).cloned(),
        filter: filter(input.filter)?,
        newest_first: newest_first(input.sort)?,
        limit: limit as u64,
        offset: offset as u64,
        total_count,
        filter_count,
    };
    let page = ctx.db().query_records(&query).await?;
    Ok(QueryOutput {
        data: page.items.into_iter().map(Into::into).collect(),
        meta: (total_count || filter_count).then_some(MetaOutput {
            total_count: page.total_count,
            filter_count: page.filter_count,
        }),
    })
}

/// A partial record, as Directus updates take it: `null` clears `data`, `collection` or `item`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangesInput {
    #[serde(default, deserialize_with = "nullable")]
    subject: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    message: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    status: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    read: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    data: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    collection: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    item: Option<Option<String>>,
}

/// Checks a partial record found at input field `at`.
fn changes(at: &str, c: ChangesInput) -> Result<RecordChanges, Error> {
    let field = |name: &str| format!("{at}.{name}");
    let out = RecordChanges {
        title: not_null(&field("subject"), c.subject)?
            .map(|v| text(&field("subject"), v, 1, 500))
            .transpose()?,
        message: not_null(&field("message"), c.message)?
            .map(|v| text(&field("message"), v, 0, 10_000))
            .transpose()?,
        status: not_null(&field("status"), c.status)?
            .map(|v| NotificationStatus::parse(&field("status"), &v))
            .transpose()?,
        read: not_null(&field("read"), c.read)?,
        data: match c.data {
            None => None,
            Some(None) => Some(None),
            Some(Some(Value::Object(map))) => Some(Some(Value::Object(map))),
            Some(Some(_)) => {
                return Err(Error::field(&field("data"), "must be an object or null"));
            }
        },
        collection: c
            .collection
            .map(|v| v.map(|v| text(&field("collection"), v, 1, 100)).transpose())
            .transpose()?,
        item: c
            .item
            .map(|v| v.map(|v| text(&field("item"), v, 1, 256)).transpose())
            .transpose()?,
    };
    let nothing = out.title.is_none()
        && out.message.is_none()
        && out.status.is_none()
        && out.read.is_none()
        && out.data.is_none()
        && out.collection.is_none()
        && out.item.is_none();
    if nothing {
        return Err(Error::field(
            at,
            "name at least one field to change: subject, message, status, read, data, collection or item",
        ));
    }
    Ok(out)
}

fn keys(values: &[String]) -> Result<Vec<NotificationId>, Error> {
    if values.is_empty() || values.len() > MAX_KEYS {
        return Err(Error::field(
            "keys",
            format!("must hold 1 to {MAX_KEYS} ids, got {}", values.len()),
        ));
    }
    values
        .iter()
        .enumerate()
        .map(|(i, k)| NotificationId::parse(&format!("keys[{i}]"), k))
        .collect()
}

fn unknown_keys(unknown: &[NotificationId]) -> Error {
    Error::field("keys", format!("unknown notifications: {}", named(unknown)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateInput {
    id: String,
    data: ChangesInput,
}

/// `notifications.update`: changes one record and returns it. Updating never sends anything.
pub(crate) async fn update(ctx: Ctx, input: UpdateInput) -> Result<RecordOutput, Error> {
    let id = NotificationId::parse("id", &input.id)?;
    let changes = changes("data", input.data)?;
    let only = admin_organization(&ctx);
    match ctx.db().update_records(&[id], only, &changes).await? {
        KeysOutcome::Done(records) => {
            ctx.app
                .hub
                .users_changed(records.iter().map(|r| &r.user_id))
                .await;
            records
                .into_iter()
                .next()
                .map(Into::into)
                .ok_or_else(|| record_not_found(id))
        }
        KeysOutcome::Unknown(_) => Err(record_not_found(id)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateManyInput {
    keys: Vec<String>,
    data: ChangesInput,
}

/// `notifications.updateMany`: changes every record named, or none if one is unknown; returns
/// them in the order of `keys`.
pub(crate) async fn update_many(
    ctx: Ctx,
    input: UpdateManyInput,
) -> Result<Vec<RecordOutput>, Error> {
    let keys = keys(&input.keys)?;
    let changes = changes("data", input.data)?;
    let only = admin_organization(&ctx);
    match ctx.db().update_records(&keys, only, &changes).await? {
        KeysOutcome::Done(records) => {
            let mut users: Vec<&ExternalId> = records.iter().map(|r| &r.user_id).collect();
            users.sort();
            users.dedup();
            ctx.app.hub.users_changed(users).await;
            Ok(records.into_iter().map(Into::into).collect())
        }
        KeysOutcome::Unknown(unknown) => Err(unknown_keys(&unknown)),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteManyInput {
    keys: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct DeletedOutput {
    success: bool,
    count: u64,
}

/// `notifications.deleteMany`: deletes every record named, or none if one is unknown.
pub(crate) async fn delete_many(ctx: Ctx, input: DeleteManyInput) -> Result<DeletedOutput, Error> {
    let keys = keys(&input.keys)?;
    let only = admin_organization(&ctx);
    match ctx.db().delete_records(&keys, only).await? {
        KeysOutcome::Done(deleted) => {
            ctx.app.hub.users_changed(&deleted.users).await;
            Ok(DeletedOutput {
                success: true,
                count: deleted.count,
            })
        }
        KeysOutcome::Unknown(unknown) => Err(unknown_keys(&unknown)),
    }
}
