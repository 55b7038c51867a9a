//! Notification types: their templates and channel rules.

use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder, QuerySelect};
use tidings_domain::Error;

use crate::db::{Db, classify};
use crate::entities::notification_types;
use crate::notifications::TypeRecord;

impl Db {
    /// Creates the type or replaces its description, templates and channel rules; a new type
    /// goes after the existing ones.
    pub async fn upsert_type(&self, t: &TypeRecord) -> Result<TypeRecord, Error> {
        let next_position = notification_types::Entity::find()
            .select_only()
            .column(notification_types::Column::Position)
            .order_by_desc(notification_types::Column::Position)
            .into_tuple::<i32>()
            .one(&self.conn)
            .await
            .map_err(classify)?
            .map_or(0, |p| p + 1);
        let now = Utc::now();
        let c = &t.channels;
        let model = notification_types::ActiveModel {
            key: Set(c.key.clone()),
            description: Set(t.description.clone()),
            title_template: Set(t.title_template.clone()),
            message_template: Set(t.message_template.clone()),
            email_supported: Set(c.email.supported),
            email_default: Set(c.email.default),
            in_app_supported: Set(c.in_app.supported),
            in_app_default: Set(c.in_app.default),
            push_supported: Set(c.push.supported),
            push_default: Set(c.push.default),
            required: Set(c.required),
            position: Set(next_position),
            created_at: Set(now),
            updated_at: Set(now),
        };
        use notification_types::Column as C;
        notification_types::Entity::insert(model)
            .on_conflict(
                OnConflict::column(C::Key)
                    .update_columns([
                        C::Description,
                        C::TitleTemplate,
                        C::MessageTemplate,
                        C::EmailSupported,
                        C::EmailDefault,
                        C::InAppSupported,
                        C::InAppDefault,
                        C::PushSupported,
                        C::PushDefault,
                        C::Required,
                        C::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&self.conn)
            .await
            .map_err(classify)?;
        self.notification_type(&c.key)
            .await?
            .ok_or_else(|| Error::internal_reason("upserted type vanished"))
    }
}
