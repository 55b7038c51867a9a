use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tidings_procedures::DeliveryConfig;

/// Everything Tidings reads from its environment, checked once at start.
#[derive(Clone, Debug)]
pub struct Config {
    /// `TIDINGS_DATABASE_URL`: `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// `TIDINGS_LISTEN`: the address to serve on.
    pub listen: SocketAddr,
    /// `TIDINGS_ALLOWED_ORIGINS`: other origins (comma-separated) allowed to call with cookies.
    pub allowed_origins: Vec<String>,
    /// `TIDINGS_COOKIE_SECURE`: mark the session cookie `Secure` (behind HTTPS).
    pub cookie_secure: bool,
    /// `TIDINGS_SESSION_TTL_SECONDS`: how long an unused session lives.
    pub session_ttl: Duration,
    /// `TIDINGS_ADMIN_EMAIL`: the first admin's email on an empty database.
    pub admin_email: String,
    /// `TIDINGS_SSE_PING_SECONDS`: a subscription stream pings after this long without events.
    pub sse_ping: Duration,
    /// `TIDINGS_MAX_SUBSCRIPTIONS`: open subscriptions per process.
    pub max_subscriptions: usize,
    /// `TIDINGS_MAX_SUBSCRIPTIONS_PER_USER`: open subscriptions per user (and per WebSocket).
    pub max_subscriptions_per_user: usize,
    /// Request limits, shutdown and the client address: see [`Limits`].
    pub limits: Limits,
    /// `TIDINGS_SMTP_URL`, `TIDINGS_MAIL_FROM`, `TIDINGS_DELIVERY_*`, `TIDINGS_VAPID_SUBJECT`.
    pub delivery: DeliveryConfig,
}

/// How much one client may ask, and how the process stops. Rates are requests per second with
/// bursts of twice that; 0 turns a limit off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `TIDINGS_RATE_LIMIT_PER_IP`: requests per second from one client address.
    pub per_ip: u32,
    /// `TIDINGS_RATE_LIMIT_PER_SESSION`: requests per second with one session cookie.
    pub per_session: u32,
    /// `TIDINGS_RATE_LIMIT_PER_SERVICE_KEY`: requests per second with one service key.
    pub per_service_key: u32,
    /// `TIDINGS_TRUSTED_PROXIES`: proxy addresses whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpAddr>,
    /// `TIDINGS_LOGIN_FAILURES_PER_MINUTE`: failed sign-ins per email and per address.
    pub login_failures_per_minute: u32,
    /// `TIDINGS_REQUEST_TIMEOUT_SECONDS`: longest time to answer a request (not a stream).
    pub request_timeout: Option<Duration>,
    /// `TIDINGS_MAX_CONCURRENT_REQUESTS`: requests served at once; more are refused.
    pub max_concurrent_requests: usize,
    /// `TIDINGS_MAX_BATCH_SIZE`: calls in one tRPC batch.
    pub max_batch_size: usize,
    /// `TIDINGS_SHUTDOWN_GRACE_SECONDS`: how long a stopping process waits for work to finish.
    pub shutdown_grace: Duration,
}

/// A whole number from `min` to `max`, or the variable's error.
fn number(
    variable: &'static str,
    value: Option<String>,
    default: u64,
    (min, max): (u64, u64),
) -> Result<u64, ConfigError> {
    let Some(text) = value else {
        return Ok(default);
    };
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError {
            variable,
            reason: format!("must be a whole number from {min} to {max}, got {text:?}"),
        }),
    }
}

/// A configuration variable with a value Tidings cannot use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.variable, self.reason)
    }
}

