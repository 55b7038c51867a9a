//! Organizations and users, managed by admins (within their organization) and services.

use serde::{Deserialize, Serialize};
use tidings_domain::{Caller, Error, ExternalId, Role, format_timestamp, validate_email};
use tidings_persistence::{NewUser, OrganizationRecord};

use crate::Ctx;
use crate::auth::{UserOutput, ensure_default_organization, hash_password};

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
async fn target_organization(ctx: &Ctx, requested: Option<String>) -> Result<ExternalId, Error> {
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
    let role = match input.role.as_deref() {
        None | Some("user") => Role::User,
        Some("admin") => Role::Admin,
        Some(other) => {
            return Err(Error::field(
                "role",
                format!("must be \"user\" or \"admin\", got {other:?}"),
            ));
        }
    };
    let password_hash = match input.password {
        None => None,
        Some(p) if p.chars().count() < MIN_PASSWORD || p.len() > MAX_PASSWORD => {
            return Err(Error::field(
                "password",
                format!("must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"),
            ));
        }
        Some(_) if email.is_none() => {
            return Err(Error::field("password", "needs an email to sign in with"));
        }
        Some(p) => Some(hash_password(p).await?),
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
