//! What became of email and push deliveries (`deliveries.list`, and each channel's state on
//! `notifications.get`), and browsers' push subscriptions (`push.*`).

use serde::{Deserialize, Serialize};
use tidings_domain::{Error, ExternalId, NotificationId, format_timestamp};
use tidings_persistence::{DeliveryFilter, DeliveryRecord, PushSubscriptionRecord};

use crate::Ctx;
use crate::accounts::admin_organization;
use crate::delivery::vapid_keys;
use crate::registry::NoInput;

pub(crate) const DEFAULT_LIMIT: i64 = 100;
pub(crate) const MAX_LIMIT: i64 = 1000;
const STATES: [&str; 4] = ["pending", "sending", "sent", "failed"];
const CHANNELS: [&str; 2] = ["email", "push"];

/// A delivery as admins and services see it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeliveryOutput {
    id: String,
    notification_id: Option<String>,
    user_id: String,
    channel: String,
    target: String,
    state: String,
    attempts: i32,
    next_attempt_at: Option<String>,
    last_error: Option<String>,
    sent_at: Option<String>,
    created_at: String,
    updated_at: String,
}

impl From<DeliveryRecord> for DeliveryOutput {
    fn from(d: DeliveryRecord) -> Self {
        let waiting = d.state == "pending" || d.state == "sending";
        Self {
            id: d.id.to_string(),
            notification_id: d.notification_id.map(|id| id.to_string()),
            user_id: d.user_id.into_string(),
            channel: d.channel,
            target: d.target,
            state: d.state,
            attempts: d.attempts,
            next_attempt_at: waiting.then(|| format_timestamp(d.next_attempt_at)),
            last_error: d.last_error,
            sent_at: d.sent_at.map(format_timestamp),
            created_at: format_timestamp(d.created_at),
            updated_at: format_timestamp(d.updated_at),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ListInput {
    state: Option<String>,
    channel: Option<String>,
    user_id: Option<String>,
    notification_id: Option<String>,
    limit: Option<i64>,
    offset: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListOutput {
    deliveries: Vec<DeliveryOutput>,
    has_more: bool,
}

fn one_of(field: &str, value: Option<String>, allowed: &[&str]) -> Result<Option<String>, Error> {
    match value {
        Some(v) if !allowed.contains(&v.as_str()) => Err(Error::field(
            field,
            format!(
                "must be one of {}, got {v:?}",
                allowed
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
        other => Ok(other),
    }
}

/// `deliveries.list`: newest first; an admin sees only its organization's users' deliveries.
pub(crate) async fn list(ctx: Ctx, input: ListInput) -> Result<ListOutput, Error> {
    let limit = input.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}, got {limit}"),
        ));
    }
    let offset = input.offset.unwrap_or(0);
    if offset < 0 {
        return Err(Error::field(
            "offset",
            format!("must be 0 or more, got {offset}"),
        ));
    }
    let filter = DeliveryFilter {
        organization: admin_organization(&ctx).cloned(),
        state: one_of("state", input.state, &STATES)?,
        channel: one_of("channel", input.channel, &CHANNELS)?,
        user_id: input
            .user_id
            .map(|id| ExternalId::parse("userId", &id))
            .transpose()?,
        notification_id: input
            .notification_id
            .map(|id| NotificationId::parse("notificationId", &id).map(|n| n.0))
            .transpose()?,
        limit: limit as u64 + 1,
        offset: offset as u64,
    };
    let mut found = ctx.db().list_deliveries(&filter).await?;
    let has_more = found.len() as i64 > limit;
    found.truncate(limit as usize);
    Ok(ListOutput {
        deliveries: found.into_iter().map(Into::into).collect(),
        has_more,
    })
}

/// The deliveries of one notification, oldest first, for `notifications.get`.
pub(crate) async fn of_notification(
    ctx: &Ctx,
    id: NotificationId,
) -> Result<Vec<DeliveryOutput>, Error> {
    let mut found = ctx
        .db()
        .list_deliveries(&DeliveryFilter {
            notification_id: Some(id.0),
            limit: 1000,
            ..DeliveryFilter::default()
        })
        .await?;
    found.reverse();
    Ok(found.into_iter().map(Into::into).collect())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VapidOutput {
    public_key: String,
}

/// `push.vapidPublicKey`: the application server key a browser passes to `pushManager.subscribe`.
pub(crate) async fn vapid_public_key(ctx: Ctx, _: NoInput) -> Result<VapidOutput, Error> {
    let keys = vapid_keys(ctx.db()).await?;
    Ok(VapidOutput {
        public_key: keys.public,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeysInput {
    p256dh: String,
    auth: String,
}

/// A browser's `PushSubscription.toJSON()`: `expirationTime` is accepted and ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct SubscribeInput {
    endpoint: String,
    keys: KeysInput,
    #[allow(dead_code)]
    expiration_time: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub(crate) struct SuccessOutput {
    success: bool,
}

fn base64url_bytes(field: &str, value: &str, len: usize) -> Result<(), Error> {
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let bytes = engine
        .decode(value.trim_end_matches('='))
        .map_err(|_| Error::field(field, "must be base64url"))?;
    if bytes.len() != len {
        return Err(Error::field(
            field,
            format!("must encode {len} bytes, got {}", bytes.len()),
        ));
    }
    Ok(())
}

fn endpoint(field: &str, value: &str) -> Result<(), Error> {
    let ok = (value.starts_with("https://") || value.starts_with("http://"))
        && value.len() <= 2048
        && !value.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(Error::field(
            field,
            "must be an http(s) URL of at most 2048 characters",
        ))
    }
}

/// `push.subscribe`: stores the signed-in user's browser subscription.
pub(crate) async fn subscribe(ctx: Ctx, input: SubscribeInput) -> Result<SuccessOutput, Error> {
    let user = ctx.user()?.user_id.clone();
    endpoint("endpoint", &input.endpoint)?;
    // An uncompressed P-256 point and a 16-byte secret (RFC 8291).
    base64url_bytes("keys.p256dh", &input.keys.p256dh, 65)?;
    base64url_bytes("keys.auth", &input.keys.auth, 16)?;
    ctx.db()
        .save_push_subscription(
            &user,
            &PushSubscriptionRecord {
                endpoint: input.endpoint,
                p256dh: input.keys.p256dh,
                auth: input.keys.auth,
            },
        )
        .await?;
    Ok(SuccessOutput { success: true })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UnsubscribeInput {
    endpoint: String,
}

/// `push.unsubscribe`: forgets one of the signed-in user's subscriptions.
pub(crate) async fn unsubscribe(ctx: Ctx, input: UnsubscribeInput) -> Result<SuccessOutput, Error> {
    let user = ctx.user()?.user_id.clone();
    endpoint("endpoint", &input.endpoint)?;
    let removed = ctx
        .db()
        .remove_push_subscription(&user, &input.endpoint)
        .await?;
    if !removed {
        return Err(Error::not_found("No such push subscription"));
    }
    Ok(SuccessOutput { success: true })
}
