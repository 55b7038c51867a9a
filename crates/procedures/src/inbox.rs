//! A user's own inbox: the procedures of the inbox API.

use serde::{Deserialize, Serialize};
use tidings_domain::{Error, NotificationId, NotificationStatus, format_timestamp};
use tidings_persistence::{NotificationRecord, OwnedUpdate};

use crate::auth::Success;
use crate::registry::NoInput;
use crate::{Ctx, Output};

/// An inbox item exactly as the inbox API shows it.
#[derive(Debug, Serialize)]
pub(crate) struct InboxItem {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    title: String,
    message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Value>,
    read: bool,
    created_at: String,
}

impl From<NotificationRecord> for InboxItem {
    fn from(n: NotificationRecord) -> Self {
        Self {
            id: n.id.to_string(),
            kind: n.kind,
            title: n.title,
            message: n.message,
            data: n.data,
            read: n.read,
            created_at: format_timestamp(n.created_at),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ListInput {
    unread_only: Option<bool>,
    limit: Option<i64>,
    cursor: Option<String>,
    status: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListOutput {
    notifications: Vec<InboxItem>,
    next_cursor: Option<String>,
    has_more: bool,
}

pub(crate) const DEFAULT_LIMIT: i64 = 50;
pub(crate) const MAX_LIMIT: i64 = 100;

pub(crate) async fn list(ctx: Ctx, input: ListInput) -> Result<Output, Error> {
    let user = ctx.user()?;
    let limit = input.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::field(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}, got {limit}"),
        ));
    }
    let status = match input.status.as_deref() {
        None => NotificationStatus::Inbox,
        Some(s) => NotificationStatus::parse("status", s)?,
    };
    // The cursor is the id of the last item of the previous page: ids are UUID v7, so newer
    // items sort after it and never shift the pages that follow.
    let before = input
        .cursor
        .as_deref()
        .map(|c| NotificationId::parse("cursor", c))
        .transpose()?;
    let unread_only = input.unread_only.unwrap_or(false);
    // First pages (what a bell shows) come from memory until the user's inbox changes.
    let key = (status.as_str(), unread_only, limit);
    let hub = &ctx.app.hub;
    if before.is_none()
        && let Some(page) = hub.cached_page(&user.user_id, key)
    {
        return Ok(page);
    }
    let epoch = hub.page_epoch();
    let page = ctx
        .db()
        .inbox_page(&user.user_id, status, unread_only, before, limit as u64)
        .await?;
    let next_cursor = if page.has_more {
        page.items.last().map(|n| n.id.to_string())
    } else {
        None
    };
    let output = ListOutput {
        notifications: page.items.into_iter().map(Into::into).collect(),
        has_more: next_cursor.is_some(),
        next_cursor,
    };
    let output = Output::new(&output)?;
    if before.is_none() {
        hub.keep_page(
            &user.user_id,
            &user.organization_id,
            key,
            output.clone(),
            epoch,
        );
    }
    Ok(output)
}

#[derive(Debug, Serialize)]
pub(crate) struct CountOutput {
    count: u64,
}

pub(crate) async fn unread_count(ctx: Ctx, _: NoInput) -> Result<CountOutput, Error> {
    let user = ctx.user()?;
    // Cached counts when there are; otherwise the unread count alone, which the inbox index
    // answers without reading rows (the full counts also need `seen_at`).
    // The three counts come from the inbox index alone, for about the price of one, and are
    // kept until a change to the inbox: the next call is answered from memory.
    let counts = ctx
        .app
        .hub
        .counts(&user.user_id, &user.organization_id)
        .await?;
    Ok(CountOutput {
        count: counts.unread,
    })
}

#[derive(Debug, Serialize)]
pub(crate) struct CountsOutput {
    unread: u64,
    unseen: u64,
    total: u64,
}

pub(crate) async fn counts(ctx: Ctx, _: NoInput) -> Result<CountsOutput, Error> {
    let user = ctx.user()?;
    let c = ctx
        .app
        .hub
        .counts(&user.user_id, &user.organization_id)
        .await?;
    Ok(CountsOutput {
        unread: c.unread,
        unseen: c.unseen,
        total: c.total,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IdInput {
    id: String,
}

fn owned(outcome: OwnedUpdate) -> Result<Success, Error> {
    match outcome {
        OwnedUpdate::Done => Ok(Success { success: true }),
        OwnedUpdate::NotFound => Err(Error::not_found("Notification not found")),
        OwnedUpdate::NotOwner => Err(Error::forbidden("Not your notification")),
    }
}

pub(crate) async fn mark_as_read(ctx: Ctx, input: IdInput) -> Result<Success, Error> {
    let user = ctx.user()?;
    let id = NotificationId::parse("id", &input.id)?;
    let done = owned(ctx.db().mark_read(&user.user_id, id).await?)?;
    ctx.app.hub.users_changed([&user.user_id]).await;
    Ok(done)
}

pub(crate) async fn delete(ctx: Ctx, input: IdInput) -> Result<Success, Error> {
    let user = ctx.user()?;
    let id = NotificationId::parse("id", &input.id)?;
    let done = owned(ctx.db().delete_notification(&user.user_id, id).await?)?;
    ctx.app.hub.users_changed([&user.user_id]).await;
    Ok(done)
}

pub(crate) async fn archive(ctx: Ctx, input: IdInput) -> Result<Success, Error> {
    let user = ctx.user()?;
    let id = NotificationId::parse("id", &input.id)?;
    let done = owned(ctx.db().archive(&user.user_id, id).await?)?;
    ctx.app.hub.users_changed([&user.user_id]).await;
    Ok(done)
}

#[derive(Debug, Serialize)]
pub(crate) struct ChangedOutput {
    success: bool,
    count: u64,
}

pub(crate) async fn mark_all_as_read(ctx: Ctx, _: NoInput) -> Result<ChangedOutput, Error> {
    let user = ctx.user()?;
    let count = ctx.db().mark_all_read(&user.user_id).await?;
    if count > 0 {
        ctx.app.hub.users_changed([&user.user_id]).await;
    }
    Ok(ChangedOutput {
        success: true,
        count,
    })
}

pub(crate) async fn mark_all_as_seen(ctx: Ctx, _: NoInput) -> Result<ChangedOutput, Error> {
    let user = ctx.user()?;
    let count = ctx.db().mark_all_seen(&user.user_id).await?;
    if count > 0 {
        ctx.app.hub.users_changed([&user.user_id]).await;
    }
    Ok(ChangedOutput {
        success: true,
        count,
    })
}
