//! A real SMTP server for tests: `tests/support/smtp_sink.py` on aiosmtpd, started as a child
//! process on a port of its own, appending every message it accepts to a JSON-lines file.
//!
//! Used by `tests/tests/delivery.rs` and (by path) `crates/gateway/tests/delivery_crash.rs`,
//! so it needs nothing beyond std, tokio and serde_json.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One message the server accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// How the server answers.
#[derive(Clone, Debug, Default)]
pub struct SinkOptions {
    /// Recipients containing this get 550.
    pub reject: Option<String>,
    /// Recipients containing this get 451.
    pub defer: Option<String>,
    /// Each DATA answer waits this long.
    pub delay_ms: u64,
}

#[derive(Debug)]
pub struct SmtpSink {
    pub port: u16,
    out: PathBuf,
    options: SinkOptions,
    child: Option<Child>,
}

/// `tests/support/smtp_sink.py`, found from whichever crate of the workspace includes this file.
fn script() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join("tests/support/smtp_sink.py");
        if candidate.exists() || !dir.pop() {
            return candidate;
        }
    }
}

/// Whether `python3` with aiosmtpd is here. In CI (`CI` set) its absence fails the test, since
/// `.ci/run` installs it; elsewhere the test is skipped with a note.
pub fn available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3 with aiosmtpd is missing (.ci/run installs it with pip)"
        );
        eprintln!(
            "note: python3 with aiosmtpd is missing (pip install aiosmtpd); SMTP tests skipped"
        );
    }
    ok
}

/// A free port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl SmtpSink {
    /// A server on a free port, or `None` (with a note) without python3/aiosmtpd.
    pub async fn start(options: SinkOptions) -> Option<Self> {
        if !available() {
            return None;
        }
        let mut sink = Self::stopped(free_port(), options);
        sink.resume().await;
        Some(sink)
    }

    /// A server for `port` that is not running yet; [`SmtpSink::resume`] starts it.
    pub fn stopped(port: u16, options: SinkOptions) -> Self {
        let out =
            std::env::temp_dir().join(format!("tidings-smtp-{}-{port}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&out);
        Self {
            port,
            out,
            options,
            child: None,
        }
    }

    /// `smtp://127.0.0.1:<port>`, for `TIDINGS_SMTP_URL`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Starts (or restarts) the server and waits until it accepts connections.
    pub async fn resume(&mut self) {
        let mut command = Command::new("python3");
        command
            .arg(script())
            .args(["--port", &self.port.to_string()])
            .arg("--out")
            .arg(&self.out)
            .args(["--delay-ms", &self.options.delay_ms.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(r) = &self.options.reject {
            command.args(["--reject", r]);
        }
        if let Some(d) = &self.options.defer {
            command.args(["--defer", d]);
        }
        self.child = Some(command.spawn().expect("start the SMTP sink"));
        let deadline = Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(Instant::now() < deadline, "the SMTP sink did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server; what it received stays readable.
    pub fn pause(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<Mail> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .map(|v| Mail {
                from: v["from"].as_str().unwrap_or_default().to_owned(),
                to: v["to"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|t| t.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                subject: v["subject"].as_str().unwrap_or_default().to_owned(),
                text: v["text"].as_str().unwrap_or_default().replace("\r\n", "\n"),
                html: v["html"].as_str().unwrap_or_default().replace("\r\n", "\n"),
            })
            .collect()
    }

    /// Waits until at least `n` messages arrived (failing after `within`), then returns them all.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} emails within {within:?}, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.pause();
        let _ = std::fs::remove_file(&self.out);
    }
}
