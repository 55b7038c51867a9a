//! Banners: outage and announcement messages shown at the top of the page, at most one active
//! at any moment, and which users dismissed them.
//!
//! Every write to `banners` runs in a transaction that first serializes against every other
//! banner write: on PostgreSQL with a transaction-scoped advisory lock, on SQLite by taking the
//! database's write lock at `BEGIN` (`BEGIN IMMEDIATE`). So "deactivate the active banner, then
//! activate this one" never interleaves with another activation, and the partial unique index
//! `ux_banners_one_active` stands behind it.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseTransaction, QueryResult, Value};
use tidings_domain::{Error, ExternalId};
use uuid::Uuid;

use crate::db::{Backend, Db, classify, finish, get};

/// The advisory lock every banner write holds on PostgreSQL ("tidings" and 1, as one bigint).
const BANNER_WRITE_LOCK: i64 = 0x7469_6469_6e67_7301;

/// A stored banner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BannerRecord {
    pub id: Uuid,
    pub title: String,
    pub message: String,
    pub link: Option<String>,
    pub link_text: Option<String>,
    /// MAINTENANCE, ANNOUNCEMENT, INFO or OUTAGE, checked by the caller.
    pub kind: String,
    pub is_dismissible: bool,
    pub is_active: bool,
    pub start_date: DateTime<Utc>,
    pub end_date: DateTime<Utc>,
    /// The organizations it is shown to; empty for every organization.
    pub notification_to: Vec<ExternalId>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A banner to create.
#[derive(Clone, Debug)]
pub struct NewBanner {
    pub title: String,
    pub message: String,
    pub link: Option<String>,
    pub link_text: Option<String>,
    pub kind: String,
    pub is_dismissible: bool,
    pub is_active: bool,
    pub start_date: DateTime<Utc>,
    pub end_date: DateTime<Utc>,
    pub notification_to: Vec<ExternalId>,
}

/// The fields a banner update sets; `None` leaves a field as it is, and `Some(None)` clears a
/// nullable one.
#[derive(Clone, Debug, Default)]
pub struct BannerChanges {
    pub title: Option<String>,
    pub message: Option<String>,
    pub link: Option<Option<String>>,
    pub link_text: Option<Option<String>>,
    pub kind: Option<String>,
    pub is_dismissible: Option<bool>,
    pub is_active: Option<bool>,
    pub start_date: Option<DateTime<Utc>>,
    pub end_date: Option<DateTime<Utc>>,
    pub notification_to: Option<Vec<ExternalId>>,
}

impl BannerChanges {
    /// `banner` with these changes made.
    pub fn apply(&self, banner: &BannerRecord) -> BannerRecord {
        let mut b = banner.clone();
        if let Some(v) = &self.title {
            b.title = v.clone();
        }
        if let Some(v) = &self.message {
            b.message = v.clone();
        }
        if let Some(v) = &self.link {
            b.link = v.clone();
        }
        if let Some(v) = &self.link_text {
            b.link_text = v.clone();
        }
        if let Some(v) = &self.kind {
            b.kind = v.clone();
        }
        if let Some(v) = self.is_dismissible {
            b.is_dismissible = v;
        }
        if let Some(v) = self.is_active {
            b.is_active = v;
        }
        if let Some(v) = self.start_date {
            b.start_date = v;
        }
        if let Some(v) = self.end_date {
            b.end_date = v;
        }
        if let Some(v) = &self.notification_to {
            b.notification_to = v.clone();
        }
        b
    }
}

/// What a banner listing is ordered by; ties go by id, in the same direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BannerOrder {
    CreatedAt,
    StartDate,
}

impl BannerOrder {
    fn column(self) -> &'static str {
        match self {
            BannerOrder::CreatedAt => "created_at",
            BannerOrder::StartDate => "start_date",
        }
    }
}

/// Which banners to list, in what order, from where.
#[derive(Clone, Debug)]
pub struct BannerListing {
    pub is_active: Option<bool>,
    pub kind: Option<String>,
    pub order: BannerOrder,
    pub descending: bool,
    /// The page starts at this banner, itself included (Prisma's cursor).
    pub cursor: Option<Uuid>,
    /// Banners skipped after the cursor (or from the start).
    pub skip: u64,
    pub take: u64,
}

/// A page of banners and the first banner of the next page, if there is one.
#[derive(Clone, Debug)]
pub struct BannerPage {
    pub items: Vec<BannerRecord>,
    pub next: Option<Uuid>,
}

/// The active banner, and whether the asking user dismissed it.
#[derive(Clone, Debug)]
pub struct ActiveBanner {
    pub banner: BannerRecord,
    pub dismissed: bool,
}

const COLUMNS: &str = "id, title, message, link, link_text, \"type\", is_dismissible, is_active, \
     start_date, end_date, notification_to, created_at, updated_at";

