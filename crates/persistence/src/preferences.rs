use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};
use tidings_domain::{Channel, Error, ExternalId};

use crate::db::{Db, classify};
use crate::entities::preferences;

/// A choice a user made that differs from (or confirms) a type's default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreferenceOverride {
    pub channel: Channel,
    pub kind: String,
    pub enabled: bool,
}

impl Db {
    pub async fn preference_overrides(
        &self,
        user_id: &ExternalId,
    ) -> Result<Vec<PreferenceOverride>, Error> {
        let rows = preferences::Entity::find()
            .filter(preferences::Column::UserId.eq(user_id.as_str()))
            .all(&self.conn)
            .await
            .map_err(classify)?;
        Ok(rows
            .into_iter()
            .filter_map(|m| {
                let channel = Channel::ALL.into_iter().find(|c| c.as_str() == m.channel)?;
                Some(PreferenceOverride {
                    channel,
                    kind: m.r#type,
                    enabled: m.enabled,
                })
            })
            .collect())
    }

    /// Records the user's choices, replacing earlier ones for the same channel and type.
    pub async fn set_preferences(
        &self,
        user_id: &ExternalId,
        choices: &[PreferenceOverride],
    ) -> Result<(), Error> {
        if choices.is_empty() {
            return Ok(());
        }
        let now = Utc::now();
        let models = choices.iter().map(|c| preferences::ActiveModel {
            user_id: Set(user_id.as_str().to_owned()),
            channel: Set(c.channel.as_str().to_owned()),
            r#type: Set(c.kind.clone()),
            enabled: Set(c.enabled),
            updated_at: Set(now),
        });
        let txn = self.begin_write().await?;
        preferences::Entity::insert_many(models)
            .on_conflict(
                OnConflict::columns([
                    preferences::Column::UserId,
                    preferences::Column::Channel,
                    preferences::Column::Type,
                ])
                .update_columns([preferences::Column::Enabled, preferences::Column::UpdatedAt])
                .to_owned(),
            )
            .exec_without_returning(&txn)
            .await
            .map_err(classify)?;
        txn.commit().await.map_err(classify)?;
        Ok(())
    }
}
