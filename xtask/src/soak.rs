//! `cargo xtask soak`: a bounded mixed load on one instance, then an audit that nothing was
//! lost or duplicated and that the server's memory came back to its baseline.
//!
//! Setup, over the real HTTP surface with a service key: a notification type `soak` whose
//! title carries a sequence number (`Soak #{{ n }}`), `--users` users (some with email turned
//! off, some with the inbox turned off for `soak`, some whose address the SMTP server rejects
//! with 550), four overlapping groups, and one session per user. The release binary sends its
//! email to a local SMTP server (`tests/support/smtp_sink.py`).
//!
//! The load, run first as a warm-up and then for `--duration`:
//! - a notifier: `notifications.notify` at `--notify-rate` calls/s, to explicit users (with
//!   exclusions), to groups with OR and AND, or to everyone; some calls carry an idempotency
//!   key and are sent twice (the second must answer the same and create nothing), some reuse a
//!   key with other data (must answer CONFLICT);
//! - `--readers` users' clients: `list {unreadOnly}`, `markAsRead` of one unread item,
//!   `unreadCount`, `counts`, `markAllAsSeen`;
//! - `--subscribers` `notifications.onNew` streams held open for the whole run, and a churner
//!   opening and closing `notifications.onCounts` streams;
//! - the outbox worker delivering every email to the SMTP server.
//!
//! Every answer is recorded in a ledger: which user should have which notification in the
//! inbox, which email should arrive, which items were marked read. After the load the outbox
//! drains, and the audit compares: each user's notifications and unread count in the database
//! (`notifications.query` with `filterCount`), the outbox's sent and failed rows (`/metrics`),
//! the messages the SMTP server received (each expected one exactly once, nothing else), and
//! each long-lived stream's events. The memory baseline is the server's anonymous resident
//! memory (`RssAnon`: its heap, not file pages it maps, such as its own binary) once
//! the warm-up has filled its caches (rounds of load until a round adds less than 1 MB); after
//! the load, with the same streams open, the memory must be back within `--memory-slack-mb`
//! plus 10% of it. The log must hold no error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::smtp::Sink;
use crate::sse;
use crate::util::{
    Backend, BenchReport, Result, RssSampler, Server, ServerArgs, TempDir, Which, create_key,
    heap_bytes, megabytes, run_backends, scratch_database, start_server, tail, thousands,
    url_encode,
};

#[derive(Debug, Args)]
pub struct SoakArgs {
    /// Seconds of mixed load after the warm-up.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    duration: u64,
    /// The warm-up runs the same load in rounds of this many seconds until the server's
    /// memory grew less than 1 MB over a round (its caches are full); the memory then is the
    /// baseline.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    warmup: u64,
    /// At most this many warm-up rounds.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    warmup_rounds: u32,
    /// Users (each with a session).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(20..=10_000))]
    users: u32,
    /// `notifications.onNew` streams held open for the whole run (users 0, 1, …).
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    subscribers: u32,
    /// `notifications.notify` calls per second.
    #[arg(long, default_value_t = 5.0)]
    notify_rate: f64,
    /// Inbox clients working at once (each a sequence of reads and marks, 20 ms apart).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(0..=256))]
    readers: u32,
    /// How far the server's memory after the load may stay above its baseline: this many MB
    /// plus 10% of the baseline.
    #[arg(long, default_value_t = 8)]
    memory_slack_mb: u64,
    /// Which database engines to soak.
    #[arg(long, value_enum, default_value_t = Which::Sqlite)]
    backend: Which,
    #[command(flatten)]
    server: ServerArgs,
}

/// How long the outbox may take to drain after a phase, and streams to connect.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);
/// The type every soak notification has; its title is `Soak #<n>`.
const TYPE: &str = "soak";
const GROUPS: usize = 4;

pub fn run(args: SoakArgs) -> Result<bool> {
    if !(args.notify_rate > 0.0 && args.notify_rate <= 1_000.0) {
        return Err(format!(
            "--notify-rate must be above 0 and at most 1000, got {}",
            args.notify_rate
        ));
    }
    if args.subscribers > args.users {
        return Err(format!(
            "--subscribers ({}) cannot exceed --users ({})",
            args.subscribers, args.users
        ));
    }
    crate::smtp::check_available()?;
    let binary = args.server.binary()?;
    run_backends(args.backend, true, "the soak", |backend| {
        soak_backend(backend, &args, &binary)
    })
}

/// One user of the soak and what they chose.
#[derive(Debug, Clone)]
struct User {
    id: String,
    email: String,
    /// `disableAllEmail` was called: no email.
    email_on: bool,
    /// The inbox is turned off for the soak type: no inbox item, no stream event.
    in_app_on: bool,
    /// The SMTP server answers 550 for this address: the delivery fails at once.
    rejected: bool,
    cookie: String,
}

impl User {
    fn plan(i: usize) -> Self {
        let rejected = i % 10 == 2;
        let id = format!("soak-{i:05}");
        Self {
            email: if rejected {
                format!("reject-{id}@example.com")
            } else {
                format!("{id}@example.com")
            },
            id,
            email_on: !i.is_multiple_of(10),
            in_app_on: i % 10 != 1 && i % 30 != 20,
            rejected,
            cookie: String::new(),
        }
    }