fn banner_from_row(row: &QueryResult) -> Result<BannerRecord, Error> {
    let targets: String = get(row, "notification_to")?;
    let targets: Vec<String> = serde_json::from_str(&targets).map_err(Error::internal)?;
    Ok(BannerRecord {
        id: get(row, "id")?,
        title: get(row, "title")?,
        message: get(row, "message")?,
        link: get(row, "link")?,
        link_text: get(row, "link_text")?,
        kind: get(row, "type")?,
        is_dismissible: get(row, "is_dismissible")?,
        is_active: get(row, "is_active")?,
        start_date: get(row, "start_date")?,
        end_date: get(row, "end_date")?,
        notification_to: targets.into_iter().map(ExternalId::from_trusted).collect(),
        created_at: get(row, "created_at")?,
        updated_at: get(row, "updated_at")?,
    })
}

fn targets_json(targets: &[ExternalId]) -> Value {
    let ids: Vec<&str> = targets.iter().map(|id| id.as_str()).collect();
    serde_json::to_string(&ids)
        .unwrap_or_else(|_| "[]".to_owned())
        .into()
}

impl Db {
    /// A transaction holding the banner write lock until it ends.
    async fn begin_banner_write(&self) -> Result<DatabaseTransaction, Error> {
        let txn = self.begin_write().await?;
        if self.backend() == Backend::Postgres {
            let locked = txn
                .execute_raw(self.stmt(
                    "SELECT pg_advisory_xact_lock(?)",
                    [BANNER_WRITE_LOCK.into()],
                ))
                .await;
            if let Err(e) = locked {
                let _ = txn.rollback().await;
                return Err(classify(e));
            }
        }
        Ok(txn)
    }

    async fn banner_in(
        &self,
        txn: &DatabaseTransaction,
        id: Uuid,
    ) -> Result<Option<BannerRecord>, Error> {
        txn.query_one_raw(self.stmt(
            &format!("SELECT {COLUMNS} FROM banners WHERE id = ?"),
            [id.into()],
        ))
        .await
        .map_err(classify)?
        .as_ref()
        .map(banner_from_row)
        .transpose()
    }

    /// Deactivates whichever banner is active, other than `except`.
    async fn deactivate_others(
        &self,
        txn: &DatabaseTransaction,
        except: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), Error> {
        txn.execute_raw(self.stmt(
            "UPDATE banners SET is_active = ?, updated_at = ? WHERE is_active AND id <> ?",
            [false.into(), now.into(), except.into()],
        ))
        .await
        .map_err(classify)?;
        Ok(())
    }

    async fn insert_banner_in(
        &self,
        txn: &DatabaseTransaction,
        banner: &BannerRecord,
    ) -> Result<(), Error> {
        if banner.is_active {
            self.deactivate_others(txn, banner.id, banner.created_at)
                .await?;
        }
        txn.execute_raw(self.stmt(
            &format!(
                "INSERT INTO banners ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            [
                banner.id.into(),
                banner.title.as_str().into(),
                banner.message.as_str().into(),
                banner.link.clone().into(),
                banner.link_text.clone().into(),
                banner.kind.as_str().into(),
                banner.is_dismissible.into(),
                banner.is_active.into(),
                banner.start_date.into(),
                banner.end_date.into(),
                targets_json(&banner.notification_to),
                banner.created_at.into(),
                banner.updated_at.into(),
            ],
        ))
        .await
        .map_err(classify)?;
        Ok(())
    }

    /// Creates a banner; an active one deactivates the banner active before, in the same
    /// transaction.
    pub async fn create_banner(&self, new: NewBanner) -> Result<BannerRecord, Error> {
        let now = Utc::now();
        let banner = BannerRecord {
            id: Uuid::now_v7(),
            title: new.title,
            message: new.message,
            link: new.link,
            link_text: new.link_text,
            kind: new.kind,
            is_dismissible: new.is_dismissible,
            is_active: new.is_active,
            start_date: new.start_date,
            end_date: new.end_date,
            notification_to: new.notification_to,
            created_at: now,
            updated_at: now,
        };
        let txn = self.begin_banner_write().await?;
        let done = self.insert_banner_in(&txn, &banner).await;
        finish(txn, done).await?;
        Ok(banner)
    }

    /// Makes `changes` to banner `id` once `check` accepts the banner they make; activating
    /// it deactivates the banner active before, in the same transaction. `None` when there is
    /// no such banner.
    pub async fn update_banner(
        &self,
        id: Uuid,
        changes: &BannerChanges,
        check: impl FnOnce(&BannerRecord) -> Result<(), Error>,
    ) -> Result<Option<BannerRecord>, Error> {
        let txn = self.begin_banner_write().await?;
        let done = self.update_banner_in(&txn, id, changes, check).await;
        finish(txn, done).await
    }

