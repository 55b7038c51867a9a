use std::fmt;

use uuid::Uuid;

use crate::Error;

/// An id that belongs to the host product: users and organizations.
///
/// 1–128 characters from `[A-Za-z0-9_.:@-]`, so the host's own user ids fit unchanged.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExternalId(String);

impl ExternalId {
    pub const MAX_LEN: usize = 128;

    /// Parses `value` as the id in input field `field`.
    pub fn parse(field: &str, value: &str) -> Result<Self, Error> {
        if value.is_empty() {
            return Err(Error::field(field, "must not be empty"));
        }
        if value.len() > Self::MAX_LEN {
            return Err(Error::field(
                field,
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        if let Some(bad) = value
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '@' | '-')))
        {
            return Err(Error::field(
                field,
                format!("may only contain A-Z a-z 0-9 _ . : @ -, found {bad:?}"),
            ));
        }
        Ok(Self(value.to_owned()))
    }

    /// A new id for a row the caller did not name.
    pub fn generate() -> Self {
        Self(Uuid::now_v7().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }

    /// Wraps an id read back from storage, where it was validated on the way in.
    pub fn from_trusted(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a notification: a UUID v7, so ids sort by creation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NotificationId(pub Uuid);

impl NotificationId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn parse(field: &str, value: &str) -> Result<Self, Error> {
        Uuid::try_parse(value)
            .map(Self)
            .map_err(|_| Error::field(field, format!("must be a UUID, got {value:?}")))
    }
}

impl fmt::Display for NotificationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Checks an email address just enough to catch typos: one `@`, something on each side, no
/// spaces, at most 320 characters. Returns the address lower-cased.
pub fn validate_email(field: &str, value: &str) -> Result<String, Error> {
    let value = value.trim();
    let valid = value.len() <= 320
        && !value.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(value.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !domain.starts_with('.') && !domain.ends_with('.'));
    if valid {
        Ok(value.to_lowercase())
    } else {
        Err(Error::field(
            field,
            format!("must be an email address, got {value:?}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_ids() {
        for ok in [
            "u1",
            "user_42",
            "auth0|x".replace('|', ":").as_str(),
            "a@b.c",
            &"x".repeat(128),
        ] {
            assert!(ExternalId::parse("id", ok).is_ok(), "{ok}");
        }
        for (bad, want) in [
            ("", "id: must not be empty"),
            (
                "a b",
                "id: may only contain A-Z a-z 0-9 _ . : @ -, found ' '",
            ),
            ("é", "id: may only contain A-Z a-z 0-9 _ . : @ -, found 'é'"),
        ] {
            assert_eq!(ExternalId::parse("id", bad).unwrap_err().message, want);
        }
        assert!(ExternalId::parse("id", &"x".repeat(129)).is_err());
    }

    #[test]
    fn notification_ids() {
        assert!(NotificationId::parse("id", "00000000-0000-4000-8000-000000000004").is_ok());
        assert_eq!(
            NotificationId::parse("id", "nope").unwrap_err().message,
            "id: must be a UUID, got \"nope\""
        );
        let a = NotificationId::generate();
        let b = NotificationId::generate();
        assert!(a < b, "v7 ids sort by creation");
    }

    #[test]
    fn emails() {
        assert_eq!(
            validate_email("email", " Ann@Example.com ").unwrap(),
            "ann@example.com"
        );
        for bad in ["", "ann", "@x", "ann@", "a b@c", "a@b@c", "a@.c"] {
            assert!(validate_email("email", bad).is_err(), "{bad}");
        }
    }
}
