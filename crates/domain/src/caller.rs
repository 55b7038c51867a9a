use crate::ExternalId;

/// What a user may do beyond their own inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    User,
    Admin,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }

    /// Reads a stored role; anything unknown is the least privileged.
    pub fn from_stored(value: &str) -> Self {
        if value == "admin" {
            Role::Admin
        } else {
            Role::User
        }
    }
}

/// A signed-in person, from a session cookie.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCaller {
    pub user_id: ExternalId,
    pub organization_id: ExternalId,
    pub role: Role,
    pub session_id: uuid::Uuid,
}

/// An internal service, from a bearer key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceCaller {
    pub key_id: uuid::Uuid,
    pub name: String,
}

/// Who is calling a procedure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    User(UserCaller),
    Service(ServiceCaller),
}

impl Caller {
    /// A short id for logs: the user id or the key's name.
    pub fn log_id(&self) -> String {
        match self {
            Caller::User(u) => format!("user:{}", u.user_id),
            Caller::Service(s) => format!("key:{}", s.name),
        }
    }
}
