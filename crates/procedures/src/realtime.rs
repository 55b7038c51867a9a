//! Live inbox updates: the hub that wakes subscriptions when a user's inbox changes, and the
//! `notifications.onNew` / `notifications.onCounts` subscriptions.
//!
//! Signals carry only *who* changed, never the change itself: a woken subscription reads what
//! is new from the database, from the last item it sent. So a signal can be coalesced, a slow
//! subscriber never makes the hub buffer or block, a resumed subscription replays exactly what
//! it missed, and the same code serves one process (SQLite, signals in memory) or many
//! (PostgreSQL, signals by `NOTIFY`).
//!
//! A fan-out wakes thousands of subscriptions at once. Its signal also names the range of the
//! new items' ids, so the hub reads the items and counts of every woken subscriber in a few
//! statements and hands each its share, instead of every subscription querying for itself.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::stream::{self, BoxStream, StreamExt};
use serde::{Deserialize, Serialize};
use tidings_domain::{Error, ErrorCode, ExternalId, NotificationId};
use tidings_persistence::{Counts, Db, Heard, IdRange, NotificationRecord};
use tokio::sync::Notify;

use crate::cache::Caches;

use crate::Ctx;
use crate::inbox::InboxItem;

/// One event of a subscription.
#[derive(Clone, Debug, PartialEq)]
pub enum SubEvent {
    /// Data, serialized once, with the id a client resumes from when it is tracked.
    Data {
        id: Option<String>,
        data: crate::Output,
    },
}

/// Caps on open subscriptions.
#[derive(Clone, Copy, Debug)]
pub struct SubscriptionLimits {
    pub per_user: usize,
    pub total: usize,
}

impl Default for SubscriptionLimits {
    fn default() -> Self {
        Self {
            per_user: 20,
            total: 50_000,
        }
    }
}

/// Who changed, as a signal between processes says it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Signal {
    /// These users' inboxes changed.
    #[serde(default, rename = "u", skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Every user of this organization may have new items.
    #[serde(default, rename = "o", skip_serializing_if = "Option::is_none")]
    pub organization: Option<String>,
    /// Every user may have new items.
    #[serde(default, rename = "a", skip_serializing_if = "std::ops::Not::not")]
    pub everyone: bool,
    /// These users' sessions or roles changed (sign-out, deletion, a new role).
    #[serde(default, rename = "s", skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
    /// The new items of an organization's or everyone's change (a fan-out) have ids in this
    /// range, first and last.
    #[serde(default, rename = "n", skip_serializing_if = "Option::is_none")]
    pub ids: Option<[uuid::Uuid; 2]>,
}

impl Signal {
    /// The range of a fan-out's new items, when that is all the signal says changed.
    fn fan_out(&self) -> Option<IdRange> {
        let [first, last] = self.ids?;
        let many = self.everyone || self.organization.is_some();
        (many && self.users.is_empty()).then_some(IdRange {
            first: NotificationId(first),
            last: NotificationId(last),
        })
    }
}

/// What woke a subscription, left for it by the hub.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    /// New items of fan-outs, read for every woken subscriber at once.
    items: Vec<NotificationRecord>,
    /// A change the items do not cover: the subscription reads for itself.
    read: bool,
}

/// Subscribers a fan-out's items and counts are read for per step (two statements).
const FAN_OUT_SLICE: usize = 250;

/// Signals listing more users than this are sent as "everyone" (a NOTIFY payload is small).
const MAX_USERS_PER_SIGNAL: usize = 100;

struct Subscriber {
    id: u64,
    organization: ExternalId,
    wake: Arc<Notify>,
    /// `None` for a subscription that wants counts only.
    mailbox: Option<Arc<Mutex<Mailbox>>>,
}

impl Subscriber {
    /// Wakes the subscription to read for itself.
    fn wake_to_read(&self) {
        wake_to_read(self.mailbox.as_deref(), &self.wake);
    }
}

