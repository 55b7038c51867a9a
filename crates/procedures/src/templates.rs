//! Notification templates: minijinja, sandboxed (no includes, no file access, bounded work) and
//! strict (a variable the data lacks is an error naming it, never an empty string).

use minijinja::{Environment, UndefinedBehavior, Value};
use tidings_domain::Error;

/// Enough for any reasonable notification; a template that loops more is refused.
const FUEL: u64 = 50_000;

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env
}

/// Checks that `source` parses; `field` names it in the error.
pub(crate) fn check(field: &str, source: &str) -> Result<(), Error> {
    let env = environment();
    env.template_from_str(source).map(|_| ()).map_err(|e| {
        Error::field(
            field,
            format!(
                "is not a valid template: {}",
                e.detail().unwrap_or("syntax error")
            ),
        )
    })
}

/// Renders `source` with `data`. A variable the template uses and `data` lacks is a
/// BAD_REQUEST naming it.
pub(crate) fn render(
    which: &str,
    kind: &str,
    source: &str,
    data: &serde_json::Map<String, serde_json::Value>,
) -> Result<String, Error> {
    let env = environment();
    let template = env
        .template_from_str(source)
        .map_err(|e| Error::field(which, format!("the template of {kind} is invalid: {e}")))?;
    let mut missing: Vec<String> = template
        .undeclared_variables(false)
        .into_iter()
        .filter(|name| !data.contains_key(name))
        .collect();
    if !missing.is_empty() {
        missing.sort();
        return Err(Error::field(
            "data",
            format!(
                "missing {} for the {which} template of {kind}",
                quote_list(&missing)
            ),
        ));
    }
    template
        .render(Value::from(minijinja::value::Serde(data)))
        .map_err(|e| {
            Error::field(
                "data",
                format!("cannot render the {which} template of {kind}: {e}"),
            )
        })
}

fn quote_list(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn data(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn renders_with_data() {
        let out = render(
            "message",
            "t",
            "#{{ n }}: {{ title }}",
            &data(json!({"n": 12, "title": "Login"})),
        );
        assert_eq!(out.unwrap(), "#12: Login");
    }

    #[test]
    fn a_missing_variable_is_named() {
        let err = render(
            "title",
            "ticketAssigned",
            "{{ a }} {{ b.c }}",
            &data(json!({"a": 1})),
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "data: missing `b` for the title template of ticketAssigned"
        );
        let err = render("title", "t", "{{ b.c }}", &data(json!({"b": {}}))).unwrap_err();
        assert!(
            err.message
                .starts_with("data: cannot render the title template of t"),
            "{}",
            err.message
        );
    }

    #[test]
    fn runaway_templates_stop() {
        let src =
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}";
        assert!(render("message", "t", src, &data(json!({}))).is_err());
    }

    #[test]
    fn syntax_errors_name_the_field() {
        assert!(
            check("titleTemplate", "{{ a ")
                .unwrap_err()
                .message
                .starts_with("titleTemplate: is not a valid template")
        );
        assert!(check("titleTemplate", "Hi {{ name }}").is_ok());
    }
}
