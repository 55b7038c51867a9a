//! User groups, managed by admins (within their organization) and services: named sets of
//! users that `notifications.notify` can address at once.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use tidings_domain::{Error, ExternalId, format_timestamp};
use tidings_persistence::GroupRecord;
use uuid::Uuid;

use crate::Ctx;
use crate::accounts::{admin_organization, list_scope, target_organization, validate_name};

/// At most this many user ids in one call.
pub(crate) const MAX_MEMBERS: usize = 10_000;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GroupOutput {
    id: String,
    organization_id: String,
    name: String,
    member_count: u64,
    created_at: String,
}

impl From<GroupRecord> for GroupOutput {
    fn from(g: GroupRecord) -> Self {
        Self {
            id: g.id.to_string(),
            organization_id: g.organization_id.into_string(),
            name: g.name,
            member_count: g.member_count,
            created_at: format_timestamp(g.created_at),
        }
    }
}

/// Parses `userIds`: at least `min`, at most [`MAX_MEMBERS`], each an id; repeats count once.
fn parse_user_ids(ids: Vec<String>, min: usize) -> Result<Vec<ExternalId>, Error> {
    if ids.len() < min || ids.len() > MAX_MEMBERS {
        return Err(Error::field(
            "userIds",
            format!("must hold {min} to {MAX_MEMBERS} ids, got {}", ids.len()),
        ));
    }
    let mut seen = HashSet::with_capacity(ids.len());
    let mut parsed = Vec::with_capacity(ids.len());
    for (i, id) in ids.iter().enumerate() {
        let id = ExternalId::parse(&format!("userIds[{i}]"), id)?;
        if seen.insert(id.clone()) {
            parsed.push(id);
        }
    }
    Ok(parsed)
}

/// Fails naming the ids that are not users of `organization`.
async fn ensure_members_of(
    ctx: &Ctx,
    organization: &ExternalId,
    ids: &[ExternalId],
) -> Result<(), Error> {
    let inside: HashSet<ExternalId> = ctx
        .db()
        .users_by_ids(ids)
        .await?
        .into_iter()
        .filter(|u| u.organization_id == *organization)
        .map(|u| u.id)
        .collect();
    let outside: Vec<&str> = ids
        .iter()
        .filter(|id| !inside.contains(*id))
        .map(ExternalId::as_str)
        .collect();
    if outside.is_empty() {
        Ok(())
    } else {
        Err(Error::field(
            "userIds",
            format!(
                "not users of organization {organization}: {}",
                outside.join(", ")
            ),
        ))
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateInput {
    name: String,
    organization_id: Option<String>,
    user_ids: Option<Vec<String>>,
}

/// `groups.create`: a named group in one organization, optionally with its first members.
pub(crate) async fn create(ctx: Ctx, input: CreateInput) -> Result<GroupOutput, Error> {
    let name = validate_name("name", &input.name, 200)?;
    let members = parse_user_ids(input.user_ids.unwrap_or_default(), 0)?;
    let organization = target_organization(&ctx, input.organization_id).await?;
    ensure_members_of(&ctx, &organization, &members).await?;
    Ok(ctx
        .db()
        .create_group(&organization, &name, &members)
        .await?
        .into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ListInput {
    organization_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ListOutput {
    groups: Vec<GroupOutput>,
}

/// `groups.list`: an admin's groups, or for a service key every group (or one organization's).
pub(crate) async fn list(ctx: Ctx, input: ListInput) -> Result<ListOutput, Error> {
    let organization = list_scope(&ctx, input.organization_id)?;
    let groups = ctx.db().groups(organization.as_ref()).await?;
    Ok(ListOutput {
        groups: groups.into_iter().map(Into::into).collect(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct MembersInput {
    group_id: String,
    user_ids: Vec<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct MembersOutput {
    success: bool,
    /// How many memberships changed.
    count: u64,
}

/// The group an input names, if the caller may see it, and the users it names.
async fn group_and_users(
    ctx: &Ctx,
    input: MembersInput,
) -> Result<(GroupRecord, Vec<ExternalId>), Error> {
    let group_id = Uuid::try_parse(&input.group_id).map_err(|_| {
        Error::field(
            "groupId",
            format!("must be a UUID, got {:?}", input.group_id),
        )
    })?;
    let users = parse_user_ids(input.user_ids, 1)?;
    let only = admin_organization(ctx);
    let group = ctx
        .db()
        .group(group_id)
        .await?
        .filter(|g| only.is_none_or(|org| *org == g.organization_id))
        .ok_or_else(|| Error::not_found(format!("Group {group_id} not found")))?;
    ensure_members_of(ctx, &group.organization_id, &users).await?;
    Ok((group, users))
}

/// `groups.addMembers`: users already in the group stay, uncounted.
pub(crate) async fn add_members(ctx: Ctx, input: MembersInput) -> Result<MembersOutput, Error> {
    let (group, users) = group_and_users(&ctx, input).await?;
    let count = ctx.db().add_group_members(group.id, &users).await?;
    Ok(MembersOutput {
        success: true,
        count,
    })
}

/// `groups.removeMembers`: users not in the group are skipped, uncounted.
pub(crate) async fn remove_members(ctx: Ctx, input: MembersInput) -> Result<MembersOutput, Error> {
    let (group, users) = group_and_users(&ctx, input).await?;
    let count = ctx.db().remove_group_members(group.id, &users).await?;
    Ok(MembersOutput {
        success: true,
        count,
    })
}