/// Marks the mailbox (if any) as needing a read of its own, and wakes its subscription.
fn wake_to_read(mailbox: Option<&Mutex<Mailbox>>, wake: &Notify) {
    if let Some(mailbox) = mailbox {
        lock(mailbox).read = true;
    }
    wake.notify_one();
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Default)]
struct Registry {
    by_user: HashMap<String, Vec<Subscriber>>,
}

struct HubInner {
    db: Db,
    caches: Caches,
    /// Turns true when the process shuts down; open streams end.
    closing: tokio::sync::watch::Sender<bool>,
    limits: SubscriptionLimits,
    subscribers: Mutex<Registry>,
    open: AtomicUsize,
    next_id: AtomicU64,
}

/// Wakes the subscriptions of this process when inboxes change, here or in another process.
#[derive(Clone)]
pub struct Hub(Arc<HubInner>);

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("open", &self.open()).finish()
    }
}

/// An open subscription's place in the hub; leaving it (drop) frees the place.
pub(crate) struct Subscription {
    hub: Arc<HubInner>,
    user: String,
    id: u64,
    pub(crate) wake: Arc<Notify>,
    mailbox: Option<Arc<Mutex<Mailbox>>>,
}

impl Subscription {
    /// What the hub left since the last call: fan-out items, and whether to read for itself.
    fn take_mail(&self) -> (Vec<NotificationRecord>, bool) {
        match &self.mailbox {
            Some(mailbox) => {
                let mut mailbox = lock(mailbox);
                (
                    std::mem::take(&mut mailbox.items),
                    std::mem::take(&mut mailbox.read),
                )
            }
            None => (Vec::new(), true),
        }
    }

