use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "notification_types")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub description: String,
    pub title_template: String,
    pub message_template: String,
    pub email_supported: bool,
    pub email_default: bool,
    pub in_app_supported: bool,
    pub in_app_default: bool,
    pub push_supported: bool,
    pub push_default: bool,
    pub required: bool,
    pub position: i32,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
