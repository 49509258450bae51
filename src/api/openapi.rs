//! `/openapi.json`, generated from the route table so that no route can be missing from it.

use serde_json::{json, Map, Value};

use super::access::Access;
use super::error::ErrorBody;
use super::routes::RouteSpec;
use utoipa::{PartialSchema, ToSchema};

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| json!({ "name": name, "in": "path", "required": true, "schema": { "type": "string" } }))
        .collect()
}

fn operation(
    spec: &RouteSpec,
    schemas: &mut Vec<(
        String,
        utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
    )>,
) -> Value {
    let mut op = Map::new();
    op.insert("summary".into(), json!(spec.summary));
    op.insert("tags".into(), json!([spec.tag]));
    op.insert(
        "operationId".into(),
        json!(format!("{} {}", spec.method, spec.path)),
    );
    let params = path_parameters(spec.path);
    if !params.is_empty() {
        op.insert("parameters".into(), Value::Array(params));
    }
    if let Some((name, collect)) = &spec.request {
        collect(schemas);
        op.insert(
            "requestBody".into(),
            json!({ "required": true, "content": { "application/json": { "schema": schema_ref(name) } } }),
        );
    }
    let (status, body) = &spec.response;
    let mut success = json!({ "description": "success" });
    if let Some((name, collect)) = body {
        collect(schemas);
        success["content"] = json!({ "application/json": { "schema": schema_ref(name) } });
    } else if let Some(content_type) = spec.response_type {
        success["content"] = json!({ content_type: { "schema": { "type": "string" } } });
    }
    let error = json!({ "description": "error", "content": { "application/json": { "schema": schema_ref("ErrorBody") } } });
    op.insert(
        "responses".into(),
        json!({ status.to_string(): success, "4XX": error, "5XX": error }),
    );
    match spec.access {
        Access::Public => {}
        Access::Device => {
            op.insert("security".into(), json!([{ "deviceToken": [] }]));
        }
        Access::Authenticated => {
            op.insert("security".into(), json!([{ "bearer": [] }]));
        }
        Access::AnyOf(roles) => {
            op.insert("security".into(), json!([{ "bearer": [] }]));
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            op.insert("x-roles".into(), json!(names));
        }
    }
    Value::Object(op)
}

/// The whole OpenAPI 3.1 document.
pub fn document(specs: &[RouteSpec]) -> Value {
    let mut schemas = vec![(ErrorBody::name().into_owned(), ErrorBody::schema())];
    let mut paths = Map::new();
    for spec in specs {
        let item = paths
            .entry(spec.path.to_owned())
            .or_insert_with(|| Value::Object(Map::new()));
        item[spec.method.as_str().to_lowercase()] = operation(spec, &mut schemas);
    }
    let components: Map<String, Value> = schemas
        .into_iter()
        .map(|(name, schema)| (name, serde_json::to_value(schema).unwrap_or(Value::Null)))
        .collect();
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "geoward",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "GPS location supervision for community corrections: officer API and operations.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": { "type": "http", "scheme": "bearer", "description": "an officer's session token (gwo_...)" },
                "deviceToken": { "type": "http", "scheme": "bearer", "description": "a device token (gwd_...); see docs/device-protocol.md" },
            },
        },
    })
}
