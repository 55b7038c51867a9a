//! A user's channel preferences: the type defaults, overlaid with the user's own choices.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tidings_domain::{Channel, Error, TypeChannels};
use tidings_persistence::PreferenceOverride;

use crate::Ctx;
use crate::registry::NoInput;

/// `{email: {type: bool}, inApp: {…}, push: {…}}`: each channel lists the types that support it,
/// in the types' order. Required types are not preferences and are left out.
fn document(types: &[TypeChannels], overrides: &[PreferenceOverride]) -> Map<String, Value> {
    Channel::ALL
        .into_iter()
        .map(|channel| {
            let listed = types
                .iter()
                .filter(|t| !t.required && t.setting(channel).supported)
                .map(|t| {
                    let choice = overrides
                        .iter()
                        .find(|o| o.channel == channel && o.kind == t.key)
                        .map(|o| o.enabled);
                    (t.key.clone(), Value::Bool(t.enabled(channel, choice)))
                })
                .collect();
            (channel.as_str().to_owned(), Value::Object(listed))
        })
        .collect()
}

async fn types(ctx: &Ctx) -> Result<Vec<TypeChannels>, Error> {
    Ok(ctx
        .db()
        .notification_types()
        .await?
        .into_iter()
        .map(|t| t.channels)
        .collect())
}

pub(crate) async fn get(ctx: Ctx, _: NoInput) -> Result<Map<String, Value>, Error> {
    let user = ctx.user()?;
    let (types, overrides) =
        futures::try_join!(types(&ctx), ctx.db().preference_overrides(&user.user_id))?;
    Ok(document(&types, &overrides))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateInput {
    channel: String,
    #[serde(rename = "type")]
    kind: String,
    enabled: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct UpdateOutput {
    success: bool,
    preferences: Map<String, Value>,
}

pub(crate) async fn update(ctx: Ctx, input: UpdateInput) -> Result<UpdateOutput, Error> {
    let user = ctx.user()?;
    let channel = Channel::parse("channel", &input.channel)?;
    let Some(kind) = ctx.db().notification_type(&input.kind).await? else {
        return Err(Error::field(
            "type",
            format!("unknown notification type {:?}", input.kind),
        ));
    };
    let kind = kind.channels;
    if kind.required {
        return Err(Error::field(
            "type",
            format!("{} is required and cannot be turned off", kind.key),
        ));
    }
    if !kind.setting(channel).supported {
        return Err(Error::field(
            "type",
            format!("{} does not support the {channel} channel", kind.key),
        ));
    }
    let choice = PreferenceOverride {
        channel,
        kind: kind.key.clone(),
        enabled: input.enabled,
    };
    ctx.db()
        .set_preferences(&user.user_id, std::slice::from_ref(&choice))
        .await?;
    let changed = Map::from_iter([(kind.key, Value::Bool(input.enabled))]);
    Ok(UpdateOutput {
        success: true,
        preferences: Map::from_iter([(channel.as_str().to_owned(), Value::Object(changed))]),
    })
}

/// A type as a user's preference screen shows it: its label, the channels it can reach, and
/// whether it is required (shown, but not the user's to turn off).
#[derive(Debug, Serialize)]
pub(crate) struct PreferenceTypeOutput {
    key: String,
    description: String,
    channels: Vec<&'static str>,
    required: bool,
}

#[derive(Debug, Serialize)]
pub(crate) struct PreferenceTypesOutput {
    types: Vec<PreferenceTypeOutput>,
}

/// `notifications.types`: every type with the channels it supports, required ones included,
/// so a preference screen can label its rows and show required types locked. Templates stay
/// with admins (`notificationTypes.list`).
pub(crate) async fn list_types(ctx: Ctx, _: NoInput) -> Result<PreferenceTypesOutput, Error> {
    ctx.user()?;
    let types = ctx.db().notification_types().await?;
    Ok(PreferenceTypesOutput {
        types: types
            .into_iter()
            .map(|t| PreferenceTypeOutput {
                channels: Channel::ALL
                    .into_iter()
                    .filter(|c| t.channels.setting(*c).supported)
                    .map(Channel::as_str)
                    .collect(),
                required: t.channels.required,
                key: t.channels.key,
                description: t.description,
            })
            .collect(),
    })
}

#[derive(Debug, Serialize)]
pub(crate) struct DisableAllEmailOutput {
    success: bool,
    message: &'static str,
}

pub(crate) async fn disable_all_email(
    ctx: Ctx,
    _: NoInput,
) -> Result<DisableAllEmailOutput, Error> {
    let user = ctx.user()?;
    let choices: Vec<PreferenceOverride> = types(&ctx)
        .await?
        .into_iter()
        .filter(|t| !t.required && t.email.supported)
        .map(|t| PreferenceOverride {
            channel: Channel::Email,
            kind: t.key,
            enabled: false,
        })
        .collect();
    ctx.db().set_preferences(&user.user_id, &choices).await?;
    Ok(DisableAllEmailOutput {
        success: true,
        message: "All email notifications disabled",
    })
}

#[cfg(test)]
mod tests {
    use tidings_domain::ChannelSetting;

    use super::*;

    #[test]
    fn channels_list_supported_unrequired_types_in_order() {
        let on = ChannelSetting {
            supported: true,
            default: true,
        };
        let none = ChannelSetting {
            supported: false,
            default: false,
        };
        let types = vec![
            TypeChannels {
                key: "b".into(),
                email: on,
                in_app: on,
                push: none,
                required: false,
            },
            TypeChannels {
                key: "a".into(),
                email: on,
                in_app: on,
                push: on,
                required: false,
            },
            TypeChannels {
                key: "r".into(),
                email: on,
                in_app: on,
                push: on,
                required: true,
            },
        ];
        let overrides = [PreferenceOverride {
            channel: Channel::Email,
            kind: "a".into(),
            enabled: false,
        }];
        let doc = Value::Object(document(&types, &overrides));
        assert_eq!(
            serde_json::to_string(&doc).unwrap(),
            r#"{"email":{"b":true,"a":false},"inApp":{"b":true,"a":true},"push":{"a":true}}"#
        );
    }
}
