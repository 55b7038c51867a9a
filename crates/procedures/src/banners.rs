//! Outage and announcement banners: admins (and services) manage them, users see the one meant
//! for them now and may dismiss it (seed 001).
//!
//! Banners are instance-wide, as the seed's `CHAT_ADMIN_ALL` role manages them: at most one is
//! active at any moment, so a banner is not something one organization's admin could own
//! without switching off another's.

use std::collections::HashSet;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use tidings_domain::{Error, ExternalId, format_timestamp};
use tidings_persistence::{BannerChanges, BannerListing, BannerOrder, BannerRecord, NewBanner};
use uuid::Uuid;

use crate::Ctx;
use crate::auth::Success;
use crate::registry::NoInput;

/// The banner types of seed 001.
pub(crate) const TYPES: [&str; 4] = ["MAINTENANCE", "ANNOUNCEMENT", "INFO", "OUTAGE"];

/// At most this many organizations in one banner's `notificationTo`.
pub(crate) const MAX_TARGETS: usize = 1000;

pub(crate) const DEFAULT_TAKE: i64 = 20;
pub(crate) const MAX_TAKE: i64 = 100;

/// Reads a present JSON `null` as `Some(None)` and an absent field (with `#[serde(default)]`)
/// as `None`, so an update can tell "clear it" from "leave it".
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A field read with [`nullable`] that may be left out but not set to `null`.
pub(crate) fn not_null<T>(field: &str, value: Option<Option<T>>) -> Result<Option<T>, Error> {
    match value {
        Some(None) => Err(Error::field(field, "must not be null")),
        Some(Some(v)) => Ok(Some(v)),
        None => Ok(None),
    }
}

/// An ISO-8601 (RFC 3339) date-time with an offset.
pub(crate) fn parse_timestamp(field: &str, value: &str) -> Result<DateTime<Utc>, Error> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            Error::field(
                field,
                format!(
                    "must be an ISO-8601 date-time such as 2025-01-25T11:59:36.809Z, got {value:?}"
                ),
            )
        })
}

/// A banner as admins see it: seed 001's fields with `createdAt` and `updatedAt`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BannerOutput {
    id: String,
    title: String,
    message: String,
    link: Option<String>,
    link_text: Option<String>,
    start_date: String,
    end_date: String,
    is_active: bool,
    #[serde(rename = "type")]
    kind: String,
    is_dismissible: bool,
    /// Left out of what users see: other organizations' ids are not theirs to know.
    #[serde(skip_serializing_if = "Option::is_none")]
    notification_to: Option<Vec<String>>,
    created_at: String,
    updated_at: String,
}

impl From<BannerRecord> for BannerOutput {
    fn from(b: BannerRecord) -> Self {
        Self {
            id: b.id.to_string(),
            title: b.title,
            message: b.message,
            link: b.link,
            link_text: b.link_text,
            start_date: format_timestamp(b.start_date),
            end_date: format_timestamp(b.end_date),
            is_active: b.is_active,
            kind: b.kind,
            is_dismissible: b.is_dismissible,
            notification_to: Some(
                b.notification_to
                    .into_iter()
                    .map(ExternalId::into_string)
                    .collect(),
            ),
            created_at: format_timestamp(b.created_at),
            updated_at: format_timestamp(b.updated_at),
        }
    }
}

/// A banner's date, kept to the millisecond: what the wire shows is what is stored.
fn parse_date(field: &str, value: &str) -> Result<DateTime<Utc>, Error> {
    parse_timestamp(field, value).map(|t| t.trunc_subsecs(3))
}

/// Whether `banner` is shown to a user of `organization` at `now`: active, `startDate ≤ now <
/// endDate`, and aimed at every organization or at this one. Dismissals are the caller's.
pub(crate) fn shown(banner: &BannerRecord, organization: &ExternalId, now: DateTime<Utc>) -> bool {
    banner.is_active
        && banner.start_date <= now
        && now < banner.end_date
        && targets(banner, organization)
}

fn targets(banner: &BannerRecord, organization: &ExternalId) -> bool {
    banner.notification_to.is_empty() || banner.notification_to.contains(organization)
}

