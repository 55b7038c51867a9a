//! In-memory caches for the two things every inbox read needs: who the session belongs to,
//! and the user's counts. The hub's change signals invalidate them (in this process at once,
//! in others as soon as the signal arrives), so reads skip the database without serving stale
//! answers after a change.
//!
//! A value read from the database is kept only if no invalidation happened while it was being
//! read (an epoch check), so a slow read can never put back what a write just invalidated.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tidings_domain::ExternalId;
use tidings_persistence::{Counts, SessionLookup};

use crate::Output;

/// A cached session is looked up again after this long, bounding how long a change nobody
/// signalled (a row edited by hand) can go unseen.
const SESSION_TTL: Duration = Duration::from_secs(60);
/// Entries kept per cache; past this, the cache starts over.
const MAX_ENTRIES: usize = 200_000;
/// First pages kept (each a few KiB); past this, the page cache starts over.
const MAX_PAGES: usize = 20_000;

/// Which first page of a user's inbox: status, unread only, limit.
pub(crate) type PageKey = (&'static str, bool, i64);

/// A user's organization and cached first pages.
type UserPages = (ExternalId, Vec<(PageKey, Output)>);

#[derive(Default)]
pub(crate) struct Caches {
    sessions: Mutex<HashMap<String, (SessionLookup, Instant)>>,
    counts: Mutex<HashMap<String, (ExternalId, Counts)>>,
    /// First pages of `notifications.list` (no cursor) by user; the same signals as the
    /// counts invalidate them.
    pages: Mutex<HashMap<String, UserPages>>,
    pages_len: std::sync::atomic::AtomicUsize,
    session_epoch: AtomicU64,
    counts_epoch: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Caches {
    pub(crate) fn session(&self, token_hash: &str) -> Option<SessionLookup> {
        let sessions = lock(&self.sessions);
        sessions
            .get(token_hash)
            .filter(|(_, at)| at.elapsed() < SESSION_TTL)
            .map(|(lookup, _)| lookup.clone())
    }

    pub(crate) fn session_epoch(&self) -> u64 {
        self.session_epoch.load(Ordering::Acquire)
    }

    /// Keeps a session read from the database, unless sessions were invalidated since `epoch`.
    pub(crate) fn keep_session(&self, token_hash: &str, lookup: SessionLookup, epoch: u64) {
        let mut sessions = lock(&self.sessions);
        if self.session_epoch() != epoch {
            return;
        }
        if sessions.len() >= MAX_ENTRIES {
            sessions.clear();
        }
        sessions.insert(token_hash.to_owned(), (lookup, Instant::now()));
    }

    /// Forgets the sessions of `users` (`"*"`: of everyone).
    pub(crate) fn forget_sessions_of(&self, users: &[String]) {
        let mut sessions = lock(&self.sessions);
        self.session_epoch.fetch_add(1, Ordering::AcqRel);
        if users.iter().any(|u| u == "*") {
            sessions.clear();
            return;
        }
        sessions
            .retain(|_, (lookup, _)| !users.iter().any(|u| u == lookup.caller.user_id.as_str()));
    }

    pub(crate) fn forget_all_sessions(&self) {
        let mut sessions = lock(&self.sessions);
        self.session_epoch.fetch_add(1, Ordering::AcqRel);
        sessions.clear();
    }

    pub(crate) fn counts(&self, user: &ExternalId) -> Option<Counts> {
        lock(&self.counts).get(user.as_str()).map(|(_, c)| *c)
    }

    pub(crate) fn counts_epoch(&self) -> u64 {
        self.counts_epoch.load(Ordering::Acquire)
    }

    /// Keeps counts read from the database, unless counts were invalidated since `epoch`.
    pub(crate) fn keep_counts(
        &self,
        user: &ExternalId,
        organization: &ExternalId,
        counts: Counts,
        epoch: u64,
    ) {
        let mut all = lock(&self.counts);
        if self.counts_epoch() != epoch {
            return;
        }
        if all.len() >= MAX_ENTRIES {
            all.clear();
        }
        all.insert(user.as_str().to_owned(), (organization.clone(), counts));
    }

    /// A cached first page of a user's inbox.
    pub(crate) fn page(&self, user: &ExternalId, key: PageKey) -> Option<Output> {
        let pages = lock(&self.pages);
        let (_, list) = pages.get(user.as_str())?;
        list.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
    }

    /// Keeps a first page read from the database, unless inboxes were invalidated since
    /// `epoch` (the counts epoch: the same signals invalidate both).
    pub(crate) fn keep_page(
        &self,
        user: &ExternalId,
        organization: &ExternalId,
        key: PageKey,
        page: Output,
        epoch: u64,
    ) {
        let mut pages = lock(&self.pages);
        if self.counts_epoch() != epoch {
            return;
        }
        if self.pages_len.load(Ordering::Relaxed) >= MAX_PAGES {
            pages.clear();
            self.pages_len.store(0, Ordering::Relaxed);
        }
        let (_, list) = pages
            .entry(user.as_str().to_owned())
            .or_insert_with(|| (organization.clone(), Vec::new()));
        if !list.iter().any(|(k, _)| *k == key) {
            list.push((key, page));
            self.pages_len.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forgets the counts and first pages of `users`, of an organization, or of everyone.
    pub(crate) fn forget_counts(
        &self,
        users: &[String],
        organization: Option<&str>,
        everyone: bool,
    ) {
        let mut all = lock(&self.counts);
        let mut pages = lock(&self.pages);
        self.counts_epoch.fetch_add(1, Ordering::AcqRel);
        if everyone {
            all.clear();
            pages.clear();
            self.pages_len.store(0, Ordering::Relaxed);
            return;
        }
        for user in users {
            all.remove(user);
            if let Some((_, list)) = pages.remove(user) {
                self.pages_len.fetch_sub(list.len(), Ordering::Relaxed);
            }
        }
        if let Some(org) = organization {
            all.retain(|_, (o, _)| o.as_str() != org);
            let mut dropped = 0;
            pages.retain(|_, (o, list)| {
                let keep = o.as_str() != org;
                if !keep {
                    dropped += list.len();
                }
                keep
            });
            self.pages_len.fetch_sub(dropped, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;
    use tidings_domain::{Role, UserCaller};

    use super::*;

    fn lookup(user: &str) -> SessionLookup {
        SessionLookup {
            caller: UserCaller {
                user_id: ExternalId::parse("id", user).unwrap(),
                organization_id: ExternalId::parse("id", "org").unwrap(),
                role: Role::User,
                session_id: uuid::Uuid::now_v7(),
            },
            expires_at: Utc::now(),
            renewed_at: Utc::now(),
        }
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_kept() {
        let caches = Caches::default();
        let epoch = caches.session_epoch();
        caches.forget_sessions_of(&["ann".to_owned()]);
        caches.keep_session("h", lookup("ann"), epoch);
        assert!(caches.session("h").is_none());
        caches.keep_session("h", lookup("ann"), caches.session_epoch());
        assert!(caches.session("h").is_some());
        caches.forget_sessions_of(&["bob".to_owned()]);
        assert!(
            caches.session("h").is_some(),
            "only the named users' sessions go"
        );
        caches.forget_sessions_of(&["ann".to_owned()]);
        assert!(caches.session("h").is_none());
    }

    #[test]
    fn counts_go_by_user_organization_or_all() {
        let caches = Caches::default();
        let c = Counts {
            unread: 1,
            unseen: 1,
            total: 1,
        };
        let org = ExternalId::parse("id", "acme").unwrap();
        for user in ["ann", "bob"] {
            caches.keep_counts(
                &ExternalId::parse("id", user).unwrap(),
                &org,
                c,
                caches.counts_epoch(),
            );
        }
        let ann = ExternalId::parse("id", "ann").unwrap();
        let bob = ExternalId::parse("id", "bob").unwrap();
        caches.forget_counts(&["ann".to_owned()], None, false);
        assert!(caches.counts(&ann).is_none() && caches.counts(&bob).is_some());
        caches.forget_counts(&[], Some("acme"), false);
        assert!(caches.counts(&bob).is_none());
    }
}
