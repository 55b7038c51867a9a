//! The session layer: finds the caller's credentials (the `tidings_session` cookie or an
//! `Authorization: Bearer` key), resolves them to a caller, puts the result in the request's
//! extensions, and writes `Set-Cookie` only when a procedure changed the session.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use cookie::{Cookie, SameSite};
use tidings_procedures::{
    App, Caller, Credentials, Error, SESSION_COOKIE, SessionChange, SessionSlot, resolve_caller,
};

/// What the session layer learned about a request.
#[derive(Clone, Debug)]
pub struct RequestAuth {
    /// The caller, none, or why they could not be looked up (the database is down).
    pub caller: Result<Option<Caller>, Arc<Error>>,
    /// Whether the caller was found by the session cookie (and so needs the CSRF check).
    pub via_cookie: bool,
    /// Whether the request's `Origin`, if any, may make cookie-authenticated changes.
    pub origin_allowed: bool,
    pub session: SessionSlot,
}

#[derive(Clone, Debug)]
pub struct SessionState {
    pub app: App,
    pub allowed_origins: Arc<Vec<String>>,
    pub cookie_secure: bool,
}

pub fn credentials(headers: &HeaderMap) -> Credentials {
    let bearer_key = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|k| k.trim().to_owned());
    let session_token = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_owned());
    Credentials {
        session_token,
        bearer_key,
    }
}

/// An `Origin` is allowed when it is this server's own (same host) or a configured one.
pub(crate) fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let own = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| !host.is_empty() && rest == host);
    own || allowed.iter().any(|a| a == origin)
}

fn set_cookie(change: SessionChange, secure: bool) -> Option<HeaderValue> {
    let (value, max_age) = match change {
        SessionChange::Set { token, max_age } => (token, max_age.as_secs() as i64),
        SessionChange::Clear => (String::new(), 0),
    };
    let cookie = Cookie::build((SESSION_COOKIE, value))
        .http_only(true)
        .same_site(SameSite::Lax)
        .path("/")
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

pub async fn layer(
    State(state): State<SessionState>,
    mut request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let creds = credentials(headers);
    let via_cookie = creds.bearer_key.is_none() && creds.session_token.is_some();
    let origin_allowed = origin_allowed(headers, &state.allowed_origins);
    let session = SessionSlot::default();
    let caller = resolve_caller(&state.app, &creds, &session)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "could not resolve the caller");
            Arc::new(e)
        });
    request.extensions_mut().insert(RequestAuth {
        caller,
        via_cookie,
        origin_allowed,
        session: session.clone(),
    });
    let mut response = next.run(request).await;
    if let Some(value) = session
        .take()
        .and_then(|c| set_cookie(c, state.cookie_secure))
    {
        response.headers_mut().append(SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn finds_the_cookie_among_others() {
        let c = credentials(&headers(&[("cookie", "foo=1; tidings_session=abc; bar=2")]));
        assert_eq!(c.session_token.as_deref(), Some("abc"));
        assert_eq!(
            credentials(&headers(&[("cookie", "session=abc")])).session_token,
            None
        );
        let c = credentials(&headers(&[("authorization", "Bearer tdk_x")]));
        assert_eq!(c.bearer_key.as_deref(), Some("tdk_x"));
    }

    #[test]
    fn origins() {
        let allowed = vec!["https://app.example".to_owned()];
        let check = |pairs: &[(&'static str, &str)]| origin_allowed(&headers(pairs), &allowed);
        assert!(check(&[("host", "127.0.0.1:3000")]));
        assert!(check(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000")
        ]));
        assert!(check(&[("host", "x"), ("origin", "https://app.example")]));
        assert!(!check(&[
            ("host", "127.0.0.1:3000"),
            ("origin", "https://evil.example")
        ]));
    }

    #[test]
    fn cookie_attributes() {
        let set = SessionChange::Set {
            token: "t".into(),
            max_age: Duration::from_secs(60),
        };
        let v = set_cookie(set, false).unwrap();
        let v = v.to_str().unwrap();
        assert!(v.starts_with("tidings_session=t"), "{v}");
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=60"] {
            assert!(v.contains(attr), "{v} lacks {attr}");
        }
        assert!(!v.contains("Secure"));
        let cleared = set_cookie(SessionChange::Clear, true).unwrap();
        assert!(cleared.to_str().unwrap().contains("Max-Age=0"));
        assert!(cleared.to_str().unwrap().contains("Secure"));
    }
}
