//! Sign-in, sessions and service keys.
//!
//! Session tokens and service keys are 256-bit random secrets; only their SHA-256 is stored, so
//! a leaked database gives no working credential. Passwords are hashed with argon2id at the
//! crate's default parameters (19 MiB, 2 passes, 1 lane: OWASP's recommended minimum).

use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tidings_domain::{Caller, Error, ExternalId, Role, format_timestamp, validate_email};
use tidings_persistence::{Db, NewUser, ServiceKeyRecord, UserRecord};

use crate::registry::NoInput;
use crate::{App, Ctx, SessionChange};

/// The name of the browser session cookie.
pub const SESSION_COOKIE: &str = "tidings_session";

/// The credentials a transport found on a request, not yet checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    pub session_token: Option<String>,
    pub bearer_key: Option<String>,
}

fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 of `text`, as lowercase hex.
pub(crate) fn sha256_hex(secret: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(digest.len() * 2);
    for b in digest {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    hex
}

/// Resolves credentials to a caller. A bearer key wins over a cookie. Unknown, expired and
/// revoked credentials give `None`. A session past half its lifetime is renewed, and the
/// renewed cookie is left in `session`.
pub async fn resolve_caller(
    app: &App,
    credentials: &Credentials,
    session: &crate::SessionSlot,
) -> Result<Option<Caller>, Error> {
    if let Some(key) = &credentials.bearer_key {
        return Ok(app
            .db
            .service_by_key_hash(&sha256_hex(key))
            .await?
            .map(Caller::Service));
    }
    let Some(token) = &credentials.session_token else {
        return Ok(None);
    };
    if token.is_empty() || token.len() > 128 {
        return Ok(None);
    }
    let token_hash = sha256_hex(token);
    let Some(found) = app.hub.session(&token_hash).await? else {
        return Ok(None);
    };
    let now = Utc::now();
    if found.expires_at <= now {
        return Ok(None);
    }
    let ttl = app.config.session_ttl;
    let ttl_chrono = chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(30));
    if now - found.renewed_at > ttl_chrono / 2 {
        app.db
            .renew_session(found.caller.session_id, now + ttl_chrono)
            .await?;
        // The cached copy still has the old times.
        app.hub.sessions_changed([&found.caller.user_id]).await;
        session.set(SessionChange::Set {
            token: token.clone(),
            max_age: ttl,
        });
    }
    Ok(Some(Caller::User(found.caller)))
}

/// Hashes a password with argon2id; CPU-heavy, so it runs off the async threads.
pub async fn hash_password(password: String) -> Result<String, Error> {
    tokio_blocking(move || {
        let mut salt = [0u8; 16];
        rand::rng().fill_bytes(&mut salt);
        let salt = SaltString::encode_b64(&salt).map_err(hash_error)?;
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(hash_error)
    })
    .await
}

async fn verify_password(password: String, hash: Option<String>) -> Result<bool, Error> {
    tokio_blocking(move || {
        // Without a stored hash, verify against a fixed one anyway, so that the answer takes
        // as long for an unknown email as for a wrong password.
        let stored = hash.as_deref().unwrap_or(DUMMY_HASH);
        let parsed = PasswordHash::new(stored).map_err(hash_error)?;
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        Ok(ok && hash.is_some())
    })
    .await
}

/// argon2id of a random password nobody knows, at the default parameters.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$1Yw0Mb2yI3Uyq0I4GxkZ3gWJ0mXn3vj4u8uOQ3z9y2E";

/// A failure of the password hash library, as an internal error.
fn hash_error(e: impl std::fmt::Display) -> Error {
    Error::internal_reason(format!("password hashing failed: {e}"))
}

async fn tokio_blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(Error::internal)?
}

/// A user as the account procedures show it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UserOutput {
    pub id: String,
    pub organization_id: String,
    pub email: Option<String>,
    pub name: String,
    pub role: &'static str,
    pub created_at: String,
}