impl std::error::Error for ConfigError {}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://tidings.db?mode=rwc";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:3000";

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let err = |variable: &'static str, reason: String| ConfigError { variable, reason };

        let database_url =
            get("TIDINGS_DATABASE_URL").unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned());
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| database_url.starts_with(p))
        {
            return Err(err(
                "TIDINGS_DATABASE_URL",
                format!("must start with sqlite: or postgres://, got {database_url:?}"),
            ));
        }

        let listen_text = get("TIDINGS_LISTEN").unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = listen_text.parse().map_err(|_| {
            err(
                "TIDINGS_LISTEN",
                format!("must be an address such as 127.0.0.1:3000, got {listen_text:?}"),
            )
        })?;

        let allowed_origins = match get("TIDINGS_ALLOWED_ORIGINS") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .map(|o| {
                    if (o.starts_with("http://") || o.starts_with("https://"))
                        && !o[8..].contains('/')
                    {
                        Ok(o)
                    } else {
                        Err(err(
                            "TIDINGS_ALLOWED_ORIGINS",
                            format!("{o:?} is not an origin such as https://app.example.com"),
                        ))
                    }
                })
                .collect::<Result<_, _>>()?,
        };

        let cookie_secure = match get("TIDINGS_COOKIE_SECURE").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(err(
                    "TIDINGS_COOKIE_SECURE",
                    format!("must be true or false, got {other:?}"),
                ));
            }
        };

        let session_ttl = match get("TIDINGS_SESSION_TTL_SECONDS") {
            None => Duration::from_secs(30 * 24 * 60 * 60),
            Some(text) => match text.parse::<u64>() {
                Ok(s) if (60..=366 * 24 * 60 * 60).contains(&s) => Duration::from_secs(s),
                _ => {
                    return Err(err(
                        "TIDINGS_SESSION_TTL_SECONDS",
                        format!("must be a number of seconds from 60 to 31622400, got {text:?}"),
                    ));
                }
            },
        };

        let admin_email =
            get("TIDINGS_ADMIN_EMAIL").unwrap_or_else(|| "admin@tidings.local".to_owned());

        let sse_ping = Duration::from_secs(number(
            "TIDINGS_SSE_PING_SECONDS",
            get("TIDINGS_SSE_PING_SECONDS"),
            10,
            (1, 300),
        )?);
        let max_subscriptions = number(
            "TIDINGS_MAX_SUBSCRIPTIONS",
            get("TIDINGS_MAX_SUBSCRIPTIONS"),
            50_000,
            (1, 1_000_000),
        )? as usize;
        let max_subscriptions_per_user = number(
            "TIDINGS_MAX_SUBSCRIPTIONS_PER_USER",
            get("TIDINGS_MAX_SUBSCRIPTIONS_PER_USER"),
            20,
            (1, 10_000),
        )? as usize;

        let rate = |variable: &'static str, default: u64| {
            number(variable, get(variable), default, (0, 1_000_000)).map(|n| n as u32)
        };
        let trusted_proxies = match get("TIDINGS_TRUSTED_PROXIES") {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(|a| {
                    a.parse::<IpAddr>().map_err(|_| {
                        err(
                            "TIDINGS_TRUSTED_PROXIES",
                            format!("{a:?} is not an IP address such as 10.0.0.1"),
                        )
                    })
                })
                .collect::<Result<_, _>>()?,
        };
        let timeout = number(
            "TIDINGS_REQUEST_TIMEOUT_SECONDS",
            get("TIDINGS_REQUEST_TIMEOUT_SECONDS"),
            60,
            (0, 86_400),
        )?;
        let limits = Limits {
            per_ip: rate("TIDINGS_RATE_LIMIT_PER_IP", 500)?,
            per_session: rate("TIDINGS_RATE_LIMIT_PER_SESSION", 100)?,
            per_service_key: rate("TIDINGS_RATE_LIMIT_PER_SERVICE_KEY", 2000)?,
            trusted_proxies,
            login_failures_per_minute: number(
                "TIDINGS_LOGIN_FAILURES_PER_MINUTE",
                get("TIDINGS_LOGIN_FAILURES_PER_MINUTE"),
                10,
                (0, 1_000_000),
            )? as u32,
            request_timeout: (timeout > 0).then(|| Duration::from_secs(timeout)),
            max_concurrent_requests: number(
                "TIDINGS_MAX_CONCURRENT_REQUESTS",
                get("TIDINGS_MAX_CONCURRENT_REQUESTS"),
                1024,
                (0, 1_000_000),
            )? as usize,
            max_batch_size: number(
                "TIDINGS_MAX_BATCH_SIZE",
                get("TIDINGS_MAX_BATCH_SIZE"),
                100,
                (1, 10_000),
            )? as usize,
            shutdown_grace: Duration::from_secs(number(
                "TIDINGS_SHUTDOWN_GRACE_SECONDS",
                get("TIDINGS_SHUTDOWN_GRACE_SECONDS"),
                20,
                (0, 3600),
            )?),
        };
        let delivery = delivery(&get)?;

        Ok(Self {
            database_url,
            listen,
            allowed_origins,
            cookie_secure,
            session_ttl,
            admin_email,
            sse_ping,
            max_subscriptions,
            max_subscriptions_per_user,
            limits,
            delivery,
        })
    }
}

