//! Web Push (RFC 8030) with VAPID (RFC 8292) and aes128gcm payloads (RFC 8291).

use tidings_domain::Error;
use tidings_persistence::{ClaimedDelivery, Db};

use super::{DeliveryConfig, SendError};

/// The instance's VAPID key pair, as base64url (the public key uncompressed, 65 bytes).
#[derive(Clone, Debug)]
pub(crate) struct VapidKeys {
    pub(crate) public: String,
    pub(crate) private: String,
}

pub(crate) async fn vapid_keys(_db: &Db) -> Result<VapidKeys, Error> {
    Err(Error::bad_request("push is not available yet"))
}

pub(crate) struct Pusher;

impl Pusher {
    pub(crate) async fn new(_db: &Db, _config: &DeliveryConfig) -> Result<Self, Error> {
        Ok(Self)
    }

    pub(crate) async fn send(&self, _d: &ClaimedDelivery) -> Result<(), SendError> {
        Err(SendError::Permanent("push is not available yet".to_owned()))
    }
}
