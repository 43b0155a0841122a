//! The OpenAPI 3.1 document of the HTTP API, generated from the wire contract
//! (`mediahost_api`) and the handlers' `#[utoipa::path]` descriptions, served at
//! `/openapi.json`.
//!
//! A test reads the router's source and checks that every route it registers is described
//! here, so a new endpoint cannot ship undocumented.

use axum::Json;
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{jobs, objects, presets, queue, uploads};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "mediahost",
        description = "Runs FFmpeg media jobs from versioned presets that are sandboxed WebAssembly \
                       components. Every error is an RFC 9457 problem document with a stable `code`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    paths(
        jobs::submit, jobs::list, jobs::get, jobs::events, jobs::logs, jobs::replay, jobs::cancel,
        queue::depth,
        uploads::create, objects::put_object, objects::get_object,
        presets::list, presets::show, presets::show_version, presets::publish, presets::yank,
        presets::dry_run,
        super::healthz, super::readyz, super::metrics, openapi_json,
    ),
    components(schemas(mediahost_api::WebhookEvent, mediahost_api::JobEventKind)),
    modifiers(&Tokens),
    tags(
        (name = "jobs", description = "Submit jobs and follow them"),
        (name = "uploads", description = "Put input files into the host's storage"),
        (name = "presets", description = "The preset catalog: list, publish, yank, dry-run"),
        (name = "service", description = "Health, readiness, metrics and this document"),
    ),
)]
pub struct ApiDoc;

/// The two bearer tokens: `--api-tokens` for the job API, the admin token for publishing.
struct Tokens;

impl Modify for Tokens {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for name in ["api_token", "admin_token"] {
            components.add_security_scheme(
                name,
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The document as served: utoipa's, plus what its types cannot say (an event's `data:` is a
/// JSON-encoded [`mediahost_api::Job`]).
pub fn document() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    let data = &mut doc["components"]["schemas"]["JobEventFrame"]["properties"]["data"];
    data["contentMediaType"] = json!("application/json");
    data["contentSchema"] = json!({"$ref": "#/components/schemas/Job"});
    doc
}

/// `GET /openapi.json`.
#[utoipa::path(
    get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "This document (OpenAPI 3.1)", body = Object)),
)]
pub async fn openapi_json() -> Json<Value> {
    Json(document())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The dashboard's HTML pages and assets: the routes that are not API and so not described.
    const PAGES: [&str; 7] = [
        "GET /",
        "GET /dashboard",
        "GET /dashboard/",
        "POST /dashboard/login",
        "POST /dashboard/logout",
        "GET /dashboard/app.js",
        "GET /dashboard/style.css",
    ];

    /// Every `.route("<path>", <method>(...)...)` the router's sources register (the API's and
    /// the dashboard's), as `METHOD path` with axum's `{*rest}` written as OpenAPI's `{rest}`.
    fn registered_routes() -> BTreeSet<String> {
        let source = [include_str!("mod.rs"), include_str!("dashboard.rs")].concat();
        let mut routes = BTreeSet::new();
        for call in source.split(".route(").skip(1) {
            let call = call.split(".route_layer(").next().unwrap_or(call);
            let call = call.split(".merge(").next().unwrap_or(call);
            let path = call
                .split('"')
                .nth(1)
                .expect("a route names its path first");
            let path = path.replace("{*", "{");
            let handlers = &call[call.find(',').expect("a route has handlers")..];
            for method in ["get", "post", "put", "delete", "patch"] {
                let called = handlers
                    .match_indices(&format!("{method}("))
                    .any(|(i, _)| i == 0 || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric());
                if called {
                    routes.insert(format!("{} {path}", method.to_uppercase()));
                }
            }
        }
        routes
    }

    fn documented_routes(doc: &Value) -> BTreeSet<String> {
        let mut routes = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for method in item.as_object().expect("a path item").keys() {
                routes.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
        routes
    }

    #[test]
    fn the_document_describes_every_route_the_router_registers() {
        let doc = document();
        let mut registered = registered_routes();
        for page in PAGES {
            assert!(
                registered.remove(page),
                "{page} is no longer a dashboard route"
            );
        }
        assert!(registered.len() >= 20, "{registered:?}");
        let documented = documented_routes(&doc);
        let missing: Vec<_> = registered.difference(&documented).collect();
        assert!(
            missing.is_empty(),
            "routes without a description: {missing:?}"
        );
        let stale: Vec<_> = documented.difference(&registered).collect();
        assert!(
            stale.is_empty(),
            "described routes the router lacks: {stale:?}"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_and_every_reference_resolves() {
        let doc = document();
        assert_eq!(doc["openapi"], "3.1.0");
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut refs = Vec::new();
        fn collect(v: &Value, refs: &mut Vec<String>) {
            match v {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        refs.push(r.clone());
                    }
                    map.values().for_each(|v| collect(v, refs));
                }
                Value::Array(items) => items.iter().for_each(|v| collect(v, refs)),
                _ => {}
            }
        }
        collect(&doc, &mut refs);
        assert!(refs.len() > 20);
        for r in refs {
            let name = r.strip_prefix("#/components/schemas/").expect(&r);
            assert!(schemas.contains_key(name), "{r} does not resolve");
        }
        let data = &schemas["JobEventFrame"]["properties"]["data"];
        assert_eq!(data["contentSchema"]["$ref"], "#/components/schemas/Job");
        for name in [
            "Job",
            "Problem",
            "SubmitJob",
            "WebhookEvent",
            "PresetVersion",
        ] {
            assert!(schemas.contains_key(name), "no schema {name}");
        }
    }
}
