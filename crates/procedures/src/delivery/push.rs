//! Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291), built with the
//! web-push crate and sent with reqwest.
//!
//! The VAPID key pair is generated on the first start and kept in the `settings` table, so
//! every process of an instance signs with the same key and browsers' subscriptions survive
//! restarts.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use tidings_domain::Error;
use tidings_persistence::{ClaimedDelivery, Db};
use web_push::{
    ContentEncoding, PartialVapidSignatureBuilder, SubscriptionInfo, VapidSignatureBuilder,
    WebPushMessageBuilder, request_builder::build_request,
};

use super::{DeliveryConfig, SendError};

const VAPID_SETTING: &str = "vapid_private_key";
/// How long a push service keeps a message for an offline browser.
const TTL_SECONDS: u32 = 24 * 60 * 60;

/// The instance's VAPID key pair, as base64url: the private scalar (32 bytes) and the
/// uncompressed public point (65 bytes) browsers take as `applicationServerKey`.
#[derive(Clone)]
pub(crate) struct VapidKeys {
    pub(crate) public: String,
    signer: PartialVapidSignatureBuilder,
}

/// Bytes of a P-256 private scalar.
const SCALAR_LEN: usize = 32;

/// A private scalar as its 32 big-endian bytes: the key generator drops leading zero bytes
/// (one key in 256), which the signer would not take.
fn scalar(bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![0u8; SCALAR_LEN.saturating_sub(bytes.len())];
    out.extend_from_slice(bytes);
    out
}

/// The stored key pair, generated and stored first when there is none.
pub(crate) async fn vapid_keys(db: &Db) -> Result<VapidKeys, Error> {
    let private = match db.setting(VAPID_SETTING).await? {
        Some(stored) => stored,
        None => {
            let (pair, _) = ece::generate_keypair_and_auth_secret().map_err(Error::internal)?;
            let components = pair.raw_components().map_err(Error::internal)?;
            let candidate = URL_SAFE_NO_PAD.encode(scalar(components.private_key()));
            db.setting_or_insert(VAPID_SETTING, &candidate).await?
        }
    };
    // A key stored without its leading zero bytes is repaired rather than refused.
    let private = match URL_SAFE_NO_PAD.decode(&private) {
        Ok(bytes) if bytes.len() < SCALAR_LEN => URL_SAFE_NO_PAD.encode(scalar(&bytes)),
        _ => private,
    };
    let signer = VapidSignatureBuilder::from_base64_no_sub(&private)
        .map_err(|e| Error::internal_reason(format!("VAPID key: {e}")))?;
    Ok(VapidKeys {
        public: URL_SAFE_NO_PAD.encode(signer.get_public_key()),
        signer,
    })
}

pub(crate) struct Pusher {
    keys: VapidKeys,
    subject: String,
    http: reqwest::Client,
}

/// `scheme://host[:port]` of an endpoint: the VAPID audience (web-push would drop the port).
fn origin(endpoint: &str) -> Option<String> {
    let (scheme, rest) = endpoint.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    Some(format!("{scheme}://{authority}"))
}

impl Pusher {
    pub(crate) async fn new(db: &Db, config: &DeliveryConfig) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(Error::internal)?;
        Ok(Self {
            keys: vapid_keys(db).await?,
            subject: config.vapid_subject.clone(),
            http,
        })
    }

    pub(crate) async fn send(&self, d: &ClaimedDelivery) -> Result<(), SendError> {
        let Some((p256dh, auth)) = &d.push_keys else {
            return Err(SendError::Permanent(
                "the push subscription was removed".to_owned(),
            ));
        };
        let info = SubscriptionInfo::new(d.target.as_str(), p256dh.as_str(), auth.as_str());
        let mut signature = self.keys.signer.clone().add_sub_info(&info);
        signature.add_claim("sub", self.subject.as_str());
        if let Some(audience) = origin(&d.target) {
            signature.add_claim("aud", audience);
        }
        let signature = signature
            .build()
            .map_err(|e| SendError::Permanent(format!("VAPID signature: {e}")))?;
        let payload = serde_json::json!({
            "id": d.notification_id.map(|id| id.to_string()),
            "type": d.kind,
            "title": d.title,
            "body": d.message,
            "data": d.data,
        })
        .to_string();
        let mut message = WebPushMessageBuilder::new(&info);
        message.set_payload(ContentEncoding::Aes128Gcm, payload.as_bytes());
        message.set_vapid_signature(signature);
        message.set_ttl(TTL_SECONDS);
        let message = message
            .build()
            .map_err(|e| SendError::Permanent(format!("push message: {e}")))?;
        let request = build_request::<Vec<u8>>(message);
        let mut outgoing = self.http.post(request.uri().to_string());
        for (name, value) in request.headers() {
            outgoing = outgoing.header(name.as_str(), value.as_bytes());
        }
        let response = outgoing
            .body(request.into_body())
            .send()
            .await
            .map_err(|e| SendError::Transient(format!("push service: {e}")))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let error = format!(
            "push service answered {status}: {}",
            body.chars().take(200).collect::<String>()
        );
        match status {
            404 | 410 => Err(SendError::Gone(error)),
            429 | 500..=599 => Err(SendError::Transient(error)),
            _ => Err(SendError::Permanent(error)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_without_its_leading_zero_bytes_signs_once_padded() {
        let short = vec![7u8; SCALAR_LEN - 1];
        let padded = scalar(&short);
        assert_eq!(padded.len(), SCALAR_LEN);
        assert_eq!(padded[0], 0);
        assert_eq!(&padded[1..], &short[..]);
        let signer = VapidSignatureBuilder::from_base64_no_sub(&URL_SAFE_NO_PAD.encode(&padded));
        assert!(signer.is_ok());
        assert_eq!(scalar(&padded), padded, "a whole scalar stays as it is");
    }

    #[test]
    fn the_audience_keeps_the_port() {
        assert_eq!(
            origin("http://127.0.0.1:8080/push/abc").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(
            origin("https://fcm.googleapis.com/fcm/send/x").as_deref(),
            Some("https://fcm.googleapis.com")
        );
    }
}
