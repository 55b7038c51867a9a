use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use tidings_domain::{Error, ExternalId, Role, UserCaller};
use uuid::Uuid;

use crate::db::{Db, classify, get};
use crate::entities::sessions;

/// A session found by its token, with the user behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionLookup {
    pub caller: UserCaller,
    pub expires_at: DateTime<Utc>,
    pub renewed_at: DateTime<Utc>,
}

impl Db {
    pub async fn create_session(
        &self,
        user_id: &ExternalId,
        token_hash: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<Uuid, Error> {
        let now = Utc::now();
        let id = Uuid::now_v7();
        let model = sessions::ActiveModel {
            id: Set(id),
            token_hash: Set(token_hash.to_owned()),
            user_id: Set(user_id.as_str().to_owned()),
            created_at: Set(now),
            expires_at: Set(expires_at),
            renewed_at: Set(now),
        };
        sessions::Entity::insert(model)
            .exec_without_returning(&self.conn)
            .await
            .map_err(classify)?;
        Ok(id)
    }

    /// The session with this token hash, whether or not it has expired.
    pub async fn session_by_token_hash(
        &self,
        token_hash: &str,
    ) -> Result<Option<SessionLookup>, Error> {
        let row = self
            .query_one(
                "SELECT s.id, s.expires_at, s.renewed_at, u.id AS user_id, \
                 u.organization_id, u.role \
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?",
                [token_hash.into()],
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(SessionLookup {
            caller: UserCaller {
                user_id: ExternalId::from_trusted(get(&row, "user_id")?),
                organization_id: ExternalId::from_trusted(get(&row, "organization_id")?),
                role: Role::from_stored(&get::<String>(&row, "role")?),
                session_id: get(&row, "id")?,
            },
            expires_at: get(&row, "expires_at")?,
            renewed_at: get(&row, "renewed_at")?,
        }))
    }

    /// Moves a session's expiry forward (sliding expiry).
    pub async fn renew_session(&self, id: Uuid, expires_at: DateTime<Utc>) -> Result<(), Error> {
        sessions::Entity::update_many()
            .col_expr(
                sessions::Column::ExpiresAt,
                sea_orm::sea_query::Expr::value(expires_at),
            )
            .col_expr(
                sessions::Column::RenewedAt,
                sea_orm::sea_query::Expr::value(Utc::now()),
            )
            .filter(sessions::Column::Id.eq(id))
            .exec(&self.conn)
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Revokes every session of a user; answers how many there were.
    pub async fn delete_user_sessions(&self, user_id: &ExternalId) -> Result<u64, Error> {
        let done = sessions::Entity::delete_many()
            .filter(sessions::Column::UserId.eq(user_id.as_str()))
            .exec(&self.conn)
            .await
            .map_err(classify)?;
        Ok(done.rows_affected)
    }

    pub async fn delete_session(&self, id: Uuid) -> Result<(), Error> {
        sessions::Entity::delete_by_id(id)
            .exec(&self.conn)
            .await
            .map_err(classify)?;
        Ok(())
    }
}
