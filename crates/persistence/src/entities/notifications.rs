use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: String,
    pub organization_id: String,
    #[sea_orm(column_name = "type")]
    pub r#type: String,
    pub title: String,
    pub message: String,
    /// A JSON object, as text.
    pub data: Option<String>,
    pub read: bool,
    pub read_at: Option<DateTimeUtc>,
    pub seen_at: Option<DateTimeUtc>,
    pub status: String,
    pub sender_id: Option<String>,
    pub collection: Option<String>,
    pub item: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