/// The delivery settings, each variable checked on its own.
fn delivery(get: &dyn Fn(&str) -> Option<String>) -> Result<DeliveryConfig, ConfigError> {
    let err = |variable: &'static str, reason: String| ConfigError { variable, reason };
    let defaults = DeliveryConfig::default();
    let smtp_url = get("TIDINGS_SMTP_URL");
    if let Some(url) = &smtp_url
        && !(url.starts_with("smtp://") || url.starts_with("smtps://"))
    {
        return Err(err(
            "TIDINGS_SMTP_URL",
            format!("must start with smtp:// or smtps://, got {url:?}"),
        ));
    }
    let mail_from = get("TIDINGS_MAIL_FROM").unwrap_or(defaults.mail_from);
    if !mail_from.contains('@') {
        return Err(err(
            "TIDINGS_MAIL_FROM",
            format!("must be an address such as Tidings <no-reply@example.com>, got {mail_from:?}"),
        ));
    }
    let vapid_subject = get("TIDINGS_VAPID_SUBJECT").unwrap_or(defaults.vapid_subject);
    if !(vapid_subject.starts_with("mailto:") || vapid_subject.starts_with("https://")) {
        return Err(err(
            "TIDINGS_VAPID_SUBJECT",
            format!("must be a mailto: or https: URL, got {vapid_subject:?}"),
        ));
    }
    let enabled = match get("TIDINGS_DELIVERY_WORKER").as_deref() {
        None | Some("true") | Some("1") => true,
        Some("false") | Some("0") => false,
        Some(other) => {
            return Err(err(
                "TIDINGS_DELIVERY_WORKER",
                format!("must be true or false, got {other:?}"),
            ));
        }
    };
    let n = |variable: &'static str, default: u64, range: (u64, u64)| {
        number(variable, get(variable), default, range)
    };
    Ok(DeliveryConfig {
        smtp_url,
        mail_from,
        max_attempts: n(
            "TIDINGS_DELIVERY_MAX_ATTEMPTS",
            defaults.max_attempts.into(),
            (1, 100),
        )? as u32,
        base_delay: Duration::from_millis(n(
            "TIDINGS_DELIVERY_RETRY_BASE_MS",
            defaults.base_delay.as_millis() as u64,
            (10, 3_600_000),
        )?),
        lease: Duration::from_secs(n(
            "TIDINGS_DELIVERY_LEASE_SECONDS",
            defaults.lease.as_secs(),
            (1, 3600),
        )?),
        batch: n("TIDINGS_DELIVERY_BATCH", defaults.batch.into(), (1, 1000))? as u32,
        concurrency: n(
            "TIDINGS_DELIVERY_CONCURRENCY",
            defaults.concurrency as u64,
            (1, 256),
        )? as usize,
        poll: Duration::from_millis(n(
            "TIDINGS_DELIVERY_POLL_MS",
            defaults.poll.as_millis() as u64,
            (10, 60_000),
        )?),
        vapid_subject,
        enabled,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults() {
        let c = config(&[]).unwrap();
        assert_eq!(c.database_url, DEFAULT_DATABASE_URL);
        assert_eq!(c.listen.to_string(), DEFAULT_LISTEN);
        assert!(!c.cookie_secure);
    }

    #[test]
    fn errors_name_the_variable() {
        let cases = [
            ("TIDINGS_LISTEN", "nope"),
            ("TIDINGS_DATABASE_URL", "mysql://x"),
            ("TIDINGS_COOKIE_SECURE", "yes"),
            ("TIDINGS_SESSION_TTL_SECONDS", "10"),
            ("TIDINGS_ALLOWED_ORIGINS", "app.example.com"),
            ("TIDINGS_RATE_LIMIT_PER_IP", "-1"),
            ("TIDINGS_RATE_LIMIT_PER_SESSION", "many"),
            ("TIDINGS_TRUSTED_PROXIES", "10.0.0.0/8"),
            ("TIDINGS_MAX_BATCH_SIZE", "0"),
            ("TIDINGS_SHUTDOWN_GRACE_SECONDS", "1h"),
            ("TIDINGS_REQUEST_TIMEOUT_SECONDS", "x"),
            ("TIDINGS_SMTP_URL", "http://mail"),
            ("TIDINGS_MAIL_FROM", "nobody"),
            ("TIDINGS_DELIVERY_MAX_ATTEMPTS", "0"),
            ("TIDINGS_DELIVERY_LEASE_SECONDS", "x"),
            ("TIDINGS_VAPID_SUBJECT", "me"),
        ];
        for (variable, value) in cases {
            let e = config(&[(variable, value)]).unwrap_err();
            assert_eq!(e.variable, variable);
            assert!(e.to_string().starts_with(variable), "{e}");
        }
    }

    #[test]
    fn limits() {
        let c = config(&[]).unwrap();
        assert_eq!(c.limits.request_timeout, Some(Duration::from_secs(60)));
        assert_eq!(c.limits.login_failures_per_minute, 10);
        let c = config(&[
            ("TIDINGS_RATE_LIMIT_PER_SESSION", "0"),
            ("TIDINGS_REQUEST_TIMEOUT_SECONDS", "0"),
            ("TIDINGS_TRUSTED_PROXIES", "10.0.0.1, ::1"),
        ])
        .unwrap();
        assert_eq!(c.limits.per_session, 0);
        assert_eq!(c.limits.request_timeout, None);
        assert_eq!(c.limits.trusted_proxies.len(), 2);
    }

    #[test]
    fn origins() {
        let c = config(&[(
            "TIDINGS_ALLOWED_ORIGINS",
            "https://a.example, http://localhost:5173/",
        )])
        .unwrap();
        assert_eq!(
            c.allowed_origins,
            ["https://a.example", "http://localhost:5173"]
        );
    }
}
