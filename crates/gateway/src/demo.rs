//! `tidings demo`: loads demo data in bulk, fast enough for benchmarks at a million
//! notifications.
//!
//! It creates users `user-00001`, `user-00002`, … in the organization `demo`, gives each the
//! same number of notifications of the inbox API's types, spread over the last 30 days as they
//! would have arrived (interleaved across users, ids UUID v7 of their creation time, older ones
//! mostly read), and can write one fresh session token per user to a file, for load
//! generators that send `cookie: tidings_session=<token>`.
//!
//! With `--groups N` it also creates groups `demo-group-1` … `demo-group-N`, each holding about
//! `--group-share` percent of the users, chosen set-based in the database by a hash of the
//! user's and the group's numbers (`tidings_persistence::bulk::in_hashed_group`), so a
//! benchmark can compute who is in which group without asking the database.
//!
//! The data are generated from a seed, so two runs with the same arguments load the same inboxes
//! (apart from ids and tokens).

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use clap::Args;
use serde_json::{Value, json};
use tidings_domain::{ExternalId, NotificationId};
use tidings_persistence::bulk::{BulkNotification, BulkSession, BulkUser};
use tidings_procedures::{Db, Error, new_session_token};
use tokio::task::JoinHandle;
use uuid::{ContextV7, Timestamp, Uuid};

/// The organization demo users belong to.
pub const DEMO_ORGANIZATION: &str = "demo";

/// Notifications per transaction while loading.
const NOTIFICATIONS_PER_TRANSACTION: usize = 20_000;

/// How far back the demo notifications go (at least; more when there are more than one a
/// millisecond).
const HISTORY: Duration = Duration::from_secs(30 * 24 * 60 * 60);

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// How many users to create (ids user-00001, user-00002, …; organization "demo").
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000_000))]
    pub users: u32,
    /// How many notifications each user gets.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub per_user: u32,
    /// Write one new session token per user to this file, one a line, in user order.
    #[arg(long, value_name = "FILE")]
    pub sessions_out: Option<PathBuf>,
    /// The seed of the generated data.
    #[arg(long, default_value_t = 2024)]
    pub seed: u64,
    /// Also create this many groups, demo-group-1, demo-group-2, …, in organization "demo".
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub groups: u32,
    /// The share of the users in each group, in percent (members chosen by a hash of the
    /// user's and the group's numbers, the same on every run and engine).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub group_share: u32,
}

/// SplitMix64: small, fast and good enough to make demo data look varied.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// The user id of the `n`-th demo user (from 1), zero-padded to `width`.
pub fn user_id(n: u32, width: usize) -> String {
    format!("user-{n:0width$}")
}

fn id_width(users: u32) -> usize {
    users.to_string().len().max(5)
}

const AUTHORS: [&str; 8] = [
    "john", "maria", "wei", "amara", "lukas", "sofia", "kenji", "fatima",
];

const TICKET_TITLES: [&str; 12] = [
    "Customer login issue",
    "Invoice PDF is blank",
    "Password reset email not arriving",
    "Export to CSV times out",
    "Dashboard shows wrong totals",
    "Cannot upload attachments over 10 MB",
    "SSO redirect loop",
    "Mobile app crashes on start",
    "Refund not processed",
    "Webhook retries flood endpoint",
    "Search ignores accented letters",
    "Two-factor codes rejected",
];