    async fn update_banner_in(
        &self,
        txn: &DatabaseTransaction,
        id: Uuid,
        changes: &BannerChanges,
        check: impl FnOnce(&BannerRecord) -> Result<(), Error>,
    ) -> Result<Option<BannerRecord>, Error> {
        let Some(current) = self.banner_in(txn, id).await? else {
            return Ok(None);
        };
        let mut banner = changes.apply(&current);
        check(&banner)?;
        let now = Utc::now();
        banner.updated_at = now;
        if banner.is_active && !current.is_active {
            self.deactivate_others(txn, id, now).await?;
        }
        txn.execute_raw(self.stmt(
            "UPDATE banners SET title = ?, message = ?, link = ?, link_text = ?, \"type\" = ?, \
             is_dismissible = ?, is_active = ?, start_date = ?, end_date = ?, notification_to = ?, \
             updated_at = ? WHERE id = ?",
            [
                banner.title.as_str().into(),
                banner.message.as_str().into(),
                banner.link.clone().into(),
                banner.link_text.clone().into(),
                banner.kind.as_str().into(),
                banner.is_dismissible.into(),
                banner.is_active.into(),
                banner.start_date.into(),
                banner.end_date.into(),
                targets_json(&banner.notification_to),
                now.into(),
                id.into(),
            ],
        ))
        .await
        .map_err(classify)?;
        Ok(Some(banner))
    }

    /// Deletes banner `id` with its dismissals; returns it as it was, or `None`.
    pub async fn delete_banner(&self, id: Uuid) -> Result<Option<BannerRecord>, Error> {
        let txn = self.begin_banner_write().await?;
        let done = async {
            let banner = self.banner_in(&txn, id).await?;
            if banner.is_some() {
                txn.execute_raw(self.stmt("DELETE FROM banners WHERE id = ?", [id.into()]))
                    .await
                    .map_err(classify)?;
            }
            Ok(banner)
        }
        .await;
        finish(txn, done).await
    }

    pub async fn banner(&self, id: Uuid) -> Result<Option<BannerRecord>, Error> {
        self.query_one(
            &format!("SELECT {COLUMNS} FROM banners WHERE id = ?"),
            [id.into()],
        )
        .await?
        .as_ref()
        .map(banner_from_row)
        .transpose()
    }

    /// The active banner, if any, and whether `user_id` dismissed it.
    pub async fn active_banner(&self, user_id: &ExternalId) -> Result<Option<ActiveBanner>, Error> {
        let row = self
            .query_one(
                &format!(
                    "SELECT {COLUMNS}, EXISTS (SELECT 1 FROM banner_dismissals d \
                     WHERE d.banner_id = banners.id AND d.user_id = ?) AS dismissed \
                     FROM banners WHERE is_active"
                ),
                [user_id.as_str().into()],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(ActiveBanner {
            banner: banner_from_row(&row)?,
            dismissed: get(&row, "dismissed")?,
        }))
    }

    /// Records that `user_id` dismissed banner `id`; dismissing again changes nothing, nor does
    /// dismissing a banner deleted meanwhile.
    pub async fn dismiss_banner(&self, id: Uuid, user_id: &ExternalId) -> Result<(), Error> {
        self.execute(
            "INSERT INTO banner_dismissals (banner_id, user_id, dismissed_at) \
             SELECT id, ?, ? FROM banners WHERE id = ? \
             ON CONFLICT (banner_id, user_id) DO NOTHING",
            [user_id.as_str().into(), Utc::now().into(), id.into()],
        )
        .await
        .map(|_| ())
    }

    /// A page of banners; `None` when the cursor names no banner.
    pub async fn banners_page(&self, listing: &BannerListing) -> Result<Option<BannerPage>, Error> {
        let mut sql = format!("SELECT {COLUMNS} FROM banners WHERE TRUE");
        let mut values: Vec<Value> = Vec::new();
        if let Some(active) = listing.is_active {
            sql.push_str(" AND is_active = ?");
            values.push(active.into());
        }
        if let Some(kind) = &listing.kind {
            sql.push_str(" AND \"type\" = ?");
            values.push(kind.as_str().into());
        }
        let column = listing.order.column();
        let (cmp, dir) = if listing.descending {
            ("<", "DESC")
        } else {
            (">", "ASC")
        };
        if let Some(cursor) = listing.cursor {
            let Some(at) = self.banner(cursor).await? else {
                return Ok(None);
            };
            let key = match listing.order {
                BannerOrder::CreatedAt => at.created_at,
                BannerOrder::StartDate => at.start_date,
            };
            sql.push_str(&format!(
                " AND ({column} {cmp} ? OR ({column} = ? AND id {cmp}= ?))"
            ));
            values.extend([key.into(), key.into(), cursor.into()]);
        }
        sql.push_str(&format!(
            " ORDER BY {column} {dir}, id {dir} LIMIT {} OFFSET {}",
            listing.take + 1,
            listing.skip
        ));
        let rows = self
            .conn
            .query_all_raw(self.stmt(&sql, values))
            .await
            .map_err(classify)?;
        let mut items = rows
            .iter()
            .map(banner_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        let next = if items.len() as u64 > listing.take {
            items.pop().map(|b| b.id)
        } else {
            None
        };
        Ok(Some(BannerPage { items, next }))
    }
}
