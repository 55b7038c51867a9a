use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use tidings_domain::{Error, ErrorCode, ServiceCaller};
use uuid::Uuid;

use crate::db::{Db, classify};
use crate::entities::service_keys;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceKeyRecord {
    pub id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<service_keys::Model> for ServiceKeyRecord {
    fn from(m: service_keys::Model) -> Self {
        Self {
            id: m.id,
            name: m.name,
            created_at: m.created_at,
            revoked_at: m.revoked_at,
        }
    }
}

impl Db {
    /// Stores a key by the hash of its secret; the secret itself is never stored.
    pub async fn create_service_key(
        &self,
        name: &str,
        key_hash: &str,
    ) -> Result<ServiceKeyRecord, Error> {
        let model = service_keys::ActiveModel {
            id: Set(Uuid::now_v7()),
            name: Set(name.to_owned()),
            key_hash: Set(key_hash.to_owned()),
            created_at: Set(Utc::now()),
            revoked_at: Set(None),
        };
        service_keys::Entity::insert(model)
            .exec_with_returning(&self.conn)
            .await
            .map(Into::into)
            .map_err(|e| match classify(e) {
                e if e.code == ErrorCode::Conflict => {
                    Error::conflict(format!("name: a key named {name:?} already exists"))
                }
                e => e,
            })
    }

    /// The service behind an unrevoked key with this hash.
    pub async fn service_by_key_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<ServiceCaller>, Error> {
        service_keys::Entity::find()
            .filter(service_keys::Column::KeyHash.eq(key_hash))
            .filter(service_keys::Column::RevokedAt.is_null())
            .one(&self.conn)
            .await
            .map(|m| {
                m.map(|m| ServiceCaller {
                    key_id: m.id,
                    name: m.name,
                })
            })
            .map_err(classify)
    }

    /// Revokes the key with this name; `false` when there is no unrevoked key by that name.
    pub async fn revoke_service_key(&self, name: &str) -> Result<bool, Error> {
        let now = Utc::now();
        let done = service_keys::Entity::update_many()
            .col_expr(
                service_keys::Column::RevokedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(service_keys::Column::Name.eq(name))
            .filter(service_keys::Column::RevokedAt.is_null())
            .exec(&self.conn)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected > 0)
    }

    pub async fn service_keys(&self) -> Result<Vec<ServiceKeyRecord>, Error> {
        service_keys::Entity::find()
            .order_by_asc(service_keys::Column::CreatedAt)
            .all(&self.conn)
            .await
            .map(|v| v.into_iter().map(Into::into).collect())
            .map_err(classify)
    }
}