impl From<UserRecord> for UserOutput {
    fn from(u: UserRecord) -> Self {
        Self {
            id: u.id.into_string(),
            organization_id: u.organization_id.into_string(),
            email: u.email,
            name: u.name,
            role: u.role.as_str(),
            created_at: format_timestamp(u.created_at),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LoginInput {
    email: String,
    password: String,
}

#[derive(Debug, Serialize)]
pub(crate) struct LoginOutput {
    user: UserOutput,
}

/// A new session token and the SHA-256 hex of it that is stored, for loaders that store
/// sessions in bulk (`tidings demo`); `start_session` makes and stores one.
pub fn new_session_token() -> (String, String) {
    let token = random_secret();
    let hash = sha256_hex(&token);
    (token, hash)
}

async fn start_session(
    app: &App,
    user_id: &ExternalId,
    ttl: Duration,
) -> Result<(String, chrono::DateTime<Utc>), Error> {
    let token = random_secret();
    let expires_at = Utc::now() + chrono::Duration::from_std(ttl).map_err(Error::internal)?;
    app.db
        .create_session(user_id, &sha256_hex(&token), expires_at)
        .await?;
    Ok((token, expires_at))
}

pub(crate) async fn login(ctx: Ctx, input: LoginInput) -> Result<LoginOutput, Error> {
    if input.password.len() > 1024 {
        return Err(Error::field("password", "must be at most 1024 characters"));
    }
    let email = validate_email("email", &input.email)?;
    let limiter = &ctx.app.login_limiter;
    if let Err(wait) = limiter.check(&email, ctx.client_ip) {
        metrics::counter!(crate::telemetry::LIMITED, "limit" => "login").increment(1);
        return Err(Error::too_many_requests(
            format!(
                "Too many failed sign-ins; try again in {} s",
                wait.as_secs().max(1)
            ),
            wait,
        ));
    }
    let found = ctx.db().user_with_password(&email).await?;
    let (user, hash) = match found {
        Some((user, hash)) => (Some(user), hash),
        None => (None, None),
    };
    let ok = verify_password(input.password, hash).await?;
    let Some(user) = user.filter(|_| ok) else {
        limiter.failed(&email, ctx.client_ip);
        return Err(Error::new(
            tidings_domain::ErrorCode::Unauthorized,
            "Invalid email or password",
        ));
    };
    // A fresh token on every sign-in, so a token planted before sign-in is worth nothing.
    let ttl = ctx.app.config.session_ttl;
    let (token, _) = start_session(&ctx.app, &user.id, ttl).await?;
    ctx.session.set(SessionChange::Set {
        token,
        max_age: ttl,
    });
    Ok(LoginOutput { user: user.into() })
}

#[derive(Debug, Serialize)]
pub(crate) struct Success {
    pub success: bool,
}

pub(crate) async fn logout(ctx: Ctx, _: NoInput) -> Result<Success, Error> {
    let user = ctx.user()?;
    ctx.db().delete_session(user.session_id).await?;
    ctx.app.hub.sessions_changed([&user.user_id]).await;
    ctx.session.set(SessionChange::Clear);
    Ok(Success { success: true })
}

#[derive(Debug, Serialize)]
pub(crate) struct LogoutAllOutput {
    success: bool,
    /// How many sessions were revoked, this one included.
    count: u64,
}

/// `auth.logoutAll`: revokes every session of the signed-in user, on every device (after a lost
/// laptop or a leaked cookie), and clears this browser's cookie.
pub(crate) async fn logout_all(ctx: Ctx, _: NoInput) -> Result<LogoutAllOutput, Error> {
    let user = ctx.user()?;
    let count = ctx.db().delete_user_sessions(&user.user_id).await?;
    ctx.app.hub.sessions_changed([&user.user_id]).await;
    ctx.session.set(SessionChange::Clear);
    Ok(LogoutAllOutput {
        success: true,
        count,
    })
}

pub(crate) async fn me(ctx: Ctx, _: NoInput) -> Result<UserOutput, Error> {
    let caller = ctx.user()?;
    let user = ctx
        .db()
        .user(&caller.user_id)
        .await?
        .ok_or_else(Error::unauthorized)?;
    Ok(user.into())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct CreateSessionInput {
    user_id: String,
    ttl_seconds: Option<i64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CreateSessionOutput {
    token: String,
    user_id: String,
    cookie_name: &'static str,
    expires_at: String,
}

/// Sessions for host apps that sign users in themselves: at most a year.
const MAX_SESSION_SECONDS: i64 = 366 * 24 * 60 * 60;

pub(crate) async fn create_session(
    ctx: Ctx,
    input: CreateSessionInput,
) -> Result<CreateSessionOutput, Error> {
    let user_id = ExternalId::parse("userId", &input.user_id)?;
    let ttl = match input.ttl_seconds {
        None => ctx.app.config.session_ttl,
        Some(s) if (60..=MAX_SESSION_SECONDS).contains(&s) => Duration::from_secs(s as u64),
        Some(s) => {
            return Err(Error::field(
                "ttlSeconds",
                format!("must be between 60 and {MAX_SESSION_SECONDS}, got {s}"),
            ));
        }
    };
    if ctx.db().user(&user_id).await?.is_none() {
        return Err(Error::not_found(format!("User {user_id} not found")));
    }
    let (token, expires_at) = start_session(&ctx.app, &user_id, ttl).await?;
    Ok(CreateSessionOutput {
        token,
        user_id: user_id.into_string(),
        cookie_name: SESSION_COOKIE,
        expires_at: format_timestamp(expires_at),
    })
}

/// Creates a service key; returns the record and the secret, which is shown only now.
pub async fn create_service_key(db: &Db, name: &str) -> Result<(ServiceKeyRecord, String), Error> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(Error::field("name", "must be 1 to 100 characters"));
    }
    let secret = format!("tdk_{}", random_secret());
    let record = db.create_service_key(name, &sha256_hex(&secret)).await?;
    Ok((record, secret))
}

/// The organization users land in when nobody names one.
pub(crate) const DEFAULT_ORGANIZATION: &str = "default";

pub(crate) async fn ensure_default_organization(db: &Db) -> Result<ExternalId, Error> {
    let id = ExternalId::from_trusted(DEFAULT_ORGANIZATION.to_owned());
    if db.organization(&id).await?.is_none() {
        match db.create_organization(&id, "Default").await {
            Ok(_) => {}
            // Created meanwhile by another call: fine.
            Err(e) if e.code == tidings_domain::ErrorCode::Conflict => {}
            Err(e) => return Err(e),
        }
    }
    Ok(id)
}

/// On an empty database, creates an admin and returns its email and one-time password.
pub async fn bootstrap_admin(db: &Db, email: &str) -> Result<Option<(String, String)>, Error> {
    if db.count_users().await? > 0 {
        return Ok(None);
    }
    let email = validate_email("TIDINGS_ADMIN_EMAIL", email)?;
    let organization_id = ensure_default_organization(db).await?;
    let password = random_secret()[..20].to_owned();
    let password_hash = hash_password(password.clone()).await?;
    db.create_user(NewUser {
        id: ExternalId::generate(),
        organization_id,
        email: Some(email.clone()),
        name: "Administrator".to_owned(),
        password_hash: Some(password_hash),
        role: Role::Admin,
    })
    .await?;
    Ok(Some((email, password)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_and_hashes_are_hex() {
        let a = random_secret();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random_secret());
        let h = sha256_hex("abc");
        assert_eq!(
            h,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn dummy_hash_parses() {
        assert!(PasswordHash::new(DUMMY_HASH).is_ok());
    }

    #[tokio::test]
    async fn passwords_verify() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(
            verify_password("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!verify_password("wrong".into(), Some(hash)).await.unwrap());
        assert!(!verify_password("x".into(), None).await.unwrap());
    }
}