fn text(field: &str, value: &str, max: usize) -> Result<String, Error> {
    let value = value.trim();
    let n = value.chars().count();
    if n == 0 || n > max {
        return Err(Error::field(
            field,
            format!("must be 1 to {max} characters, got {n}"),
        ));
    }
    Ok(value.to_owned())
}

fn kind(field: &str, value: &str) -> Result<String, Error> {
    if TYPES.contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(Error::field(
            field,
            format!("must be one of {}, got {value:?}", TYPES.join(", ")),
        ))
    }
}

/// An absolute http(s) URL with a host, no spaces, at most 2048 characters.
fn link(field: &str, value: &str) -> Result<String, Error> {
    let value = value.trim();
    let lower = value.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    let valid = value.len() <= 2048
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && host.is_some_and(|h| {
            let h = h.rsplit('@').next().unwrap_or_default();
            !h.is_empty() && !h.starts_with(':')
        });
    if valid {
        Ok(value.to_owned())
    } else {
        Err(Error::field(
            field,
            format!("must be an http:// or https:// URL, got {value:?}"),
        ))
    }
}

/// Parses and deduplicates `notificationTo`, then checks every organization exists.
async fn organizations(ctx: &Ctx, field: &str, ids: &[String]) -> Result<Vec<ExternalId>, Error> {
    if ids.len() > MAX_TARGETS {
        return Err(Error::field(
            field,
            format!("at most {MAX_TARGETS} organizations, got {}", ids.len()),
        ));
    }
    let mut seen = HashSet::new();
    let mut parsed = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let id = ExternalId::parse(&format!("{field}[{i}]"), id)?;
        if seen.insert(id.clone()) {
            parsed.push(id);
        }
    }
    let found: HashSet<ExternalId> = ctx
        .db()
        .organizations_by_ids(&parsed)
        .await?
        .into_iter()
        .map(|o| o.id)
        .collect();
    let unknown: Vec<&str> = parsed
        .iter()
        .filter(|id| !found.contains(*id))
        .map(ExternalId::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(Error::field(
            field,
            format!("unknown organizations: {}", unknown.join(", ")),
        ));
    }
    Ok(parsed)
}

/// The rules a whole banner keeps, whichever fields a call set: `prefix` is where its fields
/// sit in the input (`""` or `"input."`).
fn check(prefix: &str, b: &BannerRecord) -> Result<(), Error> {
    if b.end_date <= b.start_date {
        return Err(Error::field(
            &format!("{prefix}endDate"),
            format!(
                "must be after startDate ({}), got {}",
                format_timestamp(b.start_date),
                format_timestamp(b.end_date)
            ),
        ));
    }
    if b.link_text.is_some() && b.link.is_none() {
        return Err(Error::field(
            &format!("{prefix}linkText"),
            "needs a link to go with it",
        ));
    }
    Ok(())
}

fn banner_id(field: &str, value: &str) -> Result<Uuid, Error> {
    Uuid::try_parse(value)
        .map_err(|_| Error::field(field, format!("must be a banner id (UUID), got {value:?}")))
}

