//! Small helpers shared by the benchmarks: errors, processes, temporary files, scratch
//! databases, the release binary and its server, a minimal HTTP client, the server's memory,
//! formatting.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use serde_json::Value;

/// An error for the person running the task: a sentence, no backtrace.
pub type Result<T, E = String> = std::result::Result<T, E>;

/// The workspace root (the parent of `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

/// A name no other run uses: process id and time.
pub fn unique_suffix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{}_{}", std::process::id(), nanos % 1_000_000_000_000)
}

/// A directory removed with everything in it when dropped.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Result<Self> {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", unique_suffix()));
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(Self(path))
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Which database engines a benchmark measures (`--backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Which {
    Sqlite,
    Postgres,
    Both,
}

impl Which {
    pub fn backends(self) -> &'static [Backend] {
        match self {
            Which::Sqlite => &[Backend::Sqlite],
            Which::Postgres => &[Backend::Postgres],
            Which::Both => &[Backend::Sqlite, Backend::Postgres],
        }
    }
}

/// One database engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn title(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

/// What every benchmark and the soak take about the server they start.
#[derive(Debug, clap::Args)]
pub struct ServerArgs {
    /// The PostgreSQL server, as a URL to a database to connect to for CREATE/DROP DATABASE;
    /// a run creates a database of its own there and drops it afterwards.
    #[arg(
        long,
        env = "TIDINGS_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres_url: String,
    /// Use target/release/tidings as it is instead of building it first.
    #[arg(long)]
    pub no_build: bool,
}

impl ServerArgs {
    /// The release binary, built first unless `--no-build`.
    pub fn binary(&self) -> Result<PathBuf> {
        release_binary(self.no_build)
    }
}

/// Builds the release binary (unless `no_build`) and returns its path.
pub fn release_binary(no_build: bool) -> Result<PathBuf> {
    let root = workspace_root();
    if !no_build {
        eprintln!("Building the release binary…");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        run_inherited(
            Command::new(cargo)
                .args(["build", "--release", "--quiet", "-p", "tidings-gateway"])
                .current_dir(&root),
        )?;
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_relative() {
                root.join(dir)
            } else {
                dir
            }
        })
        .unwrap_or_else(|| root.join("target"));
    let binary = target.join("release").join("tidings");
    if !binary.is_file() {
        return Err(format!(
            "{} does not exist; run without --no-build",
            binary.display()
        ));
    }
    Ok(binary)
}

/// A PostgreSQL database of the run's own, dropped when this is dropped.
#[derive(Debug)]
pub struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    pub fn url(&self) -> String {
        with_database(&self.admin_url, &self.name)
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        if let Err(e) = psql(&self.admin_url, &sql) {
            eprintln!("warning: could not drop database {}: {e}", self.name);
        }
    }
}

/// Runs one SQL command with psql; its unaligned, tuples-only output.
pub fn psql(url: &str, sql: &str) -> Result<String> {
    run_captured(
        Command::new("psql")
            .arg(url)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-tA", "-c", sql])
            .env("PGCONNECT_TIMEOUT", "5"),
    )
}

/// Replaces the database name in a PostgreSQL URL.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A database of the run's own: a SQLite file, or a PostgreSQL database dropped with this.
#[derive(Debug)]
pub struct ScratchDb {
    pub url: String,
    _pg: Option<PgDatabase>,
}

/// A fresh database for `backend`: a SQLite file in `dir`, or a new database on the PostgreSQL
/// server at `postgres_url` (a URL to a database to connect to for CREATE/DROP DATABASE).
/// `None`, with the reason printed, when PostgreSQL is asked for but not there.
pub fn scratch_database(
    backend: Backend,
    dir: &TempDir,
    postgres_url: &str,
) -> Result<Option<ScratchDb>> {
    match backend {
        Backend::Sqlite => Ok(Some(ScratchDb {
            url: format!("sqlite://{}?mode=rwc", dir.join("tidings.db").display()),
            _pg: None,
        })),
        Backend::Postgres => {
            if !on_path("psql") {
                println!("PostgreSQL skipped: psql is not installed");
                return Ok(None);
            }
            if let Err(e) = psql(postgres_url, "SELECT 1") {
                println!("PostgreSQL skipped: the server at {postgres_url} does not answer: {e}");
                return Ok(None);
            }
            let name = format!("tidings_bench_{}", unique_suffix());
            psql(postgres_url, &format!("CREATE DATABASE \"{name}\""))?;
            let db = PgDatabase {
                admin_url: postgres_url.to_owned(),
                name,
            };
            Ok(Some(ScratchDb {
                url: db.url(),
                _pg: Some(db),
            }))
        }
    }
}

/// Runs `tidings demo <args>` on `database_url`, its progress on standard error; its JSON
/// summary.
pub fn run_demo(binary: &Path, database_url: &str, args: &[String]) -> Result<Value> {
    let summary = run_captured(
        Command::new(binary)
            .arg("demo")
            .args(args)
            .env("TIDINGS_DATABASE_URL", database_url)
            .env("RUST_LOG", "warn")
            .stderr(Stdio::inherit()),
    )?;
    serde_json::from_str(summary.trim())
        .map_err(|e| format!("tidings demo printed {summary:?}: {e}"))
}

/// Starts `tidings serve` on a free port of 127.0.0.1 over `database_url`, with `env` added to
/// its environment and its output in `dir/server.log`, and waits until it answers.
pub fn start_server(
    binary: &Path,
    database_url: &str,
    dir: &TempDir,
    env: &[(&str, String)],
) -> Result<Server> {
    let port = free_port()?;
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .env("TIDINGS_DATABASE_URL", database_url)
        .env("TIDINGS_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        // Benchmarks hammer one session from one address, and a large fan-out may take longer
        // than a request is normally allowed: limits off.
        .env("TIDINGS_RATE_LIMIT_PER_IP", "0")
        .env("TIDINGS_RATE_LIMIT_PER_SESSION", "0")
        .env("TIDINGS_RATE_LIMIT_PER_SERVICE_KEY", "0")
        .env("TIDINGS_MAX_CONCURRENT_REQUESTS", "0")
        .env("TIDINGS_REQUEST_TIMEOUT_SECONDS", "0")
        .envs(env.iter().map(|(k, v)| (k, v)));
    Server::launch(
        command,
        ([127, 0, 0, 1], port).into(),
        &dir.join("server.log"),
        Duration::from_secs(60),
    )
}

/// Whether `program` can be started (it is on `PATH`).
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            let candidate = dir.join(program);
            candidate.is_file()
                && std::fs::metadata(&candidate)
                    .map(|m| {
                        use std::os::unix::fs::PermissionsExt;
                        m.permissions().mode() & 0o111 != 0
                    })
                    .unwrap_or(false)
        })
    })
}

/// A new service key named `name` from `tidings keys create` on `database_url`.
pub fn create_key(binary: &Path, database_url: &str, name: &str) -> Result<String> {
    let key = run_captured(
        Command::new(binary)
            .args(["keys", "create", "--name", name])
            .env("TIDINGS_DATABASE_URL", database_url)
            .env("RUST_LOG", "warn"),
    )?
    .trim()
    .to_owned();
    if key.is_empty() || key.contains(char::is_whitespace) {
        return Err(format!("tidings keys create printed {key:?}"));
    }
    Ok(key)
}

/// Runs a command to completion; its standard output on success, a readable error otherwise.
pub fn run_captured(command: &mut Command) -> Result<String> {
    let shown = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "{shown} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim(),
            String::from_utf8_lossy(&output.stdout).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs a command with its output going to the terminal; fails unless it succeeds.
pub fn run_inherited(command: &mut Command) -> Result<()> {
    let shown = format!("{command:?}");
    let status = command
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> Result<u16> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// A child process that is stopped (SIGTERM, then SIGKILL) when dropped.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub log: PathBuf,
}

impl Server {
    /// Starts `command`, a server that will listen on `addr`, with its output in `log`, and
    /// waits (up to `timeout`) until it answers.
    pub fn launch(
        mut command: Command,
        addr: SocketAddr,
        log: &Path,
        timeout: Duration,
    ) -> Result<Server> {
        let log_file = std::fs::File::create(log)
            .map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let stdout = log_file
            .try_clone()
            .map_err(|e| format!("cannot share the log file: {e}"))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", command.get_program()))?;
        let mut server = Server {
            child,
            addr,
            log: log.to_owned(),
        };
        server.wait_ready(timeout)?;
        Ok(server)
    }

    /// Waits until `GET /healthz` answers 200, or fails with the end of the server's log.
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "the server exited ({status}) before it was ready:\n{}",
                    tail(&self.log, 20)
                ));
            }
            if let Ok(reply) = http_get(self.addr, "/healthz", None)
                && reply.status == 200
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the server did not answer /healthz within {timeout:?}:\n{}",
                    tail(&self.log, 20)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Asks the server to drain and exit, and waits for it (killing it after 15 s).
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Server {
    /// How many lines of the server's log report an error.
    pub fn error_lines(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("ERROR"))
            .count()
    }
}

/// The last `lines` lines of a file, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// An HTTP reply: status and body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
}

/// `GET path` over HTTP/1.1 with `Connection: close`, optionally with a cookie. Enough for
/// the sanity checks before a load run; the load itself comes from wrk.
pub fn http_get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Result<Reply> {
    let io = |e: std::io::Error| format!("GET http://{addr}{path}: {e}");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(io)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(cookie) = cookie {
        request.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    parse_reply(&raw).ok_or_else(|| {
        let text = String::from_utf8_lossy(&raw);
        let head = text.split("\r\n\r\n").next().unwrap_or_default();
        format!("GET http://{addr}{path}: not an HTTP reply: {head:?}")
    })
}

/// `POST path` with a JSON body over HTTP/1.1 with `Connection: close`, optionally with a
/// bearer key, waiting at most `timeout` for the reply.
pub fn http_post_json(
    addr: SocketAddr,
    path: &str,
    bearer: Option<&str>,
    body: &str,
    timeout: Duration,
) -> Result<Reply> {
    let io = |e: std::io::Error| format!("POST http://{addr}{path}: {e}");
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_nodelay(true).map_err(io)?;
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    if let Some(key) = bearer {
        request.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    parse_reply(&raw).ok_or_else(|| {
        format!(
            "POST http://{addr}{path}: not an HTTP reply: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// A whole HTTP/1.1 reply (read until the server closed) as status and body.
fn parse_reply(raw: &[u8]) -> Option<Reply> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some(Reply { status, body })
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The session tokens `tidings demo --sessions-out` wrote, one per user, in user order.
pub fn read_tokens(path: &Path) -> Result<Vec<String>> {
    Ok(std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect())
}

/// A process's resident memory (`VmRSS` in `/proc/<pid>/status`), in bytes.
pub fn rss_bytes(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS:")
}

/// A process's anonymous resident memory in bytes (`RssAnon`: its heap and stacks, without the
/// file pages it maps, such as its own binary paged in as code runs for the first time,
/// which are the operating system's file cache).
pub fn heap_bytes(pid: u32) -> Result<u64> {
    status_kib(pid, "RssAnon:")
}

fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kib| kib * 1024)
        .ok_or_else(|| format!("{path} has no {field} line"))
}

/// Samples a process's resident memory every `every` on a thread of its own until stopped,
/// keeping the highest value seen.
#[derive(Debug)]
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<u64>,
}

impl RssSampler {
    pub fn start(pid: u32, every: Duration) -> Self {
        Self::start_with(pid, every, rss_bytes)
    }

    /// As [`RssSampler::start`], sampling with `read` (e.g. [`heap_bytes`]).
    pub fn start_with(pid: u32, every: Duration, read: fn(u32) -> Result<u64>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            loop {
                peak = peak.max(read(pid).unwrap_or(0));
                if stopping.load(Ordering::Relaxed) {
                    return peak;
                }
                std::thread::sleep(every);
            }
        });
        Self { stop, thread }
    }

    /// Stops sampling (after one last sample); the peak in bytes.
    pub fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(0)
    }
}

/// Bytes as megabytes (10^6 bytes), one decimal.
pub fn megabytes(bytes: f64) -> String {
    format!("{:.1} MB", bytes / 1e6)
}

/// The `q` quantile (0..=1) of sorted values, by the nearest-rank method.
pub fn quantile<T: Copy>(sorted: &[T], q: f64) -> Option<T> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Percent-encodes a query parameter's value (RFC 3986 unreserved characters stay).
pub fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `1234567.8` → `1,234,568`.
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A latency in milliseconds, with a precision that suits its size.
pub fn millis(value: Duration) -> String {
    let ms = value.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// A benchmark's figures for one backend.
pub trait BenchReport {
    fn print(&self);
    fn all_goals_met(&self) -> bool;
}

/// Measures each backend of `which` with `bench` (`None`: skipped), prints every report and a
/// summary; `Ok(false)` when a backend failed, nothing was measured, or (with `check`) a goal
/// was missed. `met` says what met its goals ("every inbox read", …).
pub fn run_backends<R: BenchReport>(
    which: Which,
    check: bool,
    met: &str,
    mut bench: impl FnMut(Backend) -> Result<Option<R>>,
) -> Result<bool> {
    let mut reports = Vec::new();
    let mut failed = false;
    for &backend in which.backends() {
        eprintln!("\n== {} ==", backend.title());
        match bench(backend) {
            Ok(Some(report)) => {
                report.print();
                reports.push(report);
            }
            Ok(None) => {}
            Err(e) => {
                eprintln!("{}: FAILED: {e}", backend.title());
                failed = true;
            }
        }
    }
    if reports.len() > 1 {
        println!("\nSummary");
        for report in &reports {
            report.print();
        }
    }
    let goals_met = reports.iter().all(R::all_goals_met);
    println!();
    if failed {
        println!("Result: a backend FAILED (see above)");
    } else if reports.is_empty() {
        println!("Result: nothing was measured");
    } else if goals_met {
        println!("Result: {met} met its goals");
    } else {
        println!("Result: some goals were MISSED (see the tables)");
    }
    Ok(!failed && !reports.is_empty() && (goals_met || !check))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1234567.8), "1,234,568");
        assert_eq!(millis(Duration::from_micros(1234)), "1.23 ms");
        assert_eq!(millis(Duration::from_micros(12345)), "12.3 ms");
        assert_eq!(
            url_encode(r#"{"json":{"limit":20}}"#),
            "%7B%22json%22%3A%7B%22limit%22%3A20%7D%7D"
        );
    }

    #[test]
    fn quantiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), Some(50));
        assert_eq!(quantile(&v, 0.99), Some(99));
        assert_eq!(quantile(&v, 1.0), Some(100));
        assert_eq!(quantile(&v, 0.0), Some(1));
        assert_eq!(quantile::<u32>(&[], 0.5), None);
    }

    #[test]
    fn replies_are_parsed() {
        let r = parse_reply(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "{}"));
        assert!(parse_reply(b"garbage").is_none());
    }

    #[test]
    fn database_names_are_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
    }

    #[test]
    fn dechunks() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