    fn any_channel(&self) -> bool {
        self.email_on || self.in_app_on
    }
}

/// Whether user `i` belongs to group `g`: about half of the users each, independently, so
/// two groups overlap in about a quarter.
fn member(i: usize, g: usize) -> bool {
    ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (40 + 3 * g)) & 1 == 1
}

/// What the load did and what it should have caused, filled in as answers arrive.
#[derive(Debug, Default)]
struct Ledger {
    /// Per user: the `n` of every notification that should be in their inbox.
    inbox: Vec<Vec<u64>>,
    /// Per user: the ids they marked read.
    marked: Vec<HashSet<String>>,
    /// Per user: the `n` of every notification their email should carry.
    emails: Vec<Vec<u64>>,
    /// Calls made, by procedure.
    calls: BTreeMap<&'static str, u64>,
    /// Every unexpected answer.
    failures: Vec<String>,
}

impl Ledger {
    fn count(&mut self, procedure: &'static str) {
        *self.calls.entry(procedure).or_default() += 1;
    }

    fn fail(&mut self, what: String) {
        if self.failures.len() < 1_000 {
            self.failures.push(what);
        }
    }
}

type Shared = Arc<Mutex<Ledger>>;

fn with<T>(ledger: &Shared, f: impl FnOnce(&mut Ledger) -> T) -> T {
    let mut guard = ledger.lock().unwrap_or_else(|e| e.into_inner());
    f(&mut guard)
}

