//! Small helpers for messages about untrusted JSON input.

use serde_json::Value;

/// The name of a JSON value's kind, for error messages ("expected an array, got a string").
pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