    /// Comes back at once to read more.
    fn read_again(&self) {
        wake_to_read(self.mailbox.as_deref(), &self.wake);
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut registry = lock(&self.hub.subscribers);
        if let Some(list) = registry.by_user.get_mut(&self.user) {
            list.retain(|s| s.id != self.id);
            if list.is_empty() {
                registry.by_user.remove(&self.user);
            }
        }
        self.hub.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Hub {
    pub fn new(db: Db, limits: SubscriptionLimits) -> Self {
        Self(Arc::new(HubInner {
            db,
            caches: Caches::default(),
            closing: tokio::sync::watch::channel(false).0,
            limits,
            subscribers: Mutex::default(),
            open: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
        }))
    }

    /// Starts hearing other processes' signals (PostgreSQL); without it, on PostgreSQL, no
    /// subscription would ever wake.
    pub async fn start(&self) -> Result<(), Error> {
        let Some(mut heard) = self.0.db.listen().await? else {
            return Ok(());
        };
        let hub = self.clone();
        tokio::spawn(async move {
            while let Some(h) = heard.recv().await {
                match h {
                    Heard::Signal(payload) => match serde_json::from_str::<Signal>(&payload) {
                        Ok(signal) => hub.dispatch(&signal),
                        Err(e) => tracing::warn!(error = %e, "unreadable signal"),
                    },
                    // Signals may have been missed while the connection was down.
                    Heard::Reconnected => {
                        hub.0.caches.forget_all_sessions();
                        hub.dispatch(&Signal {
                            everyone: true,
                            ..Signal::default()
                        });
                    }
                }
            }
        });
        Ok(())
    }

    /// Ends every open subscription stream of this process (on shutdown).
    pub fn close(&self) {
        self.0.closing.send_replace(true);
    }

    /// Resolves once [`Hub::close`] was called.
    pub async fn closed(&self) {
        let mut closing = self.0.closing.subscribe();
        let _ = closing.wait_for(|closing| *closing).await;
    }

    /// How many subscriptions are open in this process.
    pub fn open(&self) -> usize {
        self.0.open.load(Ordering::Relaxed)
    }

    /// Tells every process that these users' inboxes changed. Errors are logged, not returned:
    /// the change itself is already committed.
    pub async fn users_changed(&self, users: impl IntoIterator<Item = &ExternalId>) {
        let users: Vec<String> = users.into_iter().map(|u| u.as_str().to_owned()).collect();
        let signal = if users.len() > MAX_USERS_PER_SIGNAL {
            Signal {
                everyone: true,
                ..Signal::default()
            }
        } else {
            Signal {
                users,
                ..Signal::default()
            }
        };
        self.publish(signal).await;
    }

    /// Tells every process that every user of `organization` (or every user) may have news,
    /// with ids in `ids` when that is known (a fan-out's).
    pub async fn many_changed(&self, organization: Option<&ExternalId>, ids: Option<IdRange>) {
        let ids = ids.map(|r| [r.first.0, r.last.0]);
        let signal = match organization {
            Some(org) => Signal {
                organization: Some(org.as_str().to_owned()),
                ids,
                ..Signal::default()
            },
            None => Signal {
                everyone: true,
                ids,
                ..Signal::default()
            },
        };
        self.publish(signal).await;
    }

    /// Tells every process that these users' sessions or roles changed.
    pub async fn sessions_changed(&self, users: impl IntoIterator<Item = &ExternalId>) {
        let users: Vec<String> = users.into_iter().map(|u| u.as_str().to_owned()).collect();
        if users.is_empty() {
            return;
        }
        // "*" stands for every user when the list would not fit a signal.
        let sessions = if users.len() > MAX_USERS_PER_SIGNAL {
            vec!["*".to_owned()]
        } else {
            users
        };
        self.publish(Signal {
            sessions,
            ..Signal::default()
        })
        .await;
    }

    /// The cache entry of a session, if this process has one.
    pub(crate) fn cached_session(
        &self,
        token_hash: &str,
    ) -> Option<tidings_persistence::SessionLookup> {
        self.0.caches.session(token_hash)
    }

    /// Looks a session up through the cache.
    pub(crate) async fn session(
        &self,
        token_hash: &str,
    ) -> Result<Option<tidings_persistence::SessionLookup>, Error> {
        if let Some(found) = self.cached_session(token_hash) {
            return Ok(Some(found));
        }
        let epoch = self.0.caches.session_epoch();
        let found = self.0.db.session_by_token_hash(token_hash).await?;
        if let Some(lookup) = &found {
            self.0
                .caches
                .keep_session(token_hash, lookup.clone(), epoch);
        }
        Ok(found)
    }

    /// A cached first page of a user's inbox.
    pub(crate) fn cached_page(
        &self,
        user: &ExternalId,
        key: crate::cache::PageKey,
    ) -> Option<crate::Output> {
        self.0.caches.page(user, key)
    }

    /// The epoch to pass to [`Hub::keep_page`], taken before reading the page.
    pub(crate) fn page_epoch(&self) -> u64 {
        self.0.caches.counts_epoch()
    }

    /// Keeps a first page read since `epoch`.
    pub(crate) fn keep_page(
        &self,
        user: &ExternalId,
        organization: &ExternalId,
        key: crate::cache::PageKey,
        page: crate::Output,
        epoch: u64,
    ) {
        self.0
            .caches
            .keep_page(user, organization, key, page, epoch);
    }

    /// A user's counts, through the cache.
    pub(crate) async fn counts(
        &self,
        user: &ExternalId,
        organization: &ExternalId,
    ) -> Result<Counts, Error> {
        if let Some(counts) = self.0.caches.counts(user) {
            return Ok(counts);
        }
        let epoch = self.0.caches.counts_epoch();
        let counts = self.0.db.counts(user).await?;
        self.0.caches.keep_counts(user, organization, counts, epoch);
        Ok(counts)
    }

    fn invalidate(&self, signal: &Signal) {
        let caches = &self.0.caches;
        caches.forget_counts(
            &signal.users,
            signal.organization.as_deref(),
            signal.everyone,
        );
        if !signal.sessions.is_empty() {
            caches.forget_sessions_of(&signal.sessions);
        }
    }

    async fn publish(&self, signal: Signal) {
        // This process's caches forget at once, so its own next read sees the change.
        self.invalidate(&signal);
        if self.0.db.backend() == tidings_persistence::Backend::Postgres {
            // Every process, this one included, hears it through the listener.
            let payload = serde_json::to_string(&signal).unwrap_or_default();
            if let Err(e) = self.0.db.signal(&payload).await {
                tracing::warn!(error = %e, "could not signal a change");
            }
        } else {
            self.dispatch(&signal);
        }
    }

    fn dispatch(&self, signal: &Signal) {
        self.invalidate(signal);
        let registry = lock(&self.0.subscribers);
        if let Some(ids) = signal.fan_out() {
            let woken: Vec<(String, ExternalId)> = registry
                .by_user
                .iter()
                .filter_map(|(user, list)| {
                    let first = list.first()?;
                    let org = signal.organization.as_deref();
                    (org.is_none_or(|o| first.organization.as_str() == o))
                        .then(|| (user.clone(), first.organization.clone()))
                })
                .collect();
            if !woken.is_empty() {
                tokio::spawn(self.clone().deliver_fan_out(woken, ids));
            }
            return;
        }
        let wake_all = |list: &Vec<Subscriber>| list.iter().for_each(Subscriber::wake_to_read);
        if signal.everyone {
            registry.by_user.values().for_each(wake_all);
            return;
        }
        if let Some(org) = &signal.organization {
            for list in registry.by_user.values() {
                list.iter()
                    .filter(|s| s.organization.as_str() == org)
                    .for_each(Subscriber::wake_to_read);
            }
        }
        for user in &signal.users {
            if let Some(list) = registry.by_user.get(user) {
                wake_all(list);
            }
        }
    }

    /// Reads a fan-out's items and the counts of the `woken` users (with their organizations)
    /// in a few statements, keeps the counts, and wakes each subscription with its items.
    async fn deliver_fan_out(self, woken: Vec<(String, ExternalId)>, ids: IdRange) {
        // Every item of the fan-out has the same content: it is read once, with the first.
        let mut content = None;
        // Slice by slice, so the first subscribers hear while the rest are being read.
        for slice in woken.chunks(FAN_OUT_SLICE) {
            if let Err(e) = self.deliver_slice(slice, ids, &mut content).await {
                // Each subscription reads for itself instead.
                tracing::warn!(error = %e, "could not read a fan-out for its subscribers");
                let registry = lock(&self.0.subscribers);
                for (user, _) in slice {
                    registry
                        .by_user
                        .get(user)
                        .into_iter()
                        .flatten()
                        .for_each(Subscriber::wake_to_read);
                }
            }
        }
    }

    async fn deliver_slice(
        &self,
        woken: &[(String, ExternalId)],
        ids: IdRange,
        content: &mut Option<NotificationRecord>,
    ) -> Result<(), Error> {
        let db = &self.0.db;
        let users: Vec<&str> = woken.iter().map(|(u, _)| u.as_str()).collect();
        let epoch = self.0.caches.counts_epoch();
        // Two independent statements, on two pooled connections at once.
        let (marks, counts) = tokio::join!(db.fan_out_marks(&users, ids), db.counts_of(&users));
        let (marks, counts) = (marks?, counts?);
        let orgs: HashMap<&str, &ExternalId> = woken.iter().map(|(u, o)| (u.as_str(), o)).collect();
        for (user, c) in counts {
            if let Some(org) = orgs.get(user.as_str()) {
                self.0.caches.keep_counts(&user, org, c, epoch);
            }
        }
        if content.is_none()
            && let Some(first) = marks.first()
        {
            // Deleted since: the subscriptions read for themselves.
            *content = Some(db.notification(first.id).await?.ok_or_else(|| {
                Error::not_found("a fan-out's item was deleted while it was read")
            })?);
        }
        let mut items_of: HashMap<&str, Vec<NotificationRecord>> = HashMap::new();
        if let Some(content) = content.as_ref() {
            for mark in marks {
                let Some((user, org)) = orgs.get_key_value(mark.user_id.as_str()) else {
                    continue;
                };
                items_of.entry(user).or_default().push(NotificationRecord {
                    id: mark.id,
                    organization_id: (*org).clone(),
                    user_id: mark.user_id,
                    read: mark.read,
                    // Not in the inbox index; live events do not show it.
                    read_at: None,
                    seen_at: mark.seen_at,
                    status: tidings_domain::NotificationStatus::Inbox,
                    ..content.clone()
                });
            }
        }
        let registry = lock(&self.0.subscribers);
        for (user, _) in woken {
            let Some(list) = registry.by_user.get(user) else {
                continue;
            };
            let mut items = items_of.remove(user.as_str()).unwrap_or_default();
            for (n, subscriber) in list.iter().enumerate() {
                if let Some(mailbox) = &subscriber.mailbox {
                    let mailbox = &mut lock(mailbox).items;
                    // The user's last subscription takes the items, the others a copy.
                    if n + 1 == list.len() {
                        mailbox.append(&mut items);
                    } else {
                        mailbox.extend(items.iter().cloned());
                    }
                }
                subscriber.wake.notify_one();
            }
        }
        Ok(())
    }

    /// Opens a subscription for `user`; `items`: whether it wants new items or counts only.
    pub(crate) fn subscribe(
        &self,
        user: &ExternalId,
        organization: &ExternalId,
        items: bool,
    ) -> Result<Subscription, Error> {
        let inner = &self.0;
        let mut registry = lock(&inner.subscribers);
        if inner.open.load(Ordering::Relaxed) >= inner.limits.total {
            return Err(Error::new(
                ErrorCode::TooManyRequests,
                format!(
                    "This server has its maximum of {} open subscriptions; try again later",
                    inner.limits.total
                ),
            ));
        }
        let list = registry
            .by_user
            .entry(user.as_str().to_owned())
            .or_default();
        if list.len() >= inner.limits.per_user {
            return Err(Error::new(
                ErrorCode::TooManyRequests,
                format!(
                    "At most {} open subscriptions per user",
                    inner.limits.per_user
                ),
            ));
        }
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let wake = Arc::new(Notify::new());
        let mailbox = items.then(Arc::default);
        list.push(Subscriber {
            id,
            organization: organization.clone(),
            wake: wake.clone(),
            mailbox: mailbox.clone(),
        });
        inner.open.fetch_add(1, Ordering::Relaxed);
        Ok(Subscription {
            hub: inner.clone(),
            user: user.as_str().to_owned(),
            id,
            wake,
            mailbox,
        })
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct CountsOutput {
    unread: u64,
    unseen: u64,
    total: u64,
}

impl From<Counts> for CountsOutput {
    fn from(c: Counts) -> Self {
        Self {
            unread: c.unread,
            unseen: c.unseen,
            total: c.total,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NewEvent {
    notification: InboxItem,
    unread_count: u64,
    counts: CountsOutput,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(crate) struct OnNewInput {
    last_event_id: Option<String>,
}

/// At most this many items per read while catching up; more are read on the next turn.
const CATCH_UP_BATCH: u64 = 100;

struct OnNewState {
    db: Db,
    hub: Hub,
    user: ExternalId,
    organization: ExternalId,
    subscription: Subscription,
    last: Option<NotificationId>,
    /// Ids sent within the look-back window below `last`.
    sent: std::collections::BTreeSet<NotificationId>,
    pending: VecDeque<SubEvent>,
}

/// Events for `items` (oldest first), each with the counts as they were right after it: the
/// counts now, less what the later items of the batch added.
fn new_events(items: Vec<NotificationRecord>, now: Counts) -> Result<Vec<SubEvent>, Error> {
    let mut later = Counts {
        unread: 0,
        unseen: 0,
        total: 0,
    };
    let mut events: Vec<SubEvent> = items
        .into_iter()
        .rev()
        .map(|n| {
            let at = Counts {
                unread: now.unread.saturating_sub(later.unread),
                unseen: now.unseen.saturating_sub(later.unseen),
                total: now.total.saturating_sub(later.total),
            };
            later.total += 1;
            later.unread += u64::from(!n.read);
            later.unseen += u64::from(n.seen_at.is_none());
            let id = n.id.to_string();
            let event = NewEvent {
                notification: n.into(),
                unread_count: at.unread,
                counts: at.into(),
            };
            Ok(SubEvent::Data {
                id: Some(id),
                data: crate::Output::new(&event)?,
            })
        })
        .collect::<Result<_, Error>>()?;
    events.reverse();
    Ok(events)
}

/// Ids are taken when a notification is created, before its transaction commits, so items can
/// become visible out of id order. A read therefore looks back this far below the newest id it
/// sent, and skips the ids it already sent.
const LOOK_BACK_MS: u64 = 5_000;

/// The smallest id of the look-back window below `id`.
fn window_floor(id: NotificationId) -> NotificationId {
    let bytes = id.0.as_bytes();
    let ms = bytes[..6]
        .iter()
        .fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    let floor = ms.saturating_sub(LOOK_BACK_MS).to_be_bytes();
    let mut out = [0u8; 16];
    out[..6].copy_from_slice(&floor[2..]);
    NotificationId(uuid::Uuid::from_bytes(out))
}

impl OnNewState {
    /// Items of the look-back window that are visible now, so they are not sent as new.
    async fn seed(&mut self) -> Result<(), Error> {
        let Some(last) = self.last else { return Ok(()) };
        let mut cursor = Some(window_floor(last));
        for _ in 0..10 {
            let items = self
                .db
                .inbox_after(&self.user, cursor, CATCH_UP_BATCH)
                .await?;
            let full = items.len() as u64 == CATCH_UP_BATCH;
            cursor = items.last().map(|n| n.id).or(cursor);
            self.sent
                .extend(items.iter().map(|n| n.id).filter(|id| *id <= last));
            if !full {
                break;
            }
        }
        Ok(())
    }

    /// What is new since the last turn: the items the hub left, and, when woken by another
    /// change, what a read from the database finds.
    async fn read_new(&mut self) -> Result<(), Error> {
        let (mail, read) = self.subscription.take_mail();
        let mut fresh = if read {
            self.read_fresh().await?
        } else {
            Vec::new()
        };
        for item in mail {
            if !self.sent.contains(&item.id) && !fresh.iter().any(|n| n.id == item.id) {
                fresh.push(item);
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        fresh.sort_by_key(|n| n.id);
        self.sent.extend(fresh.iter().map(|n| n.id));
        self.last = fresh.iter().map(|n| n.id).chain(self.last).max();
        if let Some(last) = self.last {
            let floor = window_floor(last);
            self.sent.retain(|id| *id >= floor);
        }
        let counts = self.hub.counts(&self.user, &self.organization).await?;
        self.pending.extend(new_events(fresh, counts)?);
        Ok(())
    }

    /// Items not sent yet, read from the database from the look-back window below the last.
    async fn read_fresh(&mut self) -> Result<Vec<NotificationRecord>, Error> {
        let mut cursor = self.last.map(window_floor);
        let mut fresh: Vec<NotificationRecord> = Vec::new();
        loop {
            let items = self
                .db
                .inbox_after(&self.user, cursor, CATCH_UP_BATCH)
                .await?;
            let full = items.len() as u64 == CATCH_UP_BATCH;
            cursor = items.last().map(|n| n.id).or(cursor);
            fresh.extend(items.into_iter().filter(|n| !self.sent.contains(&n.id)));
            if !full {
                break;
            }
            if fresh.len() as u64 >= CATCH_UP_BATCH {
                // More to read: come back at once.
                self.subscription.read_again();
                break;
            }
        }
        Ok(fresh)
    }
}

/// `notifications.onNew`: each new inbox item of the caller as it arrives; with `lastEventId`
/// (the id of the last item received) first the items created since, oldest first.
pub(crate) async fn on_new(
    ctx: Ctx,
    input: OnNewInput,
) -> Result<BoxStream<'static, Result<SubEvent, Error>>, Error> {
    let user = ctx.user()?.clone();
    let subscription = ctx
        .app
        .hub
        .subscribe(&user.user_id, &user.organization_id, true)?;
    let db = ctx.db().clone();
    // Resume after the given item when it is one of the caller's; an unknown id replays
    // nothing, as tRPC does.
    let resume = match input
        .last_event_id
        .as_deref()
        .map(|id| NotificationId::parse("lastEventId", id))
    {
        Some(Ok(id)) => db
            .notification(id)
            .await?
            .filter(|n| n.user_id == user.user_id)
            .map(|n| n.id),
        _ => None,
    };
    let last = match resume {
        Some(id) => Some(id),
        None => db.newest_inbox_id(&user.user_id).await?,
    };
    let mut state = OnNewState {
        db,
        hub: ctx.app.hub.clone(),
        user: user.user_id,
        organization: user.organization_id,
        subscription,
        last,
        sent: Default::default(),
        pending: VecDeque::new(),
    };
    state.seed().await?;
    if resume.is_some() {
        state.subscription.read_again();
        state.read_new().await?;
    }
    Ok(stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        loop {
            if let Some(event) = state.pending.pop_front() {
                return Some((Ok(event), Some(state)));
            }
            state.subscription.wake.notified().await;
            // Boxed: the read's future lives only while it runs, instead of widening the
            // stream's state, which every idle subscription holds, by its size.
            if let Err(e) = Box::pin(state.read_new()).await {
                return Some((Err(e), None));
            }
        }
    })
    .boxed())
}

/// `notifications.onCounts`: the caller's `{unread, unseen, total}` at once, then whenever
/// they change, whatever changed them.
pub(crate) async fn on_counts(
    ctx: Ctx,
    _: crate::registry::NoInput,
) -> Result<BoxStream<'static, Result<SubEvent, Error>>, Error> {
    let user = ctx.user()?.clone();
    let subscription = ctx
        .app
        .hub
        .subscribe(&user.user_id, &user.organization_id, false)?;
    let hub = ctx.app.hub.clone();
    let first = hub.counts(&user.user_id, &user.organization_id).await?;
    struct State {
        hub: Hub,
        user: ExternalId,
        organization: ExternalId,
        subscription: Subscription,
        sent: Option<Counts>,
        next: Option<Counts>,
    }
    let state = State {
        hub,
        user: user.user_id,
        organization: user.organization_id,
        subscription,
        sent: None,
        next: Some(first),
    };
    let event = |c: Counts| {
        crate::Output::new(&CountsOutput::from(c)).map(|data| SubEvent::Data { id: None, data })
    };
    Ok(stream::unfold(Some(state), move |state| async move {
        let mut state = state?;
        loop {
            if let Some(counts) = state.next.take().filter(|c| state.sent != Some(*c)) {
                state.sent = Some(counts);
                return Some((event(counts), Some(state)));
            }
            state.subscription.wake.notified().await;
            // Boxed, as in `on_new`: an idle subscription holds only what it waits on.
            match Box::pin(state.hub.counts(&state.user, &state.organization)).await {
                Ok(counts) => state.next = Some(counts),
                Err(e) => return Some((Err(e), None)),
            }
        }
    })
    .boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_floor_is_five_seconds_below() {
        let id = NotificationId::generate();
        let floor = window_floor(id);
        let ms = |n: NotificationId| {
            n.0.as_bytes()[..6]
                .iter()
                .fold(0u64, |a, b| (a << 8) | u64::from(*b))
        };
        assert_eq!(ms(id) - ms(floor), LOOK_BACK_MS);
        assert!(floor < id);
    }

    #[test]
    fn signals_stay_small() {
        let s = Signal {
            users: vec!["ann".into()],
            ..Signal::default()
        };
        assert_eq!(serde_json::to_string(&s).unwrap(), r#"{"u":["ann"]}"#);
        let all = Signal {
            everyone: true,
            ..Signal::default()
        };
        assert_eq!(serde_json::to_string(&all).unwrap(), r#"{"a":true}"#);
        assert_eq!(
            serde_json::from_str::<Signal>(r#"{"o":"acme"}"#)
                .unwrap()
                .organization
                .as_deref(),
            Some("acme")
        );
    }
}