/// A small deterministic random source (xorshift64*), one per task.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Who a request speaks for.
#[derive(Debug, Clone, Copy)]
enum Auth<'a> {
    None,
    Key(&'a str),
    Cookie(&'a str),
}

/// One keep-alive HTTP/1.1 connection to the server, opened again after it breaks.
struct Conn {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Self {
        Self { addr, sender: None }
    }

    async fn sender(&mut self) -> Result<&mut SendRequest<Full<Bytes>>> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect {}: {e}", self.addr))?;
            stream.set_nodelay(true).map_err(|e| e.to_string())?;
            let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .map_err(|e| format!("handshake: {e}"))?;
            tokio::spawn(connection);
            self.sender = Some(sender);
        }
        self.sender
            .as_mut()
            .ok_or_else(|| "no connection".to_owned())
    }

    /// Sends one request; its status and body (parsed as JSON when it is JSON).
    async fn send(
        &mut self,
        method: Method,
        path: &str,
        auth: Auth<'_>,
        body: Option<String>,
    ) -> Result<(u16, Value)> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.addr.to_string());
        request = match auth {
            Auth::None => request,
            Auth::Key(key) => request.header(AUTHORIZATION, format!("Bearer {key}")),
            Auth::Cookie(cookie) => request.header(COOKIE, cookie),
        };
        if body.is_some() {
            request = request.header(CONTENT_TYPE, "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        let sender = self.sender().await?;
        sender.ready().await.map_err(|e| e.to_string())?;
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(e) => {
                self.sender = None;
                return Err(format!("{path}: {e}"));
            }
        };
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{path}: {e}"))?
            .to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        Ok((status, body))
    }

    /// A tRPC query or mutation: its status and the reply's `result.data.json` (or the error).
    async fn trpc(
        &mut self,
        mutation: bool,
        procedure: &str,
        auth: Auth<'_>,
        input: Value,
    ) -> Result<(u16, Value)> {
        let envelope = json!({ "json": input }).to_string();
        let (status, body) = if mutation {
            let path = format!("/api/trpc/{procedure}");
            self.send(Method::POST, &path, auth, Some(envelope)).await?
        } else {
            let path = format!("/api/trpc/{procedure}?input={}", url_encode(&envelope));
            self.send(Method::GET, &path, auth, None).await?
        };
        let value = if status == 200 {
            body["result"]["data"]["json"].clone()
        } else {
            body["error"]["json"].clone()
        };
        Ok((status, value))
    }

    /// A call that must succeed: its output.
    async fn ok(
        &mut self,
        mutation: bool,
        procedure: &str,
        auth: Auth<'_>,
        input: Value,
    ) -> Result<Value> {
        match self.trpc(mutation, procedure, auth, input).await? {
            (200, output) => Ok(output),
            (status, error) => Err(format!("{procedure}: {status} {error}")),
        }
    }

    /// The outbox's rows by state, as `/metrics` counts them in the database now.
    async fn outbox(&mut self) -> Result<HashMap<String, u64>> {
        let (status, body) = self.send(Method::GET, "/metrics", Auth::None, None).await?;
        let text = body.as_str().unwrap_or_default();
        if status != 200 {
            return Err(format!("/metrics: {status} {text}"));
        }
        Ok(text
            .lines()
            .filter_map(|l| l.strip_prefix("tidings_outbox_deliveries{state=\""))
            .filter_map(|l| {
                let (state, rest) = l.split_once("\"}")?;
                Some((state.to_owned(), rest.trim().parse::<f64>().ok()? as u64))
            })
            .collect())
    }

    /// Waits until no delivery is pending or being sent.
    async fn drain(&mut self) -> Result<HashMap<String, u64>> {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        loop {
            let outbox = self.outbox().await?;
            let open = outbox.get("pending").copied().unwrap_or(0)
                + outbox.get("sending").copied().unwrap_or(0);
            if open == 0 {
                return Ok(outbox);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the outbox still holds {open} deliveries after {DRAIN_TIMEOUT:?}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The soak's figures and the audit's verdicts for one backend.
struct Report {
    backend: Backend,
    seconds: u64,
    calls: BTreeMap<&'static str, u64>,
    notifications: usize,
    emails_received: usize,
    outbox: HashMap<String, u64>,
    stream_events: usize,
    churned: usize,
    rss_baseline: u64,
    rss_peak: u64,
    rss_after: u64,
    memory_limit: u64,
    /// Each check: what it compares and, when it failed, how.
    checks: Vec<(String, Option<String>)>,
}

impl BenchReport for Report {
    fn all_goals_met(&self) -> bool {
        self.checks.iter().all(|(_, failure)| failure.is_none())
    }

    fn print(&self) {
        println!();
        println!(
            "{}: {} s of mixed load after the warm-up",
            self.backend.title(),
            self.seconds
        );
        let calls: Vec<String> = self
            .calls
            .iter()
            .map(|(p, n)| format!("{p} {}", thousands(*n as f64)))
            .collect();
        println!("  calls: {}", calls.join(", "));
        println!(
            "  inbox notifications {}, emails received {}, outbox {:?}, stream events {}, \
             streams opened and closed {}",
            thousands(self.notifications as f64),
            thousands(self.emails_received as f64),
            self.outbox,
            thousands(self.stream_events as f64),
            thousands(self.churned as f64),
        );
        println!(
            "  server anonymous RSS: baseline {}, peak {}, after {} (limit {})",
            megabytes(self.rss_baseline as f64),
            megabytes(self.rss_peak as f64),
            megabytes(self.rss_after as f64),
            megabytes(self.memory_limit as f64),
        );
        for (check, failure) in &self.checks {
            match failure {
                None => println!("  ok      {check}"),
                Some(why) => println!("  FAILED  {check}: {why}"),
            }
        }
    }
}

fn soak_backend(backend: Backend, args: &SoakArgs, binary: &Path) -> Result<Option<Report>> {
    let dir = TempDir::new("tidings-soak")?;
    let Some(db) = scratch_database(backend, &dir, &args.server.postgres_url)? else {
        return Ok(None);
    };
    let key = create_key(binary, &db.url, "soak")?;
    let sink = Sink::start(&dir, &["--reject", "reject-"])?;
    let env = [
        (
            "TIDINGS_SMTP_URL",
            format!("smtp://127.0.0.1:{}", sink.port),
        ),
        ("TIDINGS_MAIL_FROM", "Tidings <soak@example.com>".to_owned()),
    ];
    let mut server = start_server(binary, &db.url, &dir, &env)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the load client: {e}"))?;
    let report = runtime.block_on(drive(&server, &key, &sink, args, backend));
    runtime.shutdown_timeout(Duration::from_secs(5));
    let mut report = report?;
    server.stop();
    let errors = server.error_lines();
    report.checks.push((
        "the server logged no error".to_owned(),
        (errors > 0).then(|| format!("{errors} error line(s):\n{}", tail(&server.log, 10))),
    ));
    Ok(Some(report))
}

/// Sets up, runs the warm-up and the load, and audits.
async fn drive(
    server: &Server,
    key: &str,
    sink: &Sink,
    args: &SoakArgs,
    backend: Backend,
) -> Result<Report> {
    let addr = server.addr;
    let pid = server.child.id();
    let mut admin = Conn::new(addr);
    let service = Auth::Key(key);
    eprintln!("Setting up {} users…", args.users);
    let users = setup(&mut admin, service, args.users as usize).await?;
    let group_ids: Arc<[String]> = groups(&mut admin, service, &users).await?.into();
    let users = Arc::new(users);
    let ledger: Shared = Arc::new(Mutex::new(Ledger {
        inbox: vec![Vec::new(); users.len()],
        marked: vec![HashSet::new(); users.len()],
        emails: vec![Vec::new(); users.len()],
        ..Ledger::default()
    }));

    // The long-lived streams, each collecting the `n` of its events.
    let subscribers = args.subscribers as usize;
    let connected = Arc::new(AtomicUsize::new(0));
    let events: Arc<Vec<Mutex<Vec<u64>>>> =
        Arc::new((0..subscribers).map(|_| Mutex::new(Vec::new())).collect());
    let streams: Vec<_> = (0..subscribers)
        .map(|i| {
            let (users, connected, events, ledger) = (
                users.clone(),
                connected.clone(),
                events.clone(),
                ledger.clone(),
            );
            tokio::spawn(async move {
                let label = format!("onNew stream of {}", users[i].id);
                let result = sse::read(
                    &label,
                    addr,
                    None,
                    "/api/trpc/notifications.onNew",
                    &users[i].cookie,
                    |kind, frame, _| {
                        match kind {
                            "connected" => {
                                connected.fetch_add(1, Ordering::Relaxed);
                            }
                            "message" => {
                                let n = soak_number(sse::event_data(frame))
                                    .ok_or_else(|| format!("{label}: not a soak event: {frame}"))?;
                                events[i].lock().unwrap_or_else(|e| e.into_inner()).push(n);
                            }
                            "ping" => {}
                            other => return Err(format!("{label}: unexpected {other}: {frame}")),
                        }
                        Ok(sse::Next::Continue)
                    },
                )
                .await;
                if let Err(e) = result {
                    with(&ledger, |l| l.fail(e));
                }
            })
        })
        .collect();
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while connected.load(Ordering::Relaxed) < subscribers {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {subscribers} streams connected",
                connected.load(Ordering::Relaxed)
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    eprintln!(
        "Warming up in rounds of {} s until the server's memory stops growing…",
        args.warmup
    );
    let mut sequence = 0;
    let churned = Arc::new(AtomicUsize::new(0));
    let load = |seconds: u64, sequence: u64, seed: u64| {
        run_load(
            addr,
            key.to_owned(),
            users.clone(),
            group_ids.clone(),
            ledger.clone(),
            churned.clone(),
            args,
            Duration::from_secs(seconds),
            sequence,
            seed,
        )
    };
    // SQLite's page and statement caches (per pooled connection) fill for minutes under
    // this load; PostgreSQL's live in the database server.
    let mut rss_baseline = heap_bytes(pid)?;
    for round in 1..=args.warmup_rounds {
        sequence = load(args.warmup, sequence, u64::from(round)).await;
        admin.drain().await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let rss = heap_bytes(pid)?;
        eprintln!("  round {round}: anonymous RSS {}", megabytes(rss as f64));
        let settled = rss < rss_baseline + 1_000_000;
        rss_baseline = rss;
        if settled {
            break;
        }
    }

    eprintln!(
        "Soaking for {} s (baseline anonymous RSS {})…",
        args.duration,
        megabytes(rss_baseline as f64)
    );
    let sampler = RssSampler::start_with(pid, Duration::from_millis(250), heap_bytes);
    // The memory curve, on standard error every tenth of the run: a leak climbs to the end,
    // a cache flattens out.
    let started = Instant::now();
    let step = Duration::from_secs((args.duration / 10).max(1));
    let curve = tokio::spawn(async move {
        loop {
            tokio::time::sleep(step).await;
            if let Ok(rss) = heap_bytes(pid) {
                eprintln!(
                    "  {:>5.0} s: anonymous RSS {}",
                    started.elapsed().as_secs_f64(),
                    megabytes(rss as f64)
                );
            }
        }
    });
    load(args.duration, sequence, 0).await;
    curve.abort();
    eprintln!("Draining the outbox…");
    let outbox = admin.drain().await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_peak = sampler.stop();
    let rss_after = heap_bytes(pid)?;
    streams.iter().for_each(|s| s.abort());

    eprintln!("Auditing…");
    let mut checks = Vec::new();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ledger = with(&ledger, std::mem::take);
    checks.push((
        "every call answered as expected".to_owned(),
        (!ledger.failures.is_empty()).then(|| {
            format!(
                "{} unexpected answer(s), first: {}",
                ledger.failures.len(),
                ledger
                    .failures
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(" | ")
            )
        }),
    ));
    checks.push(audit_inbox(&mut admin, service, &users, &ledger).await?);
    let (emails_received, email_check) = audit_emails(&sink.messages(), &users, &ledger);
    checks.push(email_check);
    checks.push(audit_outbox(&outbox, &users, &ledger));
    let mut stream_events = 0;
    let mut stream_failures = Vec::new();
    for (i, got) in events.iter().enumerate() {
        let mut got = got.lock().unwrap_or_else(|e| e.into_inner()).clone();
        stream_events += got.len();
        got.sort_unstable();
        let mut expected = ledger.inbox[i].clone();
        expected.sort_unstable();
        if got != expected {
            stream_failures.push(format!(
                "{}: {} events for {} notifications{}",
                users[i].id,
                got.len(),
                expected.len(),
                if got.windows(2).any(|w| w[0] == w[1]) {
                    " (some twice)"
                } else {
                    ""
                }
            ));
        }
    }
    checks.push((
        format!("each of the {subscribers} onNew streams got every new item of its user once"),
        (!stream_failures.is_empty()).then(|| stream_failures.join("; ")),
    ));
    let memory_limit = rss_baseline + args.memory_slack_mb * 1_000_000 + rss_baseline / 10;
    checks.push((
        format!(
            "memory back to baseline (after {} <= {})",
            megabytes(rss_after as f64),
            megabytes(memory_limit as f64)
        ),
        (rss_after > memory_limit).then(|| {
            format!(
                "{} above the baseline",
                megabytes(rss_after.saturating_sub(rss_baseline) as f64)
            )
        }),
    ));
    Ok(Report {
        backend,
        seconds: args.duration,
        calls: ledger.calls,
        notifications: ledger.inbox.iter().map(Vec::len).sum(),
        emails_received,
        outbox,
        stream_events,
        churned: churned.load(Ordering::Relaxed),
        rss_baseline,
        rss_peak,
        rss_after,
        memory_limit,
        checks,
    })
}

/// The `n` of a soak event (`{"json":{"notification":{"title":"Soak #n",…}}}`).
fn soak_number(data: &str) -> Option<u64> {
    let value: Value = serde_json::from_str(data).ok()?;
    value["json"]["notification"]["title"]
        .as_str()?
        .strip_prefix("Soak #")?
        .parse()
        .ok()
}

/// The soak type, the users with their choices and sessions, and the groups.
async fn setup(admin: &mut Conn, service: Auth<'_>, count: usize) -> Result<Vec<User>> {
    admin
        .ok(
            true,
            "notificationTypes.upsert",
            service,
            json!({
                "key": TYPE,
                "description": "Soak test traffic",
                "titleTemplate": "Soak #{{ n }}",
                "messageTemplate": "Soak message {{ n }}",
                "channels": {"email": true, "inApp": true, "push": false},
            }),
        )
        .await?;
    let mut users: Vec<User> = (0..count).map(User::plan).collect();
    let entries: Vec<Value> = users
        .iter()
        .map(|u| json!({"id": u.id, "email": u.email, "name": u.id}))
        .collect();
    admin
        .ok(
            true,
            "users.upsertMany",
            service,
            json!({ "users": entries }),
        )
        .await?;
    // Users already there (the first start's admin) are notified too: they join in with
    // their default choices.
    let mut cursor = Value::Null;
    loop {
        let page = admin
            .ok(
                false,
                "users.list",
                service,
                json!({"limit": 1000, "cursor": cursor}),
            )
            .await?;
        for user in page["users"].as_array().into_iter().flatten() {
            let id = user["id"].as_str().unwrap_or_default();
            if !id.starts_with("soak-") {
                let email = user["email"].as_str();
                users.push(User {
                    id: id.to_owned(),
                    email: email.unwrap_or_default().to_owned(),
                    email_on: email.is_some(),
                    in_app_on: true,
                    rejected: false,
                    cookie: String::new(),
                });
            }
        }
        if page["hasMore"] != true {
            break;
        }
        cursor = page["nextCursor"].clone();
    }
    for user in &mut users {
        let session = admin
            .ok(true, "sessions.create", service, json!({"userId": user.id}))
            .await?;
        let token = session["token"]
            .as_str()
            .ok_or_else(|| format!("sessions.create answered {session}"))?;
        user.cookie = format!("tidings_session={token}");
        let auth = Auth::Cookie(&user.cookie);
        if !user.email_on {
            admin
                .ok(true, "notifications.disableAllEmail", auth, Value::Null)
                .await?;
        }
        if !user.in_app_on {
            admin
                .ok(
                    true,
                    "notifications.updatePreferences",
                    auth,
                    json!({"channel": "inApp", "type": TYPE, "enabled": false}),
                )
                .await?;
        }
    }
    Ok(users)
}

/// Creates the soak's groups (members by [`member`]); their ids, in order.
async fn groups(admin: &mut Conn, service: Auth<'_>, users: &[User]) -> Result<Vec<String>> {
    let mut ids = Vec::new();
    for g in 0..GROUPS {
        let members: Vec<&str> = (0..users.len())
            .filter(|&i| member(i, g))
            .map(|i| users[i].id.as_str())
            .collect();
        let group = admin
            .ok(
                true,
                "groups.create",
                service,
                json!({"name": format!("soak-{g}"), "userIds": members}),
            )
            .await?;
        ids.push(
            group["id"]
                .as_str()
                .ok_or_else(|| format!("groups.create answered {group}"))?
                .to_owned(),
        );
    }
    Ok(ids)
}

/// Runs every load task for `length`; the next free notify sequence number.
#[allow(clippy::too_many_arguments)]
async fn run_load(
    addr: SocketAddr,
    key: String,
    users: Arc<Vec<User>>,
    group_ids: Arc<[String]>,
    ledger: Shared,
    churned: Arc<AtomicUsize>,
    args: &SoakArgs,
    length: Duration,
    first: u64,
    seed: u64,
) -> u64 {
    let until = Instant::now() + length;
    let mut tasks = Vec::new();
    for r in 0..args.readers {
        let (users, ledger) = (users.clone(), ledger.clone());
        tasks.push(tokio::spawn(async move {
            read_inbox(
                addr,
                &users,
                &ledger,
                until,
                Rng::new(seed * 1_000 + u64::from(r)),
            )
            .await;
        }));
    }
    {
        let (users, ledger) = (users.clone(), ledger.clone());
        tasks.push(tokio::spawn(async move {
            churn(
                addr,
                &users,
                &ledger,
                &churned,
                until,
                Rng::new(seed * 1_000 + 999),
            )
            .await;
        }));
    }
    let interval = Duration::from_secs_f64(1.0 / args.notify_rate);
    let next = notifier(
        addr, &key, &users, &group_ids, &ledger, until, interval, first, seed,
    )
    .await;
    for task in tasks {
        let _ = task.await;
    }
    next
}

/// Sends notify calls every `interval` until `until`, recording what each should cause; the
/// next free sequence number.
#[allow(clippy::too_many_arguments)]
async fn notifier(
    addr: SocketAddr,
    key: &str,
    users: &[User],
    group_ids: &[String],
    ledger: &Shared,
    until: Instant,
    interval: Duration,
    mut n: u64,
    seed: u64,
) -> u64 {
    let mut conn = Conn::new(addr);
    let service = Auth::Key(key);
    let mut rng = Rng::new(seed * 1_000 + 500);
    let mut next_at = Instant::now();
    while Instant::now() < until {
        n += 1;
        let (recipients, selected) = choose_recipients(n, &mut rng, users, group_ids);
        let mut input = json!({
            "key": TYPE,
            "recipients": recipients,
            "data": {"n": n.to_string()},
        });
        let idempotent = n % 7 == 3;
        if idempotent {
            input["idempotencyKey"] = json!(format!("soak-{n}"));
        }
        let expected = selected.iter().filter(|&&i| users[i].any_channel()).count() as u64;
        let answer = conn
            .trpc(true, "notifications.notify", service, input.clone())
            .await;
        with(ledger, |l| {
            l.count("notifications.notify");
            match &answer {
                Ok((200, output)) => {
                    let count = output["usersNotified"]["count"].as_u64();
                    if count != Some(expected) {
                        l.fail(format!(
                            "notify #{n}: usersNotified {count:?}, expected {expected}"
                        ));
                    }
                    for &i in &selected {
                        if users[i].in_app_on {
                            l.inbox[i].push(n);
                        }
                        if users[i].email_on {
                            l.emails[i].push(n);
                        }
                    }
                }
                Ok((status, error)) => l.fail(format!("notify #{n}: {status} {error}")),
                Err(e) => l.fail(format!("notify #{n}: {e}")),
            }
        });
        if idempotent {
            // The same call again creates nothing and answers the same; other data under the
            // same key is a conflict.
            let again = conn
                .trpc(true, "notifications.notify", service, input.clone())
                .await;
            input["data"]["n"] = json!("other");
            let conflict = conn
                .trpc(true, "notifications.notify", service, input)
                .await;
            with(ledger, |l| {
                l.count("notifications.notify");
                l.count("notifications.notify");
                match again {
                    Ok((200, output))
                        if output["usersNotified"]["count"].as_u64() == Some(expected) => {}
                    other => l.fail(format!("notify #{n} replayed: {other:?}")),
                }
                match conflict {
                    Ok((409, error)) if error["data"]["code"] == "CONFLICT" => {}
                    other => l.fail(format!(
                        "notify #{n} with other data: {other:?}, expected CONFLICT"
                    )),
                }
            });
        }
        next_at += interval;
        tokio::time::sleep_until(next_at.into()).await;
    }
    n
}

/// The recipients of notify call `n` and the users they select.
fn choose_recipients(
    n: u64,
    rng: &mut Rng,
    users: &[User],
    group_ids: &[String],
) -> (Value, Vec<usize>) {
    let everyone = 0..users.len();
    match n % 20 {
        // Everyone.
        1 => (json!({"allUsers": true}), everyone.collect()),
        // Two groups, either, minus a few users.
        2 | 12 => {
            let (a, b) = (rng.below(GROUPS), rng.below(GROUPS));
            let excluded: HashSet<usize> = (0..5).map(|_| rng.below(users.len())).collect();
            let selected = everyone
                .filter(|&i| (member(i, a) || member(i, b)) && !excluded.contains(&i))
                .collect();
            let excluded: Vec<&str> = excluded.iter().map(|&i| users[i].id.as_str()).collect();
            (
                json!({
                    "userGroups": {"operator": "OR", "userGroupIds": [group_ids[a], group_ids[b]]},
                    "excludedUserIds": excluded,
                }),
                selected,
            )
        }
        // Two groups, both.
        7 => {
            let (a, b) = (rng.below(GROUPS), rng.below(GROUPS));
            (
                json!({"userGroups": {"operator": "AND", "userGroupIds": [group_ids[a], group_ids[b]]}}),
                everyone.filter(|&i| member(i, a) && member(i, b)).collect(),
            )
        }
        // A few users, one of them excluded again.
        _ => {
            let picked: HashSet<usize> = (0..1 + rng.below(20))
                .map(|_| rng.below(users.len()))
                .collect();
            let ids: Vec<&str> = picked.iter().map(|&i| users[i].id.as_str()).collect();
            let excluded = (picked.len() > 1).then(|| *picked.iter().next().unwrap_or(&0));
            let mut selected: Vec<usize> = picked
                .into_iter()
                .filter(|&i| Some(i) != excluded)
                .collect();
            selected.sort_unstable();
            let excluded: Vec<&str> = excluded.iter().map(|&i| users[i].id.as_str()).collect();
            (
                json!({"userIds": ids, "excludedUserIds": excluded}),
                selected,
            )
        }
    }
}

/// One inbox client: random users' reads and marks, 20 ms apart, until `until`.
async fn read_inbox(
    addr: SocketAddr,
    users: &[User],
    ledger: &Shared,
    until: Instant,
    mut rng: Rng,
) {
    let mut conn = Conn::new(addr);
    let mut step = 0u64;
    while Instant::now() < until {
        step += 1;
        let i = rng.below(users.len());
        let auth = Auth::Cookie(&users[i].cookie);
        let (procedure, mutation, input) = match step % 10 {
            3 => ("notifications.unreadCount", false, Value::Null),
            6 => ("notifications.counts", false, Value::Null),
            9 => ("notifications.markAllAsSeen", true, Value::Null),
            _ => (
                "notifications.list",
                false,
                json!({"unreadOnly": true, "limit": 20}),
            ),
        };
        let answer = conn.trpc(mutation, procedure, auth, input).await;
        let unread: Vec<String> = match &answer {
            Ok((200, output)) => output["notifications"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|item| item["id"].as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        };
        with(ledger, |l| {
            l.count(procedure);
            match &answer {
                Ok((200, _)) => {}
                Ok((status, error)) => l.fail(format!("{procedure}: {status} {error}")),
                Err(e) => l.fail(format!("{procedure}: {e}")),
            }
        });
        if !unread.is_empty() {
            let id = unread[rng.below(unread.len())].clone();
            let answer = conn
                .trpc(true, "notifications.markAsRead", auth, json!({ "id": id }))
                .await;
            with(ledger, |l| {
                l.count("notifications.markAsRead");
                match answer {
                    Ok((200, _)) => {
                        l.marked[i].insert(id);
                    }
                    Ok((status, error)) => l.fail(format!("markAsRead {id}: {status} {error}")),
                    Err(e) => l.fail(format!("markAsRead {id}: {e}")),
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Opens `notifications.onCounts` streams for random users, reads their first counts and
/// closes them, until `until`.
async fn churn(
    addr: SocketAddr,
    users: &[User],
    ledger: &Shared,
    churned: &AtomicUsize,
    until: Instant,
    mut rng: Rng,
) {
    while Instant::now() < until {
        let user = &users[rng.below(users.len())];
        let label = format!("onCounts stream of {}", user.id);
        let result = sse::read(
            &label,
            addr,
            None,
            "/api/trpc/notifications.onCounts",
            &user.cookie,
            |kind, frame, _| match kind {
                "connected" | "ping" => Ok(sse::Next::Continue),
                "message" if frame.contains("\"unread\"") => Ok(sse::Next::Stop),
                other => Err(format!("{label}: unexpected {other}: {frame}")),
            },
        )
        .await;
        with(ledger, |l| {
            l.count("notifications.onCounts");
            if let Err(e) = result {
                l.fail(e);
            }
        });
        churned.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Each user's soak notifications and unread ones in the database against the ledger.
async fn audit_inbox(
    admin: &mut Conn,
    service: Auth<'_>,
    users: &[User],
    ledger: &Ledger,
) -> Result<(String, Option<String>)> {
    let mut wrong = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let count = |read: Option<bool>| {
            let mut filter = json!({"recipient": user.id, "type": TYPE});
            if let Some(read) = read {
                filter["read"] = json!(read);
            }
            json!({"filter": filter, "meta": "filterCount", "limit": 1})
        };
        let all = admin
            .ok(false, "notifications.query", service, count(None))
            .await?;
        let unread = admin
            .ok(false, "notifications.query", service, count(Some(false)))
            .await?;
        let all = all["meta"]["filterCount"].as_u64();
        let unread = unread["meta"]["filterCount"].as_u64();
        let expected = ledger.inbox[i].len() as u64;
        let expected_unread = expected - ledger.marked[i].len() as u64;
        if all != Some(expected) || unread != Some(expected_unread) {
            wrong.push(format!(
                "{}: {all:?} notifications ({unread:?} unread), expected {expected} \
                 ({expected_unread})",
                user.id
            ));
        }
    }
    Ok((
        format!(
            "each user's notifications and unread count in the database ({} users)",
            users.len()
        ),
        (!wrong.is_empty()).then(|| {
            format!(
                "{} user(s) differ, e.g. {}",
                wrong.len(),
                wrong.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
            )
        }),
    ))
}

/// The messages the SMTP server accepted against the emails the ledger expects.
fn audit_emails(
    messages: &[Value],
    users: &[User],
    ledger: &Ledger,
) -> (usize, (String, Option<String>)) {
    let mut expected: HashMap<(String, u64), usize> = HashMap::new();
    for (i, user) in users.iter().enumerate() {
        if user.rejected {
            continue;
        }
        for &n in &ledger.emails[i] {
            *expected.entry((user.email.clone(), n)).or_default() += 1;
        }
    }
    let mut got: HashMap<(String, u64), usize> = HashMap::new();
    for m in messages {
        let n = m["subject"]
            .as_str()
            .and_then(|s| s.strip_prefix("Soak #"))
            .and_then(|s| s.parse().ok())
            .unwrap_or(u64::MAX);
        for to in m["to"].as_array().into_iter().flatten() {
            *got.entry((to.as_str().unwrap_or_default().to_owned(), n))
                .or_default() += 1;
        }
    }
    let missing = expected.keys().filter(|k| !got.contains_key(*k)).count();
    let twice: usize = got.values().filter(|&&c| c > 1).map(|c| c - 1).sum();
    let unexpected = got.keys().filter(|k| !expected.contains_key(*k)).count();
    let total: usize = expected.values().sum();
    (
        messages.len(),
        (
            format!("each of the {total} expected emails arrived once, and no other"),
            (missing + twice + unexpected > 0).then(|| {
                format!("{missing} missing, {twice} duplicate(s), {unexpected} unexpected")
            }),
        ),
    )
}

/// The outbox's final rows against the ledger: sent for deliverable addresses, failed for the
/// rejected ones, none left open.
fn audit_outbox(
    outbox: &HashMap<String, u64>,
    users: &[User],
    ledger: &Ledger,
) -> (String, Option<String>) {
    let (mut sent, mut failed) = (0u64, 0u64);
    for (i, user) in users.iter().enumerate() {
        let n = ledger.emails[i].len() as u64;
        if user.rejected {
            failed += n;
        } else {
            sent += n;
        }
    }
    let state = |s: &str| outbox.get(s).copied().unwrap_or(0);
    let actual = (
        state("sent"),
        state("failed"),
        state("pending") + state("sending"),
    );
    (
        format!("the outbox holds {sent} sent and {failed} failed email deliveries, none open"),
        (actual != (sent, failed, 0))
            .then(|| format!("sent {}, failed {}, open {}", actual.0, actual.1, actual.2)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soak_numbers_are_read_from_events() {
        assert_eq!(
            soak_number(r#"{"json":{"notification":{"id":"1","title":"Soak #42"}}}"#),
            Some(42)
        );
        assert_eq!(
            soak_number(r#"{"json":{"notification":{"title":"Other"}}}"#),
            None
        );
        assert_eq!(soak_number("not json"), None);
    }

    #[test]
    fn user_plans_cover_every_choice() {
        let users: Vec<User> = (0..30).map(User::plan).collect();
        assert!(users.iter().any(|u| !u.email_on));
        assert!(users.iter().any(|u| !u.in_app_on));
        assert!(users.iter().any(|u| !u.any_channel()));
        assert!(
            users
                .iter()
                .any(|u| u.rejected && u.email.starts_with("reject-"))
        );
        assert!((0..GROUPS).all(|g| (0..30).any(|i| member(i, g))));
    }

    fn two_users_with_emails() -> (Vec<User>, Ledger) {
        let users = vec![User::plan(3), User::plan(2)];
        assert!(users[1].rejected);
        let ledger = Ledger {
            emails: vec![vec![1, 2], vec![1]],
            ..Ledger::default()
        };
        (users, ledger)
    }

    #[test]
    fn the_email_audit_finds_missing_duplicate_and_unexpected_emails() {
        let (users, ledger) = two_users_with_emails();
        let mail = |to: &str, n: u64| json!({"to": [to], "subject": format!("Soak #{n}")});
        let exact = [mail(&users[0].email, 1), mail(&users[0].email, 2)];
        assert_eq!(audit_emails(&exact, &users, &ledger).1.1, None);
        let wrong = [
            mail(&users[0].email, 1),
            mail(&users[0].email, 1),
            mail(&users[1].email, 1),
        ];
        assert_eq!(
            audit_emails(&wrong, &users, &ledger).1.1.as_deref(),
            Some("1 missing, 1 duplicate(s), 1 unexpected")
        );
    }

    #[test]
    fn the_outbox_audit_expects_sent_and_failed_rows() {
        let (users, ledger) = two_users_with_emails();
        let outbox = |sent, failed, pending| -> HashMap<String, u64> {
            [("sent", sent), ("failed", failed), ("pending", pending)]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect()
        };
        assert_eq!(audit_outbox(&outbox(2, 1, 0), &users, &ledger).1, None);
        assert!(audit_outbox(&outbox(2, 1, 1), &users, &ledger).1.is_some());
        assert!(audit_outbox(&outbox(3, 0, 0), &users, &ledger).1.is_some());
    }

    #[test]
    fn recipients_follow_the_input() {
        let users: Vec<User> = (0..60).map(User::plan).collect();
        let groups: Vec<String> = (0..GROUPS).map(|g| format!("g{g}")).collect();
        let mut rng = Rng::new(7);
        for n in 0..40 {
            let (input, selected) = choose_recipients(n, &mut rng, &users, &groups);
            let unique: HashSet<usize> = selected.iter().copied().collect();
            assert_eq!(unique.len(), selected.len(), "{input}");
            if let Some(excluded) = input["excludedUserIds"].as_array() {
                for id in excluded {
                    assert!(selected.iter().all(|&i| users[i].id != *id), "{input}");
                }
            }
            if n % 20 == 1 {
                assert_eq!(selected.len(), users.len());
            }
        }
    }
}
