//! The local SMTP server the delivery benchmark and the soak send to:
//! `tests/support/smtp_sink.py` on aiosmtpd, which appends each message it accepts to a JSON
//! lines file (`from`, `to`, `subject`, `at`; the bodies are left out, see `--headers-only`
//! there).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{Result, TempDir, free_port, workspace_root};

/// Whether `python3` can import aiosmtpd; the error to show when it cannot.
pub fn check_available() -> Result<()> {
    let ok = Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err("python3 with aiosmtpd is needed: pip install aiosmtpd".into())
    }
}

/// The SMTP server, stopped when dropped.
pub struct Sink {
    child: Child,
    pub port: u16,
    out: PathBuf,
}

impl Sink {
    /// Starts `tests/support/smtp_sink.py` on a free port, writing to `dir/mail.jsonl`, with
    /// `extra` arguments (`--reject`, `--defer`, …), and waits until it accepts connections.
    pub fn start(dir: &TempDir, extra: &[&str]) -> Result<Self> {
        let port = free_port()?;
        let out = dir.join("mail.jsonl");
        let script = workspace_root().join("tests/support/smtp_sink.py");
        let child = Command::new("python3")
            .arg(&script)
            .args([
                "--port",
                &port.to_string(),
                "--no-fsync",
                "--headers-only",
                "--out",
            ])
            .arg(&out)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start python3 {}: {e}", script.display()))?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err("the SMTP server did not start (pip install aiosmtpd)".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Self { child, port, out })
    }

    /// Every message received so far, in arrival order.
    pub fn messages(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits for `n` messages in all, reading the file every 50 ms.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Result<Vec<Value>> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n {
                return Ok(got);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "only {} of {n} emails arrived within {timeout:?}",
                    got.len()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
