use std::fmt;

/// Every way a procedure can fail, as the client sees it.
///
/// The one `match` in [`ErrorCode::wire`] maps each variant to its tRPC key, JSON-RPC number and
/// HTTP status, so a new variant does not compile until it is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    ParseError,
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotSupported,
    Conflict,
    PayloadTooLarge,
    UnsupportedMediaType,
    TooManyRequests,
    InternalServerError,
    ServiceUnavailable,
}

impl ErrorCode {
    /// The tRPC key, the numeric code and the HTTP status of this error.
    pub const fn wire(self) -> (&'static str, i32, u16) {
        match self {
            ErrorCode::ParseError => ("PARSE_ERROR", -32700, 400),
            ErrorCode::BadRequest => ("BAD_REQUEST", -32600, 400),
            ErrorCode::Unauthorized => ("UNAUTHORIZED", -32001, 401),
            ErrorCode::Forbidden => ("FORBIDDEN", -32003, 403),
            ErrorCode::NotFound => ("NOT_FOUND", -32004, 404),
            ErrorCode::MethodNotSupported => ("METHOD_NOT_SUPPORTED", -32005, 405),
            ErrorCode::Conflict => ("CONFLICT", -32009, 409),
            ErrorCode::PayloadTooLarge => ("PAYLOAD_TOO_LARGE", -32013, 413),
            ErrorCode::UnsupportedMediaType => ("UNSUPPORTED_MEDIA_TYPE", -32015, 415),
            ErrorCode::TooManyRequests => ("TOO_MANY_REQUESTS", -32029, 429),
            ErrorCode::InternalServerError => ("INTERNAL_SERVER_ERROR", -32603, 500),
            ErrorCode::ServiceUnavailable => ("SERVICE_UNAVAILABLE", -32603, 503),
        }
    }

    pub const fn key(self) -> &'static str {
        self.wire().0
    }

    pub const fn number(self) -> i32 {
        self.wire().1
    }

    pub const fn http_status(self) -> u16 {
        self.wire().2
    }
}

/// An error with the message the client may see.
///
/// Internal failures keep their cause in `source` for the log; the client only ever sees
/// `message`, which for internal errors is generic.
#[derive(Debug)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    pub source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    /// For `TOO_MANY_REQUESTS`: how long the caller should wait (the `Retry-After` header).
    pub retry_after: Option<std::time::Duration>,
}

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            source: None,
            retry_after: None,
        }
    }

    /// `TOO_MANY_REQUESTS`: try again after `wait`.
    pub fn too_many_requests(message: impl Into<String>, wait: std::time::Duration) -> Self {
        Self {
            retry_after: Some(wait),
            ..Self::new(ErrorCode::TooManyRequests, message)
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    /// A validation failure of one input field: `field: reason`.
    pub fn field(field: &str, reason: impl fmt::Display) -> Self {
        Self::new(ErrorCode::BadRequest, format!("{field}: {reason}"))
    }

    pub fn unauthorized() -> Self {
        Self::new(ErrorCode::Unauthorized, "Not authenticated")
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Conflict, message)
    }

    /// An internal failure: the client sees a generic message, the log sees `source`.
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            code: ErrorCode::InternalServerError,
            message: "Internal server error".to_owned(),
            source: Some(Box::new(source)),
            retry_after: None,
        }
    }

    /// An internal failure described by `reason` alone (no error value to keep): the client
    /// sees a generic message, the log sees the reason.
    pub fn internal_reason(reason: impl Into<String>) -> Self {
        Self::internal(std::io::Error::other(reason.into()))
    }

    pub fn unavailable(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            code: ErrorCode::InternalServerError,
            message: "The database is unavailable, try again shortly".to_owned(),
            source: Some(Box::new(source)),
            retry_after: None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.key(), self.message)?;
        if let Some(source) = &self.source {
            write!(f, " ({source})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_trpc_table() {
        let table = [
            (ErrorCode::BadRequest, "BAD_REQUEST", -32600, 400),
            (ErrorCode::Unauthorized, "UNAUTHORIZED", -32001, 401),
            (ErrorCode::Forbidden, "FORBIDDEN", -32003, 403),
            (ErrorCode::NotFound, "NOT_FOUND", -32004, 404),
            (
                ErrorCode::MethodNotSupported,
                "METHOD_NOT_SUPPORTED",
                -32005,
                405,
            ),
            (ErrorCode::Conflict, "CONFLICT", -32009, 409),
            (ErrorCode::PayloadTooLarge, "PAYLOAD_TOO_LARGE", -32013, 413),
            (
                ErrorCode::UnsupportedMediaType,
                "UNSUPPORTED_MEDIA_TYPE",
                -32015,
                415,
            ),
            (ErrorCode::TooManyRequests, "TOO_MANY_REQUESTS", -32029, 429),
            (
                ErrorCode::InternalServerError,
                "INTERNAL_SERVER_ERROR",
                -32603,
                500,
            ),
            (ErrorCode::ParseError, "PARSE_ERROR", -32700, 400),
        ];
        for (code, key, number, status) in table {
            assert_eq!(code.wire(), (key, number, status), "{code:?}");
        }
    }

    #[test]
    fn internal_errors_hide_their_cause() {
        let err = Error::internal(std::io::Error::other("disk on fire"));
        assert_eq!(err.message, "Internal server error");
        assert!(err.to_string().contains("disk on fire"));
    }
}