fn not_found(id: Uuid) -> Error {
    Error::not_found(format!("Banner {id} not found"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateInput {
    title: String,
    message: String,
    link: Option<String>,
    link_text: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    is_dismissible: bool,
    start_date: String,
    end_date: String,
    notification_to: Vec<String>,
    is_active: Option<bool>,
}

/// `banners.create`: an active banner (the default) deactivates the one active before.
pub(crate) async fn create(ctx: Ctx, input: CreateInput) -> Result<BannerOutput, Error> {
    let new = NewBanner {
        title: text("title", &input.title, 200)?,
        message: text("message", &input.message, 2000)?,
        link: input.link.map(|l| link("link", &l)).transpose()?,
        link_text: input
            .link_text
            .map(|t| text("linkText", &t, 100))
            .transpose()?,
        kind: kind("type", &input.kind)?,
        is_dismissible: input.is_dismissible,
        is_active: input.is_active.unwrap_or(true),
        start_date: parse_date("startDate", &input.start_date)?,
        end_date: parse_date("endDate", &input.end_date)?,
        notification_to: Vec::new(),
    };
    // Check the whole banner before asking the database about its organizations.
    let now = Utc::now();
    check(
        "",
        &BannerRecord {
            id: Uuid::nil(),
            title: new.title.clone(),
            message: new.message.clone(),
            link: new.link.clone(),
            link_text: new.link_text.clone(),
            kind: new.kind.clone(),
            is_dismissible: new.is_dismissible,
            is_active: new.is_active,
            start_date: new.start_date,
            end_date: new.end_date,
            notification_to: Vec::new(),
            created_at: now,
            updated_at: now,
        },
    )?;
    let notification_to = organizations(&ctx, "notificationTo", &input.notification_to).await?;
    let banner = ctx
        .db()
        .create_banner(NewBanner {
            notification_to,
            ..new
        })
        .await?;
    Ok(banner.into())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ChangesInput {
    #[serde(default, deserialize_with = "nullable")]
    title: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    message: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    link: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    link_text: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable", rename = "type")]
    kind: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    is_dismissible: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    is_active: Option<Option<bool>>,
    #[serde(default, deserialize_with = "nullable")]
    start_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    end_date: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    notification_to: Option<Option<Vec<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct UpdateInput {
    notification_banner_id: String,
    input: ChangesInput,
}

/// `banners.update`: changes the fields given (`null` clears `link` or `linkText`); the banner
/// they make must keep every rule. Activating it deactivates the one active before.
pub(crate) async fn update(ctx: Ctx, input: UpdateInput) -> Result<BannerOutput, Error> {
    let id = banner_id("notificationBannerId", &input.notification_banner_id)?;
    let c = input.input;
    let changes = BannerChanges {
        title: not_null("input.title", c.title)?
            .map(|t| text("input.title", &t, 200))
            .transpose()?,
        message: not_null("input.message", c.message)?
            .map(|m| text("input.message", &m, 2000))
            .transpose()?,
        link: c
            .link
            .map(|l| l.map(|l| link("input.link", &l)).transpose())
            .transpose()?,
        link_text: c
            .link_text
            .map(|t| t.map(|t| text("input.linkText", &t, 100)).transpose())
            .transpose()?,
        kind: not_null("input.type", c.kind)?
            .map(|k| kind("input.type", &k))
            .transpose()?,
        is_dismissible: not_null("input.isDismissible", c.is_dismissible)?,
        is_active: not_null("input.isActive", c.is_active)?,
        start_date: not_null("input.startDate", c.start_date)?
            .map(|d| parse_date("input.startDate", &d))
            .transpose()?,
        end_date: not_null("input.endDate", c.end_date)?
            .map(|d| parse_date("input.endDate", &d))
            .transpose()?,
        notification_to: match not_null("input.notificationTo", c.notification_to)? {
            Some(ids) => Some(organizations(&ctx, "input.notificationTo", &ids).await?),
            None => None,
        },
    };
    ctx.db()
        .update_banner(id, &changes, |b| check("input.", b))
        .await?
        .map(Into::into)
        .ok_or_else(|| not_found(id))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct DeleteInput {
    notification_banner_id: String,
}

/// `banners.delete`: the banner as it was, with its `createdAt` and `updatedAt`.
pub(crate) async fn delete(ctx: Ctx, input: DeleteInput) -> Result<BannerOutput, Error> {
    let id = banner_id("notificationBannerId", &input.notification_banner_id)?;
    ctx.db()
        .delete_banner(id)
        .await?
        .map(Into::into)
        .ok_or_else(|| not_found(id))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct WhereInput {
    is_active: Option<bool>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ListInput {
    #[serde(rename = "where")]
    filter: Option<WhereInput>,
    order_by: Option<Value>,
    cursor: Option<Value>,
    take: Option<i64>,
    skip: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListOutput {
    banners: Vec<BannerOutput>,
    next_cursor: Option<String>,
    has_more: bool,
}

/// Prisma's `orderBy`: `{field: "asc"|"desc"}` or a list of one such object.
fn order_by(value: Option<Value>) -> Result<(BannerOrder, bool), Error> {
    const EXPECTED: &str = "must be {createdAt: \"asc\"|\"desc\"} or {startDate: \"asc\"|\"desc\"}";
    let (field, value) = match value {
        None => return Ok((BannerOrder::CreatedAt, true)),
        Some(Value::Array(mut items)) if items.len() == 1 => ("orderBy[0]", items.remove(0)),
        Some(Value::Array(items)) => {
            return Err(Error::field(
                "orderBy",
                format!("must hold one ordering, got {}", items.len()),
            ));
        }
        Some(other) => ("orderBy", other),
    };
    let Value::Object(map) = value else {
        return Err(Error::field(field, EXPECTED));
    };
    let mut entries = map.into_iter();
    let (Some((key, dir)), None) = (entries.next(), entries.next()) else {
        return Err(Error::field(field, EXPECTED));
    };
    let order = match key.as_str() {
        "createdAt" => BannerOrder::CreatedAt,
        "startDate" => BannerOrder::StartDate,
        _ => return Err(Error::field(&format!("{field}.{key}"), EXPECTED)),
    };
    let descending = match dir.as_str() {
        Some("asc") => false,
        Some("desc") => true,
        _ => {
            return Err(Error::field(
                &format!("{field}.{key}"),
                format!("must be \"asc\" or \"desc\", got {dir}"),
            ));
        }
    };
    Ok((order, descending))
}

/// Prisma's cursor, `{id}`, or the id alone.
fn cursor(value: Option<Value>) -> Result<Option<Uuid>, Error> {
    match value {
        None => Ok(None),
        Some(Value::String(id)) => banner_id("cursor", &id).map(Some),
        Some(Value::Object(map)) if map.len() == 1 && map.contains_key("id") => match &map["id"] {
            Value::String(id) => banner_id("cursor.id", id).map(Some),
            other => Err(Error::field(
                "cursor.id",
                format!("must be a banner id (UUID), got {other}"),
            )),
        },
        Some(_) => Err(Error::field("cursor", "must be a banner id or {id}")),
    }
}

/// `banners.list`: banners by `createdAt` (newest first unless asked) or `startDate`, a page of
/// `take` from `cursor` (included, as Prisma's) after skipping `skip`. `nextCursor` is the first
/// banner of the next page.
pub(crate) async fn list(ctx: Ctx, input: ListInput) -> Result<ListOutput, Error> {
    let take = input.take.unwrap_or(DEFAULT_TAKE);
    if !(1..=MAX_TAKE).contains(&take) {
        return Err(Error::field(
            "take",
            format!("must be between 1 and {MAX_TAKE}, got {take}"),
        ));
    }
    let skip = input.skip.unwrap_or(0);
    if skip < 0 {
        return Err(Error::field(
            "skip",
            format!("must be 0 or more, got {skip}"),
        ));
    }
    let (is_active, kind_filter) = match input.filter {
        Some(w) => (
            w.is_active,
            w.kind.map(|k| kind("where.type", &k)).transpose()?,
        ),
        None => (None, None),
    };
    let (order, descending) = order_by(input.order_by)?;
    let cursor = cursor(input.cursor)?;
    let listing = BannerListing {
        is_active,
        kind: kind_filter,
        order,
        descending,
        cursor,
        skip: skip as u64,
        take: take as u64,
    };
    let Some(page) = ctx.db().banners_page(&listing).await? else {
        return Err(Error::field(
            "cursor",
            format!("unknown banner {}", cursor.unwrap_or_default()),
        ));
    };
    Ok(ListOutput {
        banners: page.items.into_iter().map(Into::into).collect(),
        next_cursor: page.next.map(|id| id.to_string()),
        has_more: page.next.is_some(),
    })
}

/// `banners.current`: the banner to show this user now, or `null`.
pub(crate) async fn current(ctx: Ctx, _: NoInput) -> Result<Option<BannerOutput>, Error> {
    let user = ctx.user()?;
    let Some(active) = ctx.db().active_banner(&user.user_id).await? else {
        return Ok(None);
    };
    if active.dismissed || !shown(&active.banner, &user.organization_id, Utc::now()) {
        return Ok(None);
    }
    let mut banner = BannerOutput::from(active.banner);
    banner.notification_to = None;
    Ok(Some(banner))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DismissInput {
    id: String,
}

/// `banners.dismiss`: this user no longer sees the banner; dismissing again is fine. A banner
/// not aimed at the user's organization is not found; one that is not dismissible stays.
pub(crate) async fn dismiss(ctx: Ctx, input: DismissInput) -> Result<Success, Error> {
    let user = ctx.user()?;
    let id = banner_id("id", &input.id)?;
    let banner = ctx
        .db()
        .banner(id)
        .await?
        .filter(|b| targets(b, &user.organization_id))
        .ok_or_else(|| not_found(id))?;
    if !banner.is_dismissible {
        return Err(Error::field(
            "id",
            format!("banner {id} is not dismissible"),
        ));
    }
    ctx.db().dismiss_banner(id, &user.user_id).await?;
    Ok(Success { success: true })
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn banner(start: DateTime<Utc>, end: DateTime<Utc>, to: &[&str]) -> BannerRecord {
        BannerRecord {
            id: Uuid::now_v7(),
            title: "t".into(),
            message: "m".into(),
            link: None,
            link_text: None,
            kind: "INFO".into(),
            is_dismissible: true,
            is_active: true,
            start_date: start,
            end_date: end,
            notification_to: to
                .iter()
                .map(|s| ExternalId::from_trusted((*s).to_owned()))
                .collect(),
            created_at: start,
            updated_at: start,
        }
    }

    #[test]
    fn the_window_includes_its_start_and_excludes_its_end() {
        let now = Utc::now();
        let acme = ExternalId::from_trusted("acme".into());
        let second = Duration::seconds(1);
        let cases = [
            (now, now + second, true),
            (now - second, now, false),
            (now - second, now + second, true),
            (now + Duration::milliseconds(1), now + second, false),
            (now - second * 2, now - second, false),
        ];
        for (start, end, want) in cases {
            assert_eq!(
                shown(&banner(start, end, &[]), &acme, now),
                want,
                "{start} {end}"
            );
        }
        let mut inactive = banner(now - second, now + second, &[]);
        inactive.is_active = false;
        assert!(!shown(&inactive, &acme, now));
    }

    #[test]
    fn an_empty_target_list_means_every_organization() {
        let now = Utc::now();
        let acme = ExternalId::from_trusted("acme".into());
        let window = (now - Duration::hours(1), now + Duration::hours(1));
        assert!(shown(&banner(window.0, window.1, &[]), &acme, now));
        assert!(shown(
            &banner(window.0, window.1, &["globex", "acme"]),
            &acme,
            now
        ));
        assert!(!shown(&banner(window.0, window.1, &["globex"]), &acme, now));
    }

    #[test]
    fn links_are_http_urls() {
        for ok in [
            "https://status.example.com",
            "http://example.com/path?q=1#x",
            "HTTPS://Example.com",
            "https://user@example.com:8443/",
        ] {
            assert!(link("link", ok).is_ok(), "{ok}");
        }
        for bad in [
            "javascript:alert(1)",
            "ftp://example.com",
            "https://",
            "https:///path",
            "https://exa mple.com",
            "status.example.com",
            "mailto:a@b.c",
        ] {
            assert!(link("link", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_are_kept_to_the_millisecond() {
        let at = parse_date("startDate", "2025-01-25T12:59:36.809999+01:00").unwrap();
        assert_eq!(format_timestamp(at), "2025-01-25T11:59:36.809Z");
        assert_eq!(
            parse_timestamp("startDate", "2025-01-25")
                .unwrap_err()
                .message,
            "startDate: must be an ISO-8601 date-time such as 2025-01-25T11:59:36.809Z, got \"2025-01-25\""
        );
    }

    #[test]
    fn orderings() {
        assert_eq!(order_by(None).unwrap(), (BannerOrder::CreatedAt, true));
        assert_eq!(
            order_by(Some(serde_json::json!([{"startDate": "asc"}]))).unwrap(),
            (BannerOrder::StartDate, false)
        );
        assert_eq!(
            order_by(Some(serde_json::json!({"title": "asc"})))
                .unwrap_err()
                .message,
            "orderBy.title: must be {createdAt: \"asc\"|\"desc\"} or {startDate: \"asc\"|\"desc\"}"
        );
        assert_eq!(
            order_by(Some(serde_json::json!({"createdAt": "up"})))
                .unwrap_err()
                .message,
            "orderBy.createdAt: must be \"asc\" or \"desc\", got \"up\""
        );
    }
}
