//! Notification types as templates, and `notifications.notify`: one call that reaches users by
//! id, by group (AND/OR), or all of them, minus exclusions.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tidings_domain::{Caller, ChannelSetting, Error, ExternalId, TypeChannels, validate_type_key};
use tidings_persistence::{
    Fanout, FanoutOutcome, GroupOperator, IdempotencyClaim, Recipients, TypeRecord,
};
use uuid::Uuid;

use crate::Ctx;
use crate::registry::NoInput;
use crate::templates;

/// At most this many explicit user ids (and exclusions) per call; groups or `allUsers` reach more.
pub(crate) const MAX_USER_IDS: usize = 10_000;
/// At most this many groups per call.
pub(crate) const MAX_GROUPS: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelsInput {
    email: Option<bool>,
    #[serde(rename = "inApp")]
    in_app: Option<bool>,
    push: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct UpsertTypeInput {
    key: String,
    description: Option<String>,
    title_template: String,
    message_template: String,
    channels: ChannelsInput,
    required: Option<bool>,
}

/// A type as the API shows it: `channels` lists the supported channels with their defaults.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TypeOutput {
    key: String,
    description: String,
    title_template: String,
    message_template: String,
    channels: Map<String, Value>,
    required: bool,
}

impl From<TypeRecord> for TypeOutput {
    fn from(t: TypeRecord) -> Self {
        let channels = tidings_domain::Channel::ALL
            .into_iter()
            .filter(|c| t.channels.setting(*c).supported)
            .map(|c| {
                (
                    c.as_str().to_owned(),
                    Value::Bool(t.channels.setting(c).default),
                )
            })
            .collect();
        Self {
            key: t.channels.key,
            description: t.description,
            title_template: t.title_template,
            message_template: t.message_template,
            channels,
            required: t.channels.required,
        }
    }
}

fn setting(choice: Option<bool>) -> ChannelSetting {
    ChannelSetting {
        supported: choice.is_some(),
        default: choice.unwrap_or(false),
    }
}

/// `notificationTypes.upsert`: a channel named in `channels` is supported, and its value is
/// whether users get it until they choose.
pub(crate) async fn upsert_type(ctx: Ctx, input: UpsertTypeInput) -> Result<TypeOutput, Error> {
    validate_type_key("key", &input.key)?;
    if input.key == tidings_domain::GENERAL_TYPE_KEY {
        return Err(Error::field(
            "key",
            "general is built in and cannot be changed",
        ));
    }
    let description = input.description.unwrap_or_default();
    if description.chars().count() > 1000 {
        return Err(Error::field(
            "description",
            "must be at most 1000 characters",
        ));
    }
    for (field, source, max) in [
        ("titleTemplate", &input.title_template, 1000),
        ("messageTemplate", &input.message_template, 10_000),
    ] {
        if source.trim().is_empty() || source.chars().count() > max {
            return Err(Error::field(
                field,
                format!("must be 1 to {max} characters"),
            ));
        }
        templates::check(field, source)?;
    }
    let c = input.channels;
    if c.email.is_none() && c.in_app.is_none() && c.push.is_none() {
        return Err(Error::field(
            "channels",
            "must name at least one of email, inApp, push",
        ));
    }
    let record = TypeRecord {
        channels: TypeChannels {
            key: input.key,
            email: setting(c.email),
            in_app: setting(c.in_app),
            push: setting(c.push),
            required: input.required.unwrap_or(false),
        },
        description,
        title_template: input.title_template,
        message_template: input.message_template,
    };
    Ok(ctx.db().upsert_type(&record).await?.into())
}

#[derive(Debug, Serialize)]
pub(crate) struct TypesOutput {
    types: Vec<TypeOutput>,
}

