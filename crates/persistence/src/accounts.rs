use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
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