/// A random (version 4) UUID from the demo's generator.
fn random_uuid(rng: &mut Rng) -> String {
    let bytes = (u128::from(rng.next()) << 64 | u128::from(rng.next())).to_le_bytes();
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// One notification's type, title, message and data, as the type's templates would render
/// them.
fn content(rng: &mut Rng) -> (&'static str, String, String, Option<Value>) {
    let number = 1000 + rng.below(9000);
    let title = *rng.pick(&TICKET_TITLES);
    let author = *rng.pick(&AUTHORS);
    let ticket_id = random_uuid(rng);
    // Weighted towards the everyday types; SLA breaches and reports are rare.
    let (kind, heading, message) = match rng.below(100) {
        0..=14 => (
            "ticketCreated",
            "New Ticket",
            format!("Ticket #{number} was created: {title}"),
        ),
        15..=29 => (
            "ticketAssigned",
            "Ticket Assigned",
            format!("You've been assigned ticket #{number}: {title}"),
        ),
        30..=49 => (
            "ticketUpdated",
            "Ticket Updated",
            format!("Ticket #{number} was updated"),
        ),
        50..=59 => (
            "ticketResolved",
            "Ticket Resolved",
            format!("Ticket #{number} was resolved"),
        ),
        60..=79 => (
            "newComment",
            "New Comment",
            format!("{author} commented on ticket #{number}"),
        ),
        80..=89 => (
            "mentions",
            "You were mentioned",
            format!("@{author} mentioned you in ticket #{number}"),
        ),
        90..=94 => (
            "slaWarning",
            "SLA Warning",
            format!("Ticket #{number} is about to breach its SLA"),
        ),
        95..=96 => (
            "slaBreach",
            "SLA Breached",
            format!("Ticket #{number} has breached its SLA"),
        ),
        _ => (
            "weeklyReport",
            "Weekly Report",
            "Your weekly performance report is ready".to_owned(),
        ),
    };
    // Most ticket notifications carry a reference, as in the inbox API's examples; some
    // senders send none.
    let data = match kind {
        "weeklyReport" => None,
        _ if rng.below(5) == 0 => None,
        "mentions" | "newComment" => Some(json!({
            "ticketId": ticket_id,
            "ticketNumber": number,
            "conversationId": random_uuid(rng),
        })),
        _ => Some(json!({"ticketId": ticket_id, "ticketNumber": number})),
    };
    (kind, heading.to_owned(), message, data)
}

/// Waits for a batch being stored in the background.
async fn finish(storing: JoinHandle<Result<u64, Error>>) -> Result<u64, Error> {
    storing.await.map_err(Error::internal)?
}

fn at_millis(millis: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(millis)
        .single()
        .unwrap_or_else(Utc::now)
}

/// Loads the demo data; returns a one-line JSON summary.
pub async fn run(db: &Db, args: DemoArgs, session_ttl: Duration) -> Result<String, Error> {
    let started = Instant::now();
    let mut rng = Rng(args.seed);
    let width = id_width(args.users);
    let organization = ExternalId::from_trusted(DEMO_ORGANIZATION.to_owned());
    let user_ids: Vec<ExternalId> = (1..=args.users)
        .map(|n| ExternalId::from_trusted(user_id(n, width)))
        .collect();

    let users: Vec<BulkUser> = user_ids
        .iter()
        .enumerate()
        .map(|(i, id)| BulkUser {
            id: id.clone(),
            email: Some(format!("{id}@demo.example")),
            name: format!("Demo User {}", i + 1),
        })
        .collect();
    let users_created = db.bulk_insert_users(&organization, "Demo", &users).await?;
    drop(users);
    eprintln!("demo: {users_created} users created");

    let mut groups = Vec::new();
    for group in 1..=args.groups {
        let name = format!("demo-group-{group}");
        let (id, members) = db
            .bulk_create_hashed_group(&organization, &name, group, args.group_share)
            .await?;
        eprintln!("demo: group {name} created with {members} members");
        groups.push(json!({"id": id.to_string(), "name": name, "members": members}));
    }

    // Notifications arrive one at a time over the history, each round reaching every user once
    // in a shuffled order, so a user's notifications are spread over the table as in real life.
    let total = u64::from(args.users) * u64::from(args.per_user);
    let end = Utc::now().timestamp_millis() - 60_000;
    let span = (HISTORY.as_millis() as i64).max(total as i64);
    let step = if total == 0 {
        0.0
    } else {
        span as f64 / total as f64
    };
    let start = end - span;
    let context = ContextV7::new();
    let mut order: Vec<usize> = (0..user_ids.len()).collect();
    let mut batch = Vec::with_capacity(NOTIFICATIONS_PER_TRANSACTION);
    let mut storing: Option<JoinHandle<Result<u64, Error>>> = None;
    let mut loaded = 0u64;
    let mut slot = 0u64;
    let mut next_report = 100_000u64;
    for round in 0..args.per_user {
        // 0 for the oldest round, 1 for the newest.
        let recency = if args.per_user > 1 {
            f64::from(round) / f64::from(args.per_user - 1)
        } else {
            1.0
        };
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for &u in &order {
            let created = start + (slot as f64 * step) as i64;
            slot += 1;
            let created_at = at_millis(created);
            let id = Uuid::new_v7(Timestamp::from_unix(
                &context,
                (created / 1000) as u64,
                (created % 1000) as u32 * 1_000_000,
            ));
            let (kind, title, message, data) = content(&mut rng);
            // Older notifications are mostly read; the newest mostly not.
            let read = rng.unit() < 0.97 - 0.75 * recency;
            let seen = read || rng.unit() < 0.5;
            let seen_at = seen
                .then(|| at_millis((created + 60_000 + rng.below(6 * 3_600_000) as i64).min(end)));
            let read_at = match (read, seen_at) {
                (true, Some(seen_at)) => {
                    Some(seen_at + chrono::Duration::milliseconds(rng.below(120_000) as i64))
                }
                _ => None,
            }
            .map(|t| t.min(at_millis(end)));
            batch.push(BulkNotification {
                id: NotificationId(id),
                user_id: user_ids[u].clone(),
                organization_id: organization.clone(),
                kind: kind.to_owned(),
                title,
                message,
                data,
                read_at,
                seen_at,
                created_at,
            });
            if batch.len() == NOTIFICATIONS_PER_TRANSACTION {
                // Store this batch in the background while the next one is generated; one
                // transaction at a time, so the database sees one writer.
                let full = std::mem::replace(
                    &mut batch,
                    Vec::with_capacity(NOTIFICATIONS_PER_TRANSACTION),
                );
                if let Some(previous) = storing.take() {
                    loaded += finish(previous).await?;
                }
                let db = db.clone();
                storing = Some(tokio::spawn(async move {
                    db.bulk_insert_notifications(&full).await
                }));
                if loaded >= next_report {
                    eprintln!(
                        "demo: {loaded}/{total} notifications ({:.1} s)",
                        started.elapsed().as_secs_f64()
                    );
                    next_report += 100_000;
                }
            }
        }
    }
    if let Some(previous) = storing.take() {
        loaded += finish(previous).await?;
    }
    if !batch.is_empty() {
        loaded += db.bulk_insert_notifications(&batch).await?;
    }

    let mut sessions_written = 0;
    if let Some(path) = &args.sessions_out {
        let expires_at =
            Utc::now() + chrono::Duration::from_std(session_ttl).map_err(Error::internal)?;
        let mut tokens = String::with_capacity(user_ids.len() * 44);
        let mut sessions = Vec::with_capacity(user_ids.len());
        for id in &user_ids {
            let (token, token_hash) = new_session_token();
            tokens.push_str(&token);
            tokens.push('\n');
            sessions.push(BulkSession {
                user_id: id.clone(),
                token_hash,
            });
        }
        sessions_written = db.bulk_insert_sessions(&sessions, expires_at).await?;
        std::fs::File::create(path)
            .and_then(|mut f| f.write_all(tokens.as_bytes()))
            .map_err(|e| Error::bad_request(format!("--sessions-out {}: {e}", path.display())))?;
    }

    db.refresh_after_bulk_load().await?;
    Ok(json!({
        "organizationId": DEMO_ORGANIZATION,
        "users": args.users,
        "usersCreated": users_created,
        "notifications": loaded,
        "sessions": sessions_written,
        "groups": groups,
        "sessionsOut": args.sessions_out.map(|p| p.display().to_string()),
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    })
    .to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_padded() {
        assert_eq!(user_id(1, id_width(10_000)), "user-00001");
        assert_eq!(user_id(10_000, id_width(10_000)), "user-10000");
        assert_eq!(user_id(7, id_width(1_000_000)), "user-0000007");
    }

    #[test]
    fn content_is_varied_and_well_formed() {
        let mut rng = Rng(1);
        let mut kinds = std::collections::BTreeSet::new();
        let mut with_data = 0;
        for _ in 0..1000 {
            let (kind, title, message, data) = content(&mut rng);
            assert!(!title.is_empty() && !message.is_empty());
            assert!(!message.contains("{{"));
            if let Some(data) = data {
                assert!(data.is_object());
                with_data += 1;
            }
            kinds.insert(kind);
        }
        assert_eq!(kinds.len(), 9);
        assert!((500..950).contains(&with_data), "{with_data}");
    }
}
