use chrono::{DateTime, SecondsFormat, Utc};

/// UTC ISO-8601 with milliseconds and `Z`, as every timestamp on the wire.
pub fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millis_and_z() {
        let at = DateTime::parse_from_rfc3339("2024-01-15T10:30:00.123456+00:00").unwrap();
        assert_eq!(
            format_timestamp(at.with_timezone(&Utc)),
            "2024-01-15T10:30:00.123Z"
        );
    }
}
