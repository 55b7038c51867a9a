//! Running wrk (the HTTP load generator) and reading its report.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::util::{Result, on_path, run_captured, run_inherited};

/// Makes sure `wrk` is on `PATH`, installing Debian's package when it is not.
pub fn ensure_installed() -> Result<()> {
    if on_path("wrk") {
        return Ok(());
    }
    if !on_path("apt-get") {
        return Err(
            "wrk is not installed and there is no apt-get to install it with; \
                    install wrk (https://github.com/wg/wrk) and run again"
                .to_owned(),
        );
    }
    let root = run_captured(Command::new("id").arg("-u")).is_ok_and(|uid| uid.trim() == "0");
    let apt = |args: &[&str]| {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.args(["-n", "apt-get"]);
            c
        };
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        command
    };
    eprintln!("wrk is not installed: installing Debian's wrk package");
    // Try without refreshing the package lists first; refresh them when that fails.
    if run_inherited(apt(&["install", "-y", "-q", "wrk"]).stdout(std::process::Stdio::null()))
        .is_err()
    {
        run_inherited(apt(&["update", "-q"]).stdout(std::process::Stdio::null()))?;
        run_inherited(apt(&["install", "-y", "-q", "wrk"]).stdout(std::process::Stdio::null()))?;
    }
    if on_path("wrk") {
        Ok(())
    } else {
        Err("installed the wrk package, but wrk is still not on PATH".to_owned())
    }
}

/// The Lua script that gives every request the session cookie of a random user from
/// `tokens` (one token a line). Each wrk thread reads the file once and seeds its own
/// generator, so threads do not send the same sequence of users.
pub fn cookie_script(tokens: &Path) -> String {
    format!(
        r#"-- Written by `cargo xtask bench`: one random user's session cookie per request.
local tokens = {{}}
for line in io.lines([==[{path}]==]) do
  if #line > 0 then tokens[#tokens + 1] = "tidings_session=" .. line end
end
if #tokens == 0 then error("no session tokens in the tokens file") end

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

function init(args)
  math.randomseed(os.time() * 1000 + (thread_number or 0) * 7919)
end

local headers = {{}}
function request()
  headers["Cookie"] = tokens[math.random(#tokens)]
  return wrk.format(nil, nil, headers)
end
"#,
        path = tokens.display()
    )
}

/// What one wrk run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    pub requests: u64,
    pub requests_per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// Replies other than 2xx and 3xx.
    pub non_2xx: u64,
    /// Connect, read, write and timeout errors together.
    pub socket_errors: u64,
    pub socket_errors_text: Option<String>,
}

impl Measurement {
    /// Requests per second, p50 and p99, on one line.
    pub fn summary(&self) -> String {
        format!(
            "{} requests/s, p50 {}, p99 {}",
            crate::util::thousands(self.requests_per_second),
            crate::util::millis(self.p50),
            crate::util::millis(self.p99)
        )
    }
}

/// Load settings shared by every endpoint in a run.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub connections: u32,
    pub threads: u32,
    pub duration: Duration,
}

/// Runs wrk with `script` against `url` and reads its report.
pub fn run(url: &str, script: &Path, load: Load) -> Result<Measurement> {
    let output = run_captured(
        Command::new("wrk")
            .arg(format!("--threads={}", load.threads))
            .arg(format!("--connections={}", load.connections))
            .arg(format!("--duration={}s", load.duration.as_secs().max(1)))
            .arg("--timeout=5s")
            .arg("--latency")
            .arg(format!("--script={}", script.display()))
            .arg(url),
    )?;
    parse(&output).map_err(|e| format!("cannot read wrk's report ({e}):\n{output}"))
}

/// Reads `12.34us`, `1.05ms`, `2.00s`, `1.00m`.
fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let seconds = match unit {
        "us" => number / 1e6,
        "ms" => number / 1e3,
        "s" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        _ => return None,
    };
    Some(Duration::from_secs_f64(seconds))
}

/// Reads wrk's `--latency` report.
pub fn parse(output: &str) -> Result<Measurement> {
    let mut requests = None;
    let mut rps = None;
    let mut p50 = None;
    let mut p99 = None;
    let mut non_2xx = 0;
    let mut socket_errors = 0;
    let mut socket_errors_text = None;
    for line in output.lines() {
        let line = line.trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        if let Some(rest) = line.strip_prefix("Requests/sec:") {
            rps = rest.trim().parse::<f64>().ok();
        } else if let Some(rest) = line.strip_prefix("Non-2xx or 3xx responses:") {
            non_2xx = rest.trim().parse().map_err(|_| "bad Non-2xx line")?;
        } else if let Some(rest) = line.strip_prefix("Socket errors:") {
            // "connect 0, read 0, write 0, timeout 0"
            socket_errors = rest
                .split(',')
                .filter_map(|part| part.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum();
            socket_errors_text = Some(rest.trim().to_owned());
        } else if words.len() == 2 && words[0] == "50%" {
            p50 = parse_duration(words[1]);
        } else if words.len() == 2 && words[0] == "99%" {
            p99 = parse_duration(words[1]);
        } else if words.len() >= 3 && words[1] == "requests" && words[2] == "in" {
            requests = words[0].parse().ok();
        }
    }
    Ok(Measurement {
        requests: requests.ok_or("no request count")?,
        requests_per_second: rps.ok_or("no Requests/sec line")?,
        p50: p50.ok_or("no 50% latency")?,
        p99: p99.ok_or("no 99% latency")?,
        non_2xx,
        socket_errors,
        socket_errors_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPORT: &str = "Running 10s test @ http://127.0.0.1:8080/healthz
  2 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   635.91us    0.89ms  12.92ms   93.69%
    Req/Sec    56.20k     8.07k   62.00k    86.54%
  Latency Distribution
     50%  250.00us
     75%  491.00us
     90%  700.00us
     99%    5.00ms
  1124422 requests in 10.00s, 118.12MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec: 112438.43
Transfer/sec:     11.81MB
";

    #[test]
    fn reads_a_report() {
        let m = parse(REPORT).unwrap();
        assert_eq!(m.requests, 1_124_422);
        assert!((m.requests_per_second - 112_438.43).abs() < 1e-6);
        assert_eq!(m.p50, Duration::from_micros(250));
        assert_eq!(m.p99, Duration::from_millis(5));
        assert_eq!(m.non_2xx, 7);
        assert_eq!(m.socket_errors, 3);
    }

    #[test]
    fn reads_durations() {
        assert_eq!(parse_duration("1.50s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2.00m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("12"), None);
    }
}
