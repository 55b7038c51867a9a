//! User groups and their memberships: named sets of users inside one organization, for
//! fan-out by group.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter,
    QueryResult, TryInsertResult, Value,
};
use tidings_domain::{Error, ErrorCode, ExternalId};
use uuid::Uuid;

use crate::db::{Db, classify, get};
use crate::entities::{group_members, user_groups};

/// A group with how many members it has.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupRecord {
    pub id: Uuid,
    pub organization_id: ExternalId,
    pub name: String,
    pub member_count: u64,
    pub created_at: DateTime<Utc>,
}

/// Memberships per statement: 3 bound values a row, far under every engine's limit.
const MEMBERS_PER_STATEMENT: usize = 1000;

const SELECT_GROUPS: &str = "SELECT g.id, g.organization_id, g.name, g.created_at, \
     (SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id) AS member_count \
     FROM user_groups g";

fn group_from_row(row: &QueryResult) -> Result<GroupRecord, Error> {
    Ok(GroupRecord {
        id: get(row, "id")?,
        organization_id: ExternalId::from_trusted(get(row, "organization_id")?),
        name: get(row, "name")?,
        member_count: get::<i64>(row, "member_count")? as u64,
        created_at: get(row, "created_at")?,
    })
}

impl Db {
    /// Creates a group in `organization_id` with `members` (distinct users of that
    /// organization), all in one transaction. A name taken in the organization is a conflict.
    pub async fn create_group(
        &self,
        organization_id: &ExternalId,
        name: &str,
        members: &[ExternalId],
    ) -> Result<GroupRecord, Error> {
        let id = Uuid::now_v7();
        let now = Utc::now();
        let txn = self.begin_write().await?;
        let model = user_groups::ActiveModel {
            id: Set(id),
            organization_id: Set(organization_id.as_str().to_owned()),
            name: Set(name.to_owned()),
            created_at: Set(now),
        };
        user_groups::Entity::insert(model)
            .exec_without_returning(&txn)
            .await
            .map_err(|e| match classify(e) {
                e if e.code == ErrorCode::Conflict => Error::conflict(format!(
                    "name: a group named {name:?} already exists in organization {organization_id}"
                )),
                e => e,
            })?;
        let member_count = self.insert_members(&txn, id, members).await?;
        txn.commit().await.map_err(classify)?;
        Ok(GroupRecord {
            id,
            organization_id: organization_id.clone(),
            name: name.to_owned(),
            member_count,
            created_at: now,
        })
    }

    /// The group with this id, whatever its organization.
    pub async fn group(&self, id: Uuid) -> Result<Option<GroupRecord>, Error> {
        let row = self
            .query_one(&format!("{SELECT_GROUPS} WHERE g.id = ?"), [id.into()])
            .await?;
        row.as_ref().map(group_from_row).transpose()
    }

    /// Every group, or those of one organization, oldest first.
    pub async fn groups(
        &self,
        organization_id: Option<&ExternalId>,
    ) -> Result<Vec<GroupRecord>, Error> {
        let (sql, values): (String, Vec<Value>) = match organization_id {
            Some(org) => (
                format!("{SELECT_GROUPS} WHERE g.organization_id = ? ORDER BY g.id"),
                vec![org.as_str().into()],
            ),
            None => (format!("{SELECT_GROUPS} ORDER BY g.id"), Vec::new()),
        };
        let rows = self
            .conn
            .query_all_raw(self.stmt(&sql, values))
            .await
            .map_err(classify)?;
        rows.iter().map(group_from_row).collect()
    }

    /// Adds `users` (distinct) to the group, in one transaction; members already in it stay as
    /// they are. Returns how many memberships were added.
    pub async fn add_group_members(
        &self,
        group_id: Uuid,
        users: &[ExternalId],
    ) -> Result<u64, Error> {
        let txn = self.begin_write().await?;
        let added = self.insert_members(&txn, group_id, users).await?;
        txn.commit().await.map_err(classify)?;
        Ok(added)
    }

    /// Removes `users` (distinct) from the group, in one transaction. Returns how many
    /// memberships were removed.
    pub async fn remove_group_members(
        &self,
        group_id: Uuid,
        users: &[ExternalId],
    ) -> Result<u64, Error> {
        let txn = self.begin_write().await?;
        let mut removed = 0;
        for chunk in users.chunks(MEMBERS_PER_STATEMENT) {
            removed += group_members::Entity::delete_many()
                .filter(group_members::Column::GroupId.eq(group_id))
                .filter(group_members::Column::UserId.is_in(chunk.iter().map(|u| u.as_str())))
                .exec(&txn)
                .await
                .map_err(classify)?
                .rows_affected;
        }
        txn.commit().await.map_err(classify)?;
        Ok(removed)
    }

    /// Inserts memberships a thousand at a time, skipping those that exist; returns how many
    /// were new.
    async fn insert_members(
        &self,
        txn: &DatabaseTransaction,
        group_id: Uuid,
        users: &[ExternalId],
    ) -> Result<u64, Error> {
        let now = Utc::now();
        let mut added = 0;
        for chunk in users.chunks(MEMBERS_PER_STATEMENT) {
            let rows = chunk.iter().map(|user| group_members::ActiveModel {
                group_id: Set(group_id),
                user_id: Set(user.as_str().to_owned()),
                created_at: Set(now),
            });
            let done = group_members::Entity::insert_many(rows)
                .on_conflict_do_nothing()
                .exec_without_returning(txn)
                .await
                .map_err(classify)?;
            if let TryInsertResult::Inserted(n) = done {
                added += n;
            }
        }
        Ok(added)
    }
}
