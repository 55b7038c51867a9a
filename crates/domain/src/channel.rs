use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

/// A way to reach a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Channel {
    #[serde(rename = "email")]
    Email,
    #[serde(rename = "inApp")]
    InApp,
    #[serde(rename = "push")]
    Push,
}

impl Channel {
    /// In the order the preferences document lists them.
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::InApp, Channel::Push];

    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::InApp => "inApp",
            Channel::Push => "push",
        }
    }

    pub fn parse(field: &str, value: &str) -> Result<Self, Error> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == value)
            .ok_or_else(|| {
                Error::field(
                    field,
                    format!("must be one of \"email\", \"inApp\", \"push\", got {value:?}"),
                )
            })
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a notification sits in its recipient's inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationStatus {
    Inbox,
    Archived,
}

impl NotificationStatus {
    pub const fn as_str(self) -> &'static str {
        match self {
            NotificationStatus::Inbox => "inbox",
            NotificationStatus::Archived => "archived",
        }
    }

    pub fn parse(field: &str, value: &str) -> Result<Self, Error> {
        match value {
            "inbox" => Ok(Self::Inbox),
            "archived" => Ok(Self::Archived),
            other => Err(Error::field(
                field,
                format!("must be \"inbox\" or \"archived\", got {other:?}"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_round_trip() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse("channel", c.as_str()).unwrap(), c);
        }
        assert_eq!(
            Channel::parse("channel", "sms").unwrap_err().message,
            "channel: must be one of \"email\", \"inApp\", \"push\", got \"sms\""
        );
    }

    #[test]
    fn statuses() {
        assert_eq!(
            NotificationStatus::parse("status", "archived").unwrap(),
            NotificationStatus::Archived
        );
        assert!(NotificationStatus::parse("status", "Inbox").is_err());
    }
}