pub(crate) async fn list_types(ctx: Ctx, _: NoInput) -> Result<TypesOutput, Error> {
    let types = ctx.db().notification_types().await?;
    Ok(TypesOutput {
        types: types.into_iter().map(Into::into).collect(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct GroupsInput {
    operator: String,
    user_group_ids: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct RecipientsInput {
    user_ids: Option<Vec<String>>,
    user_groups: Option<GroupsInput>,
    excluded_user_ids: Option<Vec<String>>,
    all_users: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct NotifyInput {
    key: String,
    recipients: RecipientsInput,
    data: Option<Value>,
    sender_id: Option<String>,
    idempotency_key: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct CountOutput {
    count: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NotifyOutput {
    users_notified: CountOutput,
}

fn user_ids(field: &str, ids: Option<Vec<String>>) -> Result<Vec<ExternalId>, Error> {
    let ids = ids.unwrap_or_default();
    if ids.len() > MAX_USER_IDS {
        return Err(Error::field(
            field,
            format!(
                "at most {MAX_USER_IDS} ids per call, got {}; reach more users with userGroups or allUsers",
                ids.len()
            ),
        ));
    }
    let mut parsed = ids
        .iter()
        .enumerate()
        .map(|(i, id)| ExternalId::parse(&format!("{field}[{i}]"), id))
        .collect::<Result<Vec<_>, _>>()?;
    parsed.sort();
    parsed.dedup();
    Ok(parsed)
}

/// `data` as seed 000's `[{key, value}]` list or as an object.
fn data_object(data: Option<Value>) -> Result<Map<String, Value>, Error> {
    match data {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(Value::Array(items)) => {
            let mut map = Map::new();
            for (i, item) in items.into_iter().enumerate() {
                let Value::Object(mut pair) = item else {
                    return Err(Error::field(
                        &format!("data[{i}]"),
                        "must be an object {key, value}",
                    ));
                };
                let Some(Value::String(key)) = pair.remove("key") else {
                    return Err(Error::field(&format!("data[{i}].key"), "must be a string"));
                };
                if key.is_empty() || key.len() > 100 {
                    return Err(Error::field(
                        &format!("data[{i}].key"),
                        "must be 1 to 100 characters",
                    ));
                }
                let value = pair.remove("value").unwrap_or(Value::Null);
                if let Some(extra) = pair.keys().next() {
                    return Err(Error::field(
                        &format!("data[{i}].{extra}"),
                        "unknown field, expected key and value",
                    ));
                }
                if map.insert(key.clone(), value).is_some() {
                    return Err(Error::field(
                        &format!("data[{i}].key"),
                        format!("{key:?} appears twice"),
                    ));
                }
            }
            Ok(map)
        }
        Some(_) => Err(Error::field(
            "data",
            "must be a list of {key, value} or an object",
        )),
    }
}

/// The input's canonical JSON (object keys sorted) hashed, to tell a replay from a new call.
fn request_hash(value: &Value) -> String {
    fn canonical(value: &Value, out: &mut String) {
        match value {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    canonical(&map[k], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    canonical(item, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut text = String::new();
    canonical(value, &mut text);
    crate::auth::sha256_hex(&text)
}

fn list(ids: &[impl std::fmt::Display]) -> String {
    let shown: Vec<String> = ids.iter().take(20).map(|id| id.to_string()).collect();
    let more = if ids.len() > 20 {
        format!(" and {} more", ids.len() - 20)
    } else {
        String::new()
    };
    format!("{}{more}", shown.join(", "))
}

/// `notifications.notify`'s input decoding alone, as the registry's decoder.
pub(crate) fn decode_notify(input: Value) -> Result<(), Error> {
    crate::input::decode::<NotifyInput>(input).map(|_| ())
}

/// `notifications.notify`.
pub(crate) async fn notify(ctx: Ctx, input: Value) -> Result<NotifyOutput, Error> {
    let hash = request_hash(&match &input {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| k.as_str() != "idempotencyKey")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    });
    let input: NotifyInput = crate::input::decode(input)?;

    validate_type_key("key", &input.key)?;
    let Some(kind) = ctx.db().notification_type(&input.key).await? else {
        return Err(Error::field(
            "key",
            format!("unknown notification type {:?}", input.key),
        ));
    };

    let r = input.recipients;
    let explicit = user_ids("recipients.userIds", r.user_ids)?;
    let excluded = user_ids("recipients.excludedUserIds", r.excluded_user_ids)?;
    let groups = match r.user_groups {
        None => None,
        Some(g) => {
            let operator = match g.operator.as_str() {
                "AND" => GroupOperator::And,
                "OR" => GroupOperator::Or,
                other => {
                    return Err(Error::field(
                        "recipients.userGroups.operator",
                        format!("must be \"AND\" or \"OR\", got {other:?}"),
                    ));
                }
            };
            if g.user_group_ids.len() > MAX_GROUPS {
                return Err(Error::field(
                    "recipients.userGroups.userGroupIds",
                    format!("at most {MAX_GROUPS} groups per call"),
                ));
            }
            let mut ids = g
                .user_group_ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    Uuid::try_parse(id).map_err(|_| {
                        Error::field(
                            &format!("recipients.userGroups.userGroupIds[{i}]"),
                            format!("must be a group id (UUID), got {id:?}"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            ids.sort();
            ids.dedup();
            (!ids.is_empty()).then_some((operator, ids))
        }
    };
    let all_users = r.all_users.unwrap_or(false);
    if explicit.is_empty() && groups.is_none() && !all_users {
        return Err(Error::field(
            "recipients",
            "name at least one recipient: userIds, userGroups or allUsers",
        ));
    }

    let sender_id = match input.sender_id {
        Some(s) if s.is_empty() || s.len() > 128 => {
            return Err(Error::field("senderId", "must be 1 to 128 characters"));
        }
        other => other,
    };
    let idempotency_key = match input.idempotency_key {
        Some(k) if k.is_empty() || k.len() > 200 => {
            return Err(Error::field(
                "idempotencyKey",
                "must be 1 to 200 characters",
            ));
        }
        other => other,
    };

    let data = data_object(input.data)?;
    let title = templates::render("title", &kind.channels.key, &kind.title_template, &data)?;
    let message = templates::render("message", &kind.channels.key, &kind.message_template, &data)?;
    if title.chars().count() > 1000 || message.chars().count() > 10_000 {
        return Err(Error::field(
            "data",
            "renders a title over 1000 or a message over 10000 characters",
        ));
    }

    // An admin reaches only its own organization; a service key, the whole instance.
    let (organization, scope) = match &ctx.caller {
        Some(Caller::User(u)) => (
            Some(u.organization_id.clone()),
            format!("user:{}", u.user_id),
        ),
        Some(Caller::Service(s)) => (None, format!("key:{}", s.key_id)),
        None => return Err(Error::unauthorized()),
    };
    let unknown = ctx
        .db()
        .unknown_users(organization.as_ref(), &explicit)
        .await?;
    if !unknown.is_empty() {
        return Err(Error::field(
            "recipients.userIds",
            format!("unknown users: {}", list(&unknown)),
        ));
    }
    if let Some((_, ids)) = &groups {
        let unknown = ctx.db().unknown_groups(organization.as_ref(), ids).await?;
        if !unknown.is_empty() {
            return Err(Error::field(
                "recipients.userGroups.userGroupIds",
                format!("unknown groups: {}", list(&unknown)),
            ));
        }
    }

    let fanout = Fanout {
        recipients: Recipients {
            organization,
            user_ids: explicit,
            groups,
            all_users,
            excluded,
        },
        kind: kind.channels,
        title,
        message,
        data: (!data.is_empty()).then_some(Value::Object(data)),
        sender_id,
        idempotency: idempotency_key.map(|key| IdempotencyClaim {
            scope,
            key,
            request_hash: hash,
        }),
    };
    let started = std::time::Instant::now();
    match ctx.db().fan_out(&fanout).await? {
        FanoutOutcome::Sent {
            users_notified,
            ids,
        } => {
            ctx.app.outbox.notify_one();
            ctx.app
                .hub
                .many_changed(fanout.recipients.organization.as_ref(), Some(ids))
                .await;
            metrics::histogram!(crate::telemetry::FANOUT_RECIPIENTS).record(users_notified as f64);
            metrics::histogram!(crate::telemetry::FANOUT_DURATION)
                .record(started.elapsed().as_secs_f64());
            tracing::info!(
                kind = %fanout.kind.key,
                users_notified,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "fan-out sent"
            );
            Ok(NotifyOutput {
                users_notified: CountOutput {
                    count: users_notified,
                },
            })
        }
        FanoutOutcome::Replayed { users_notified } => Ok(NotifyOutput {
            users_notified: CountOutput {
                count: users_notified,
            },
        }),
        FanoutOutcome::KeyReused => Err(Error::conflict(
            "idempotencyKey: already used in the last 24 hours with a different input",
        )),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn data_lists_become_objects() {
        let d = data_object(Some(
            json!([{"key": "a", "value": "1"}, {"key": "b", "value": 2}]),
        ))
        .unwrap();
        assert_eq!(Value::Object(d), json!({"a": "1", "b": 2}));
        let err = data_object(Some(
            json!([{"key": "a", "value": 1}, {"key": "a", "value": 2}]),
        ))
        .unwrap_err();
        assert_eq!(err.message, "data[1].key: \"a\" appears twice");
        assert!(data_object(Some(json!("x"))).is_err());
    }

    #[test]
    fn hashes_ignore_key_order() {
        assert_eq!(
            request_hash(&json!({"a": 1, "b": [1, {"y": 2, "x": 1}]})),
            request_hash(&json!({"b": [1, {"x": 1, "y": 2}], "a": 1}))
        );
        assert_ne!(
            request_hash(&json!({"a": 1})),
            request_hash(&json!({"a": 2}))
        );
    }

    #[test]
    fn too_many_ids_point_to_groups() {
        let ids: Vec<String> = (0..10_001).map(|i| format!("u{i}")).collect();
        let err = user_ids("recipients.userIds", Some(ids)).unwrap_err();
        assert!(
            err.message.contains("userGroups or allUsers"),
            "{}",
            err.message
        );
    }
}
