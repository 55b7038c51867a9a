use crate::{Channel, Error};

/// Whether a type can go out on a channel, and whether it does when the user has not chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChannelSetting {
    pub supported: bool,
    pub default: bool,
}

/// A notification type's channel settings, as the preference rules need them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypeChannels {
    pub key: String,
    pub email: ChannelSetting,
    pub in_app: ChannelSetting,
    pub push: ChannelSetting,
    /// A required type cannot be turned off, so it is no preference of the user's.
    pub required: bool,
}

impl TypeChannels {
    pub fn setting(&self, channel: Channel) -> ChannelSetting {
        match channel {
            Channel::Email => self.email,
            Channel::InApp => self.in_app,
            Channel::Push => self.push,
        }
    }

    /// Whether a user who chose `choice` (or nothing) gets this type on `channel`.
    pub fn enabled(&self, channel: Channel, choice: Option<bool>) -> bool {
        let setting = self.setting(channel);
        setting.supported && (self.required || choice.unwrap_or(setting.default))
    }
}

/// The type a notification gets when its creator names none. It is required and inbox-only, so
/// it never appears among a user's preferences.
pub const GENERAL_TYPE_KEY: &str = "general";

/// A type key: 1–100 characters from `[A-Za-z0-9_.-]`.
pub fn validate_type_key(field: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() || value.len() > 100 {
        return Err(Error::field(field, "must be 1 to 100 characters"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    {
        return Err(Error::field(
            field,
            format!("may only contain A-Z a-z 0-9 _ . -, got {value:?}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: ChannelSetting = ChannelSetting {
        supported: true,
        default: true,
    };
    const OFF: ChannelSetting = ChannelSetting {
        supported: true,
        default: false,
    };
    const NONE: ChannelSetting = ChannelSetting {
        supported: false,
        default: false,
    };

    #[test]
    fn preference_rules() {
        let t = TypeChannels {
            key: "t".into(),
            email: ON,
            in_app: OFF,
            push: NONE,
            required: false,
        };
        let cases = [
            (Channel::Email, None, true),
            (Channel::Email, Some(false), false),
            (Channel::InApp, None, false),
            (Channel::InApp, Some(true), true),
            (Channel::Push, Some(true), false),
        ];
        for (channel, choice, want) in cases {
            assert_eq!(t.enabled(channel, choice), want, "{channel} {choice:?}");
        }
        let required = TypeChannels {
            required: true,
            ..t
        };
        assert!(required.enabled(Channel::Email, Some(false)));
        assert!(!required.enabled(Channel::Push, None));
    }

    #[test]
    fn type_keys() {
        assert!(validate_type_key("type", "WELCOME_NOTIFICATION").is_ok());
        assert!(validate_type_key("type", "").is_err());
        assert!(validate_type_key("type", "a b").is_err());
    }
}
