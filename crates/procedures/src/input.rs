use serde::de::DeserializeOwned;
use serde_json::Value;
use tidings_domain::Error;

/// A procedure's input as the transport received it, decoded only if the procedure reads it.
#[derive(Clone, Debug, PartialEq)]
pub enum RawInput {
    /// No input (absent, or `null`).
    None,
    Json(Value),
    /// The transport could not parse the input; the message says why.
    Malformed(String),
}

impl RawInput {
    /// The input as a JSON value; absent input is `{}` so optional fields take their defaults.
    pub(crate) fn into_value(self) -> Result<Value, Error> {
        match self {
            RawInput::None | RawInput::Json(Value::Null) => Ok(Value::Object(Default::default())),
            RawInput::Json(value) => Ok(value),
            RawInput::Malformed(message) => Err(Error::bad_request(message)),
        }
    }
}

/// Decodes an input object into `T`, with an error that names the offending field.
pub(crate) fn decode<T: DeserializeOwned>(value: Value) -> Result<T, Error> {
    decode_at("", value)
}

/// As [`decode`], for an input found at `prefix` (such as `[3]` inside an array).
pub(crate) fn decode_at<T: DeserializeOwned>(prefix: &str, value: Value) -> Result<T, Error> {
    if !value.is_object() {
        let field = if prefix.is_empty() { "input" } else { prefix };
        return Err(Error::field(
            field,
            format!("must be an object, got {}", kind(&value)),
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let mut path = err.path().to_string();
        let mut inner = err.into_inner().to_string();
        // serde reports a missing field at its parent: name the field itself.
        if let Some(name) = inner
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            path = if path == "." {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            };
            inner = "is required".to_owned();
        }
        let field = match (prefix.is_empty(), path == ".") {
            (true, true) => "input".to_owned(),
            (true, false) => path,
            (false, true) => prefix.to_owned(),
            (false, false) => format!("{prefix}.{path}"),
        };
        Error::field(&field, inner)
    })
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Input {
        id: String,
        limit: Option<i64>,
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (json!({}), "id: is required"),
            (
                json!({"id": 1}),
                "id: invalid type: integer `1`, expected a string",
            ),
            (
                json!({"id": "a", "limit": "10"}),
                "limit: invalid type: string \"10\", expected i64",
            ),
            (
                json!({"id": "a", "nope": 1}),
                "nope: unknown field `nope`, expected `id` or `limit`",
            ),
            (json!("x"), "input: must be an object, got a string"),
        ];
        for (value, want) in cases {
            assert_eq!(decode::<Input>(value).unwrap_err().message, want);
        }
    }

    #[test]
    fn null_input_means_no_input() {
        assert_eq!(RawInput::Json(Value::Null).into_value().unwrap(), json!({}));
        assert_eq!(RawInput::None.into_value().unwrap(), json!({}));
    }
}
