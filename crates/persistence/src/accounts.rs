use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
};
use tidings_domain::{Error, ExternalId, Role};

use crate::db::{Db, classify};
use crate::entities::{organizations, users};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrganizationRecord {
    pub id: ExternalId,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

impl From<organizations::Model> for OrganizationRecord {
    fn from(m: organizations::Model) -> Self {
        Self {
            id: ExternalId::from_trusted(m.id),
            name: m.name,
            created_at: m.created_at,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    pub id: ExternalId,
    pub organization_id: ExternalId,
    pub email: Option<String>,
    pub name: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl From<users::Model> for UserRecord {
    fn from(m: users::Model) -> Self {
        Self {
            id: ExternalId::from_trusted(m.id),
            organization_id: ExternalId::from_trusted(m.organization_id),
            email: m.email,
            name: m.name,
            role: Role::from_stored(&m.role),
            created_at: m.created_at,
        }
    }
}

/// A user to create; the password is already hashed.
#[derive(Clone, Debug)]
pub struct NewUser {
    pub id: ExternalId,
    pub organization_id: ExternalId,
    pub email: Option<String>,
    pub name: String,
    pub password_hash: Option<String>,
    pub role: Role,
}

impl Db {
    pub async fn create_organization(
        &self,
        id: &ExternalId,
        name: &str,
    ) -> Result<OrganizationRecord, Error> {
        let model = organizations::ActiveModel {
            id: Set(id.as_str().to_owned()),
            name: Set(name.to_owned()),
            created_at: Set(Utc::now()),
        };
        organizations::Entity::insert(model)
            .exec_with_returning(&self.conn)
            .await
            .map(Into::into)
            .map_err(|e| match classify(e) {
                e if e.code == tidings_domain::ErrorCode::Conflict => {
                    Error::conflict(format!("id: organization {id} already exists"))
                }
                e => e,
            })
    }

    pub async fn organization(&self, id: &ExternalId) -> Result<Option<OrganizationRecord>, Error> {
        organizations::Entity::find_by_id(id.as_str())
            .one(&self.conn)
            .await
            .map(|m| m.map(Into::into))
            .map_err(classify)
    }

    /// The oldest organization with this name.
    pub async fn organization_by_name(
        &self,
        name: &str,
    ) -> Result<Option<OrganizationRecord>, Error> {
        use sea_orm::QueryOrder;
        organizations::Entity::find()
            .filter(organizations::Column::Name.eq(name))
            .order_by_asc(organizations::Column::CreatedAt)
            .one(&self.conn)
            .await
            .map(|m| m.map(Into::into))
            .map_err(classify)
    }

    pub async fn create_user(&self, user: NewUser) -> Result<UserRecord, Error> {
        let now = Utc::now();
        let model = users::ActiveModel {
            id: Set(user.id.as_str().to_owned()),
            organization_id: Set(user.organization_id.as_str().to_owned()),
            email: Set(user.email.clone()),
            name: Set(user.name),
            password_hash: Set(user.password_hash),
            role: Set(user.role.as_str().to_owned()),
            created_at: Set(now),
            updated_at: Set(now),
        };
        match users::Entity::insert(model)
            .exec_with_returning(&self.conn)
            .await
        {
            Ok(m) => Ok(m.into()),
            Err(e) => {
                let err = classify(e);
                if err.code != tidings_domain::ErrorCode::Conflict {
                    return Err(err);
                }
                // Tell the caller which unique value clashed.
                if self.user(&user.id).await?.is_some() {
                    Err(Error::conflict(format!(
                        "id: user {} already exists",
                        user.id
                    )))
                } else {
                    Err(Error::conflict(format!(
                        "email: {} is already taken",
                        user.email.unwrap_or_default()
                    )))
                }
            }
        }
    }

    pub async fn user(&self, id: &ExternalId) -> Result<Option<UserRecord>, Error> {
        users::Entity::find_by_id(id.as_str())
            .one(&self.conn)
            .await
            .map(|m| m.map(Into::into))
            .map_err(classify)
    }

    /// The user with this (lower-cased) email and their password hash, for sign-in.
    pub async fn user_with_password(
        &self,
        email: &str,
    ) -> Result<Option<(UserRecord, Option<String>)>, Error> {
        users::Entity::find()
            .filter(users::Column::Email.eq(email))
            .one(&self.conn)
            .await
            .map(|m| {
                m.map(|m| {
                    let hash = m.password_hash.clone();
                    (m.into(), hash)
                })
            })
            .map_err(classify)
    }

    pub async fn count_users(&self) -> Result<u64, Error> {
        users::Entity::find()
            .count(&self.conn)
            .await
            .map_err(classify)
    }
}

/// One page of users, by id.
#[derive(Clone, Debug)]
pub struct UsersPage {
    pub items: Vec<UserRecord>,
    pub has_more: bool,
}

/// Changes to one user; `None` leaves a field as it is. The password is already hashed.
#[derive(Clone, Debug, Default)]
pub struct UserChanges {
    pub email: Option<String>,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub role: Option<Role>,
}

/// A user to insert, or to update when the id exists: `None` fields keep their stored value
/// on update and take the default (no email, empty name, role user) on insert.
#[derive(Clone, Debug)]
pub struct UserUpsert {
    pub id: ExternalId,
    /// `None`: the organization given to [`Db::upsert_users`] on insert, unchanged on update.
    pub organization_id: Option<ExternalId>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub role: Option<Role>,
}

impl UserUpsert {
    /// Which fields this row sets on update; rows of one shape share one statement.
    fn shape(&self) -> [bool; 4] {
        [
            self.organization_id.is_some(),
            self.email.is_some(),
            self.name.is_some(),
            self.role.is_some(),
        ]
    }
}

/// Rows per upsert statement: 7 bound values a row keeps a statement well under SQLite's
/// 32,766 bound parameters.
const UPSERT_ROWS_PER_STATEMENT: usize = 1000;

/// Ids per `IN (…)` list.
const IDS_PER_STATEMENT: usize = 500;

fn placeholders(n: usize) -> String {
    vec!["?"; n].join(",")
}

impl Db {
    /// Every organization, or only `only`, ordered by id.
    pub async fn organizations(
        &self,
        only: Option<&ExternalId>,
    ) -> Result<Vec<OrganizationRecord>, Error> {
        use sea_orm::QueryOrder;
        let mut query = organizations::Entity::find();
        if let Some(id) = only {
            query = query.filter(organizations::Column::Id.eq(id.as_str()));
        }
        query
            .order_by_asc(organizations::Column::Id)
            .all(&self.conn)
            .await
            .map(|v| v.into_iter().map(Into::into).collect())
            .map_err(classify)
    }

    /// The organizations among `ids` that exist.
    pub async fn organizations_by_ids(
        &self,
        ids: &[ExternalId],
    ) -> Result<Vec<OrganizationRecord>, Error> {
        let mut found = Vec::new();
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let models = organizations::Entity::find()
                .filter(organizations::Column::Id.is_in(chunk.iter().map(|id| id.as_str())))
                .all(&self.conn)
                .await
                .map_err(classify)?;
            found.extend(models.into_iter().map(OrganizationRecord::from));
        }
        Ok(found)
    }

    /// Up to `limit` users with ids after `after`, by id, from one organization or all. Ids
    /// compare by the database's text collation, in the `>` and the `ORDER BY` alike, so pages
    /// never skip or repeat a user; the primary key and `(organization_id, id)` index serve both.
    pub async fn users_page(
        &self,
        organization_id: Option<&ExternalId>,
        after: Option<&ExternalId>,
        limit: u64,
    ) -> Result<UsersPage, Error> {
        use sea_orm::{QueryOrder, QuerySelect};
        let mut query = users::Entity::find();
        if let Some(org) = organization_id {
            query = query.filter(users::Column::OrganizationId.eq(org.as_str()));
        }
        if let Some(after) = after {
            query = query.filter(users::Column::Id.gt(after.as_str()));
        }
        let mut items: Vec<UserRecord> = query
            .order_by_asc(users::Column::Id)
            .limit(limit + 1)
            .all(&self.conn)
            .await
            .map_err(classify)?
            .into_iter()
            .map(Into::into)
            .collect();
        let has_more = items.len() as u64 > limit;
        items.truncate(limit as usize);
        Ok(UsersPage { items, has_more })
    }

    /// The users whose (lower-cased) email is among `emails`.
    pub async fn users_by_emails(&self, emails: &[String]) -> Result<Vec<UserRecord>, Error> {
        let mut found = Vec::new();
        for chunk in emails.chunks(IDS_PER_STATEMENT) {
            let models = users::Entity::find()
                .filter(users::Column::Email.is_in(chunk.iter().map(String::as_str)))
                .all(&self.conn)
                .await
                .map_err(classify)?;
            found.extend(models.into_iter().map(UserRecord::from));
        }
        Ok(found)
    }

    /// Applies `changes` to user `id` if it exists (in organization `only`, when given);
    /// returns the user as it now is, or `None` when there is no such user.
    pub async fn update_user(
        &self,
        id: &ExternalId,
        only: Option<&ExternalId>,
        changes: UserChanges,
    ) -> Result<Option<UserRecord>, Error> {
        use sea_orm::sea_query::Expr;
        let mut update = users::Entity::update_many()
            .col_expr(users::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(users::Column::Id.eq(id.as_str()));
        if let Some(org) = only {
            update = update.filter(users::Column::OrganizationId.eq(org.as_str()));
        }
        if let Some(email) = &changes.email {
            update = update.col_expr(users::Column::Email, Expr::value(email.clone()));
        }
        if let Some(name) = changes.name {
            update = update.col_expr(users::Column::Name, Expr::value(name));
        }
        if let Some(hash) = changes.password_hash {
            update = update.col_expr(users::Column::PasswordHash, Expr::value(hash));
        }
        if let Some(role) = changes.role {
            update = update.col_expr(users::Column::Role, Expr::value(role.as_str()));
        }
        let done = update
            .exec(&self.conn)
            .await
            .map_err(|e| match classify(e) {
                e if e.code == tidings_domain::ErrorCode::Conflict => Error::conflict(format!(
                    "email: {} is already taken",
                    changes.email.as_deref().unwrap_or_default()
                )),
                e => e,
            })?;
        if done.rows_affected == 0 {
            return Ok(None);
        }
        self.user(id).await
    }

    /// Deletes user `id` (in organization `only`, when given) with everything that hangs off
    /// it: the foreign keys cascade to notifications, preferences, sessions, memberships,
    /// deliveries and push subscriptions. Returns whether there was such a user.
    pub async fn delete_user(
        &self,
        id: &ExternalId,
        only: Option<&ExternalId>,
    ) -> Result<bool, Error> {
        let mut delete = users::Entity::delete_many().filter(users::Column::Id.eq(id.as_str()));
        if let Some(org) = only {
            delete = delete.filter(users::Column::OrganizationId.eq(org.as_str()));
        }
        let txn = self.begin_write().await?;
        let done = delete.exec(&txn).await.map_err(classify)?;
        if done.rows_affected > 0 {
            // Sessions, preferences, memberships and push subscriptions go by cascade; the
            // high-volume tables have no foreign keys (see the schema) and are cleared here.
            for table in ["notifications", "deliveries"] {
                txn.execute_raw(self.stmt(
                    &format!("DELETE FROM {table} WHERE user_id = ?"),
                    [id.as_str().into()],
                ))
                .await
                .map_err(classify)?;
            }
        }
        txn.commit().await.map_err(classify)?;
        Ok(done.rows_affected > 0)
    }

    /// Inserts or updates `rows` by id, all in one transaction, a thousand rows a statement.
    /// New users without an organization go to `new_in`. With `only`, an id that exists in
    /// another organization is never touched: the whole call fails with FORBIDDEN naming it.
    /// Ids must be distinct. Returns how many rows were written.
    pub async fn upsert_users(
        &self,
        rows: &[UserUpsert],
        new_in: &ExternalId,
        only: Option<&ExternalId>,
    ) -> Result<u64, Error> {
        use sea_orm::{ConnectionTrait, Value};
        // One statement per shape: its `DO UPDATE SET` lists only the fields those rows give,
        // so fields a row leaves out keep their stored values.
        let mut shapes: Vec<([bool; 4], Vec<&UserUpsert>)> = Vec::new();
        for row in rows {
            match shapes.iter_mut().find(|(s, _)| *s == row.shape()) {
                Some((_, group)) => group.push(row),
                None => shapes.push((row.shape(), vec![row])),
            }
        }
        let now = Utc::now();
        let txn = self.begin_write().await?;
        let mut written = 0;
        for (shape, group) in &shapes {
            let [org, email, name, role] = *shape;
            let mut set = vec!["updated_at = excluded.updated_at"];
            for (given, column) in [
                (org, "organization_id = excluded.organization_id"),
                (email, "email = excluded.email"),
                (name, "name = excluded.name"),
                (role, "role = excluded.role"),
            ] {
                if given {
                    set.push(column);
                }
            }
            let guard = if only.is_some() {
                " WHERE users.organization_id = ?"
            } else {
                ""
            };
            for chunk in group.chunks(UPSERT_ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO users (id, organization_id, email, name, password_hash, role, \
                     created_at, updated_at) VALUES {} \
                     ON CONFLICT (id) DO UPDATE SET {}{guard} RETURNING id",
                    vec!["(?,?,?,?,NULL,?,?,?)"; chunk.len()].join(","),
                    set.join(", "),
                );
                let mut values: Vec<Value> = Vec::with_capacity(chunk.len() * 7 + 1);
                for u in chunk {
                    values.extend([
                        u.id.as_str().into(),
                        u.organization_id.as_ref().unwrap_or(new_in).as_str().into(),
                        u.email.clone().into(),
                        u.name.clone().unwrap_or_default().into(),
                        u.role.unwrap_or(Role::User).as_str().into(),
                        now.into(),
                        now.into(),
                    ]);
                }
                if let Some(org) = only {
                    values.push(org.as_str().into());
                }
                let returned = txn
                    .query_all_raw(self.stmt(&sql, values))
                    .await
                    .map_err(|e| match classify(e) {
                        // Ids cannot clash (ON CONFLICT takes them), so an email did.
                        e if e.code == tidings_domain::ErrorCode::Conflict => {
                            Error::conflict("users: an email is already taken by another user")
                        }
                        e => e,
                    })?;
                if returned.len() < chunk.len() {
                    // The guard skipped rows: users of another organization (created since
                    // the caller looked). Dropping the transaction rolls everything back.
                    let mut kept = std::collections::HashSet::with_capacity(returned.len());
                    for row in &returned {
                        kept.insert(crate::db::get::<String>(row, "id")?);
                    }
                    let foreign: Vec<&str> = chunk
                        .iter()
                        .map(|u| u.id.as_str())
                        .filter(|id| !kept.contains(*id))
                        .collect();
                    return Err(Error::forbidden(format!(
                        "users: belong to another organization: {}",
                        foreign.join(", ")
                    )));
                }
                written += returned.len() as u64;
            }
            if org {
                // A user who moved to another organization leaves the groups of the old one.
                for chunk in group.chunks(IDS_PER_STATEMENT) {
                    let sql = format!(
                        "DELETE FROM group_members WHERE user_id IN ({}) AND NOT EXISTS (\
                         SELECT 1 FROM user_groups g JOIN users u \
                         ON u.organization_id = g.organization_id \
                         WHERE g.id = group_members.group_id AND u.id = group_members.user_id)",
                        placeholders(chunk.len())
                    );
                    let values = chunk.iter().map(|u| Value::from(u.id.as_str()));
                    txn.execute_raw(self.stmt(&sql, values))
                        .await
                        .map_err(classify)?;
                }
            }
        }
        txn.commit().await.map_err(classify)?;
        Ok(written)
    }
}
