//! Organizations and users, managed by admins (within their organization) and services.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use tidings_domain::{Caller, Error, ExternalId, Role, format_timestamp, validate_email};
use tidings_persistence::{NewUser, OrganizationRecord, UserChanges, UserUpsert};

use crate::Ctx;
use crate::auth::{
    DEFAULT_ORGANIZATION, Success, UserOutput, ensure_default_organization, hash_password,
};
use crate::input::decode_at;
use crate::registry::NoInput;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateOrganizationInput {
    id: Option<String>,
    name: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct OrganizationOutput {
    id: String,
    name: String,
    created_at: String,
}

impl From<OrganizationRecord> for OrganizationOutput {
    fn from(o: OrganizationRecord) -> Self {
        Self {
            id: o.id.into_string(),
            name: o.name,
            created_at: format_timestamp(o.created_at),
        }
    }
}

/// A trimmed name of 1 to `max` characters.
pub(crate) fn validate_name(field: &str, value: &str, max: usize) -> Result<String, Error> {
    let value = value.trim();
    if value.is_empty() || value.chars().count() > max {
        return Err(Error::field(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    Ok(value.to_owned())
}

pub(crate) async fn create_organization(
    ctx: Ctx,
    input: CreateOrganizationInput,
) -> Result<OrganizationOutput, Error> {
    let name = validate_name("name", &input.name, 200)?;
    let id = match input.id {
        Some(id) => ExternalId::parse("id", &id)?,
        None => ExternalId::generate(),
    };
    Ok(ctx.db().create_organization(&id, &name).await?.into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateUserInput {
    id: Option<String>,
    email: Option<String>,
    name: Option<String>,
    password: Option<String>,
    organization_id: Option<String>,
    role: Option<String>,
}

pub(crate) const MIN_PASSWORD: usize = 8;
pub(crate) const MAX_PASSWORD: usize = 1024;

/// The organization a caller may put a user in: an admin only their own, a service any
/// existing one, and by default the admin's own or the default organization.
pub(crate) async fn target_organization(
    ctx: &Ctx,
    requested: Option<String>,
) -> Result<ExternalId, Error> {
    let requested = requested
        .map(|id| ExternalId::parse("organizationId", &id))
        .transpose()?;
    match (&ctx.caller, requested) {
        (Some(Caller::User(admin)), None) => Ok(admin.organization_id.clone()),
        (Some(Caller::User(admin)), Some(id)) if id == admin.organization_id => Ok(id),
        (Some(Caller::User(_)), Some(_)) => Err(Error::forbidden(
            "organizationId: admins can only manage their own organization",
        )),
        (_, None) => ensure_default_organization(ctx.db()).await,
        (_, Some(id)) => match ctx.db().organization(&id).await? {
            Some(_) => Ok(id),
            None => Err(Error::field(
                "organizationId",
                format!("unknown organization {id}"),
            )),
        },
    }
}

pub(crate) async fn create_user(ctx: Ctx, input: CreateUserInput) -> Result<UserOutput, Error> {
    let id = match input.id {
        Some(id) => ExternalId::parse("id", &id)?,
        None => ExternalId::generate(),
    };
    let email = input
        .email
        .map(|e| validate_email("email", &e))
        .transpose()?;
    let name = match input.name {
        Some(name) => validate_name("name", &name, 200)?,
        None => String::new(),
    };
    let role = match input.role {
        None => Role::User,
        Some(role) => parse_role("role", &role)?,
    };
    let password_hash = match input.password {
        None => None,
        Some(p) => Some(new_password_hash(p, email.is_some()).await?),
    };
    let organization_id = target_organization(&ctx, input.organization_id).await?;
    let user = ctx
        .db()
        .create_user(NewUser {
            id,
            organization_id,
            email,
            name,
            password_hash,
            role,
        })
        .await?;
    Ok(user.into())
}

/// `"user"` or `"admin"`.
fn parse_role(field: &str, value: &str) -> Result<Role, Error> {
    match value {
        "user" => Ok(Role::User),
        "admin" => Ok(Role::Admin),
        other => Err(Error::field(
            field,
            format!("must be \"user\" or \"admin\", got {other:?}"),
        )),
    }
}

/// Checks a new password and hashes it; a user without an email has nothing to sign in with.
async fn new_password_hash(password: String, has_email: bool) -> Result<String, Error> {
    if password.chars().count() < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(Error::field(
            "password",
            format!("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
        ));
    }
    if !has_email {
        return Err(Error::field("password", "needs an email to sign in with"));
    }
    hash_password(password).await
}

/// The organization an admin is confined to; `None` for a service key, which sees them all.
pub(crate) fn admin_organization(ctx: &Ctx) -> Option<&ExternalId> {
    match &ctx.caller {
        Some(Caller::User(admin)) => Some(&admin.organization_id),
        _ => None,
    }
}

/// The organization a listing is limited to: an admin's own (naming another is forbidden), or
/// for a service key the one it names, or none.
pub(crate) fn list_scope(
    ctx: &Ctx,
    requested: Option<String>,
) -> Result<Option<ExternalId>, Error> {
    let requested = requested
        .map(|id| ExternalId::parse("organizationId", &id))
        .transpose()?;
    match (admin_organization(ctx), requested) {
        (Some(own), Some(id)) if id != *own => Err(Error::forbidden(
            "organizationId: admins can only manage their own organization",
        )),
        (Some(own), _) => Ok(Some(own.clone())),
        (None, requested) => Ok(requested),
    }
}

fn user_not_found(id: &ExternalId) -> Error {
    Error::not_found(format!("User {id} not found"))
}

#[derive(Debug, Serialize)]
pub(crate) struct OrganizationsOutput {
    organizations: Vec<OrganizationOutput>,
}

/// `organizations.list`: an admin's own organization, or every one for a service key.
pub(crate) async fn list_organizations(ctx: Ctx, _: NoInput) -> Result<OrganizationsOutput, Error> {
    let organizations = ctx.db().organizations(admin_organization(&ctx)).await?;
    Ok(OrganizationsOutput {
        organizations: organizations.into_iter().map(Into::into).collect(),
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct ListUsersInput {
    organization_id: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ListUsersOutput {
    users: Vec<UserOutput>,
    next_cursor: Option<String>,
    has_more: bool,
}

pub(crate) const DEFAULT_USERS_LIMIT: i64 = 100;
pub(crate) const MAX_USERS_LIMIT: i64 = 1000;

/// `users.list`: users by id, a page at a time; the cursor is the last id of a page.
pub(crate) async fn list_users(ctx: Ctx, input: ListUsersInput) -> Result<ListUsersOutput, Error> {
    let limit = input.limit.unwrap_or(DEFAULT_USERS_LIMIT);
    if !(1..=MAX_USERS_LIMIT).contains(&limit) {
        return Err(Error::field(
            "limit",
            format!("must be between 1 and {MAX_USERS_LIMIT}, got {limit}"),
        ));
    }
    let after = input
        .cursor
        .map(|c| ExternalId::parse("cursor", &c))
        .transpose()?;
    let organization = list_scope(&ctx, input.organization_id)?;
    let page = ctx
        .db()
        .users_page(organization.as_ref(), after.as_ref(), limit as u64)
        .await?;
    let next_cursor = if page.has_more {
        page.items.last().map(|u| u.id.to_string())
    } else {
        None
    };
    Ok(ListUsersOutput {
        users: page.items.into_iter().map(Into::into).collect(),
        has_more: next_cursor.is_some(),
        next_cursor,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateUserInput {
    id: String,
    email: Option<String>,
    name: Option<String>,
    password: Option<String>,
    role: Option<String>,
}

/// `users.update`: changes the fields given; an admin reaches only its own organization.
pub(crate) async fn update_user(ctx: Ctx, input: UpdateUserInput) -> Result<UserOutput, Error> {
    let id = ExternalId::parse("id", &input.id)?;
    let email = input
        .email
        .map(|e| validate_email("email", &e))
        .transpose()?;
    let name = input
        .name
        .map(|n| validate_name("name", &n, 200))
        .transpose()?;
    let role = input.role.map(|r| parse_role("role", &r)).transpose()?;
    let only = admin_organization(&ctx);
    let existing = ctx
        .db()
        .user(&id)
        .await?
        .filter(|u| only.is_none_or(|org| *org == u.organization_id))
        .ok_or_else(|| user_not_found(&id))?;
    let password_hash = match input.password {
        None => None,
        Some(p) => {
            let has_email = email.is_some() || existing.email.is_some();
            Some(new_password_hash(p, has_email).await?)
        }
    };
    let changes = UserChanges {
        email,
        name,
        password_hash,
        role,
    };
    let updated = ctx.db().update_user(&id, only, changes).await?;
    // Sessions carry the user's role: forget cached ones.
    ctx.app.hub.sessions_changed([&id]).await;
    updated.map(Into::into).ok_or_else(|| user_not_found(&id))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteUserInput {
    id: String,
}

/// `users.delete`: the user goes, and with it everything that was theirs.
pub(crate) async fn delete_user(ctx: Ctx, input: DeleteUserInput) -> Result<Success, Error> {
    let id = ExternalId::parse("id", &input.id)?;
    if ctx.db().delete_user(&id, admin_organization(&ctx)).await? {
        ctx.app.hub.sessions_changed([&id]).await;
        ctx.app.hub.users_changed([&id]).await;
        Ok(Success { success: true })
    } else {
        Err(user_not_found(&id))
    }
}

/// At most this many users in one `users.upsertMany` call.
pub(crate) const MAX_UPSERT: usize = 10_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpsertManyInput {
    users: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct UpsertEntry {
    id: String,
    email: Option<String>,
    name: Option<String>,
    organization_id: Option<String>,
    role: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct UpsertManyOutput {
    created: u64,
    updated: u64,
}

/// Checks one entry of `users.upsertMany`; `at` is its place, such as `users[3]`.
fn validate_upsert(ctx: &Ctx, at: &str, entry: UpsertEntry) -> Result<UserUpsert, Error> {
    let id = ExternalId::parse(&format!("{at}.id"), &entry.id)?;
    let email = entry
        .email
        .map(|e| validate_email(&format!("{at}.email"), &e))
        .transpose()?;
    let name = entry
        .name
        .map(|n| validate_name(&format!("{at}.name"), &n, 200))
        .transpose()?;
    let role = entry
        .role
        .map(|r| parse_role(&format!("{at}.role"), &r))
        .transpose()?;
    let field = format!("{at}.organizationId");
    let organization_id = entry
        .organization_id
        .map(|o| ExternalId::parse(&field, &o))
        .transpose()?;
    let organization_id = match (admin_organization(ctx), organization_id) {
        (Some(own), Some(org)) if org != *own => {
            return Err(Error::forbidden(format!(
                "{field}: admins can only manage their own organization"
            )));
        }
        // An admin's users are all in its organization already, or go there when new.
        (Some(_), _) => None,
        (None, org) => org,
    };
    Ok(UserUpsert {
        id,
        organization_id,
        email,
        name,
        role,
    })
}

/// `users.upsertMany`: the host product's users, inserted or updated by id, all or none.
pub(crate) async fn upsert_many(
    ctx: Ctx,
    input: UpsertManyInput,
) -> Result<UpsertManyOutput, Error> {
    if input.users.len() > MAX_UPSERT {
        return Err(Error::field(
            "users",
            format!(
                "must hold at most {MAX_UPSERT} users a call, got {}",
                input.users.len()
            ),
        ));
    }
    let rows = input
        .users
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let at = format!("users[{i}]");
            validate_upsert(&ctx, &at, decode_at(&at, value)?)
        })
        .collect::<Result<Vec<_>, Error>>()?;
    if rows.is_empty() {
        return Ok(UpsertManyOutput {
            created: 0,
            updated: 0,
        });
    }

    let mut seen = HashSet::with_capacity(rows.len());
    let mut duplicates: Vec<&str> = Vec::new();
    for row in &rows {
        if !seen.insert(&row.id) && !duplicates.contains(&row.id.as_str()) {
            duplicates.push(row.id.as_str());
        }
    }
    if !duplicates.is_empty() {
        return Err(Error::field(
            "users",
            format!("duplicate ids: {}", duplicates.join(", ")),
        ));
    }

    // Organizations a service key names must exist.
    let mut named: Vec<ExternalId> = rows
        .iter()
        .filter_map(|r| r.organization_id.clone())
        .collect();
    named.sort();
    named.dedup();
    if !named.is_empty() {
        let known = ctx.db().organizations_by_ids(&named).await?;
        if let Some((i, row)) = rows.iter().enumerate().find(|(_, r)| {
            r.organization_id
                .as_ref()
                .is_some_and(|org| !known.iter().any(|k| k.id == *org))
        }) {
            let org = row.organization_id.as_ref().map(ExternalId::as_str);
            return Err(Error::field(
                &format!("users[{i}].organizationId"),
                format!("unknown organization {}", org.unwrap_or_default()),
            ));
        }
    }

    let ids: Vec<ExternalId> = rows.iter().map(|r| r.id.clone()).collect();
    let existing: HashMap<ExternalId, ExternalId> = ctx
        .db()
        .users_by_ids(&ids)
        .await?
        .into_iter()
        .map(|u| (u.id, u.organization_id))
        .collect();
    let only = admin_organization(&ctx);
    if let Some(own) = only {
        let foreign: Vec<&str> = rows
            .iter()
            .filter(|r| existing.get(&r.id).is_some_and(|org| org != own))
            .map(|r| r.id.as_str())
            .collect();
        if !foreign.is_empty() {
            return Err(Error::forbidden(format!(
                "users: belong to another organization: {}",
                foreign.join(", ")
            )));
        }
    }

    // An email may belong to one user only: to another entry of this call, or to a stored
    // user with another id, is a conflict.
    let mut by_email: HashMap<&str, usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        if let Some(email) = row.email.as_deref()
            && let Some(first) = by_email.insert(email, i)
        {
            return Err(Error::conflict(format!(
                "users[{i}].email: {email} is also given to users[{first}]"
            )));
        }
    }
    let emails: Vec<String> = by_email.keys().map(|e| (*e).to_owned()).collect();
    let holders: HashMap<String, ExternalId> = ctx
        .db()
        .users_by_emails(&emails)
        .await?
        .into_iter()
        .filter_map(|u| u.email.map(|e| (e, u.id)))
        .collect();
    if let Some((i, row)) = rows.iter().enumerate().find(|(_, r)| {
        r.email
            .as_ref()
            .and_then(|e| holders.get(e))
            .is_some_and(|holder| *holder != r.id)
    }) {
        return Err(Error::conflict(format!(
            "users[{i}].email: {} is already taken",
            row.email.as_deref().unwrap_or_default()
        )));
    }

    let new_in = match only {
        Some(own) => own.clone(),
        // Only a new user without an organization needs the default one to exist.
        None if rows
            .iter()
            .any(|r| r.organization_id.is_none() && !existing.contains_key(&r.id)) =>
        {
            ensure_default_organization(ctx.db()).await?
        }
        None => ExternalId::from_trusted(DEFAULT_ORGANIZATION.to_owned()),
    };
    ctx.db().upsert_users(&rows, &new_in, only).await?;
    let changed: Vec<&ExternalId> = rows
        .iter()
        .filter(|r| existing.contains_key(&r.id))
        .map(|r| &r.id)
        .collect();
    ctx.app.hub.sessions_changed(changed).await;
    let updated = rows.iter().filter(|r| existing.contains_key(&r.id)).count() as u64;
    Ok(UpsertManyOutput {
        created: rows.len() as u64 - updated,
        updated,
    })
}
