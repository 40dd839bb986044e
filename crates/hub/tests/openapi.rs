//! The OpenAPI document against the code and a live hub: every route of the source is
//! documented (or explicitly not API), every documented operation is served, the served
//! document is the one `phlix-hub openapi` prints, it is valid OpenAPI 3.1
//! (openapi-spec-validator), and the Swagger UI page works under its own CSP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use common::TestHub;
use serde_json::Value;

/// Routes of the source that are not API and so not in the document, each with the reason.
/// An entry ending in `/*` covers the path and everything under it.
const NOT_API: &[(&str, &str)] = &[
    // The web UI (web/mod.rs): server-rendered pages, forms and their redirects.
    ("/app", "redirect to the servers page"),
    ("/app/*", "the web UI's pages and form posts"),
    ("/", "redirect to the servers page"),
    (
        "/login",
        "legacy page path: redirect to /app/login, form post",
    ),
    (
        "/signup",
        "legacy page path: redirect to /app/signup, form post",
    ),
    ("/logout", "the sign-out form's post"),
    (
        "/invite/{token}",
        "legacy invite link: redirect to /app/invite/{token}",
    ),
    ("/my-servers", "legacy page path: redirect"),
    ("/claim-server", "legacy page path: redirect"),
    ("/hub-settings", "legacy page path: redirect"),
    ("/requests", "legacy page path: redirect"),
    ("/admin/requests", "legacy page path: redirect"),
    ("/servers/{id}", "legacy page path: redirect"),
    // relay/client.rs: the client listener (its own port). `/client/{server_id}` is documented
    // (the signpost on the API port answers on the same path); this is its trailing-slash
    // twin, which exists on the client listener only.
    (
        "/client/{server_id}/",
        "client listener: trailing-slash alias of the mount",
    ),
    // relay/cluster.rs: the node-to-node listener (`--cluster-addr`, HMAC-signed, never public).
    (
        "/cluster/v1/*",
        "cluster listener: signed node-to-node forwarding, not a public API",
    ),
];

fn not_api(path: &str) -> bool {
    NOT_API
        .iter()
        .any(|(entry, _)| match entry.strip_suffix("/*") {
            Some(prefix) => path.starts_with(&format!("{prefix}/")),
            None => path == *entry,
        })
}

/// `{*rest}` (axum's wildcard) is `{rest}` in the document.
fn normalise(path: &str) -> String {
    path.replace("{*", "{")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A router call with a literal path: `.route(`, `.route_service(`, `.nest(`, `.nest_service(`.
#[derive(Debug)]
struct Call {
    kind: String,
    path: String,
    /// The `let` binding whose statement holds the call, if any.
    binding: Option<String>,
    /// For `.nest("/p", name)`: the nested binding.
    nested: Option<String>,
    line: usize,
}

/// The router calls of one file, each with the `let` binding it belongs to, found with a
/// small scanner that skips comments and tracks string literals and bracket depth.
fn router_calls(source: &str) -> Vec<Call> {
    let bytes = source.as_bytes();
    let mut calls = Vec::new();
    // Open `let` statements: (name, depth at which its `;` ends it).
    let mut lets: Vec<(String, i32)> = Vec::new();
    let mut depth = 0i32;
    let mut i = 0;
    let line_of = |at: usize| source[..at].matches('\n').count() + 1;
    while i < bytes.len() {
        let rest = &source[i..];
        if rest.starts_with("//") {
            i += rest.find('\n').unwrap_or(rest.len());
            continue;
        }
        if rest.starts_with("/*") {
            i += rest.find("*/").map_or(rest.len(), |end| end + 2);
            continue;
        }
        // Raw strings (`r"…"`, `r#"…"#`) and char literals (`'"'`) would end a string early.
        if let Some(raw) = rest.strip_prefix('r')
            && (raw.starts_with('"') || raw.starts_with("#\""))
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric() && bytes[i - 1] != b'_')
        {
            let hashes = raw.chars().take_while(|c| *c == '#').count();
            let close = format!("\"{}", "#".repeat(hashes));
            let body = 1 + hashes + 1;
            i += body
                + raw[hashes + 1..]
                    .find(&close)
                    .map_or(raw.len(), |end| end + close.len());
            continue;
        }
        if bytes[i] == b'\'' {
            let mut chars = rest[1..].chars();
            match (chars.next(), chars.next()) {
                (Some('\\'), _) => {
                    i += 2 + rest[2..].find('\'').map_or(rest.len() - 2, |end| end + 1);
                    continue;
                }
                (Some(c), Some('\'')) => {
                    i += 2 + c.len_utf8();
                    continue;
                }
                _ => {}
            }
        }
        if bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            continue;
        }
        if rest.starts_with("let ")
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric() && bytes[i - 1] != b'_')
        {
            let name: String = rest[4..]
                .trim_start_matches("mut ")
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                lets.push((name, depth));
            }
        }
        match bytes[i] {
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => {
                depth -= 1;
                lets.retain(|(_, d)| *d <= depth);
            }
            b';' => lets.retain(|(_, d)| *d < depth),
            _ => {}
        }
        for kind in ["route", "route_service", "nest", "nest_service"] {
            let Some(after) = rest.strip_prefix(&format!(".{kind}(")) else {
                continue;
            };
            let args = after.trim_start();
            let Some(literal) = args.strip_prefix('"') else {
                continue;
            };
            let Some(end) = literal.find('"') else {
                continue;
            };
            let nested = literal[end + 1..]
                .trim_start()
                .strip_prefix(',')
                .map(|tail| {
                    tail.trim_start()
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .filter(|name| !name.is_empty());
            calls.push(Call {
                kind: kind.to_owned(),
                path: literal[..end].to_owned(),
                binding: lets.last().map(|(name, _)| name.clone()),
                nested,
                line: line_of(i),
            });
        }
        i += 1;
    }
    calls
}

/// Every literal route of `crates/hub/src`, prefix-resolved through `.nest`, as
/// `(file:line, path)`.
fn source_routes() -> Vec<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut routes = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let calls = router_calls(&source);
        // The prefix of each binding: the `.nest` paths that mount it, outermost first.
        let mut prefix: BTreeMap<String, String> = BTreeMap::new();
        for _ in 0..8 {
            for call in calls.iter().filter(|c| c.kind == "nest") {
                if let Some(nested) = &call.nested {
                    let outer = call
                        .binding
                        .as_ref()
                        .and_then(|b| prefix.get(b))
                        .cloned()
                        .unwrap_or_default();
                    prefix.insert(nested.clone(), format!("{outer}{}", call.path));
                }
            }
        }
        let name = file.strip_prefix(&src).unwrap().display().to_string();
        for call in calls.iter().filter(|c| c.kind.starts_with("route")) {
            let outer = call
                .binding
                .as_ref()
                .and_then(|b| prefix.get(b))
                .cloned()
                .unwrap_or_default();
            routes.push((
                format!("src/{name}:{}", call.line),
                format!("{outer}{}", call.path),
            ));
        }
        for call in calls.iter().filter(|c| c.kind == "nest_service") {
            routes.push((format!("src/{name}:{}", call.line), call.path.clone()));
        }
    }
    routes
}

fn document() -> Value {
    serde_json::from_str(phlix_hub::openapi::json()).unwrap()
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// (method, path) of every documented operation.
fn operations(document: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                out.push((method.to_owned(), path.clone()));
            }
        }
    }
    out
}

#[test]
fn the_scanner_finds_routes_nested_routes_and_multi_line_calls() {
    let source = r##"
        fn router() -> Router {
            // .route("/commented-out", get(x))
            let inner = Router::new()
                .route("/a", get(a))
                .route(
                    "/b/{id}",
                    post(b),
                );
            let quote = '"'; let raw = r#"{"x": ".route(\"/raw\")"}"#; let l: &'static str = "";
            let outer = Router::new().nest("/inner", inner).route("/c", get(c));
            Router::new().nest("/api", outer).route_service("/d", service)
        }
    "##;
    let calls = router_calls(source);
    let paths: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(paths, ["/a", "/b/{id}", "/inner", "/c", "/api", "/d"]);
    assert_eq!(calls[0].binding.as_deref(), Some("inner"));
    assert_eq!(calls[2].nested.as_deref(), Some("inner"));
    assert_eq!(calls[4].nested.as_deref(), Some("outer"));
    assert_eq!(calls[5].binding, None);
}

/// A route in the router but not in the document fails here, naming the file and the path:
/// the API routes come from `routes!` (always documented); any literal `.route(…)` elsewhere
/// must be documented or listed in [`NOT_API`] with its reason.
#[test]
fn every_route_of_the_source_is_documented_or_not_api() {
    let document = document();
    let documented: BTreeSet<String> = document["paths"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let routes = source_routes();
    assert!(
        routes.iter().any(|(_, p)| p == "/app/login") && routes.len() > 50,
        "the scanner found too few routes: {routes:?}"
    );
    let missing: Vec<String> = routes
        .iter()
        .filter(|(_, path)| !documented.contains(&normalise(path)) && !not_api(path))
        .map(|(at, path)| format!("{at}: {path}"))
        .collect();
    assert!(
        missing.is_empty(),
        "routes in the router but not in the OpenAPI document (document them with \
         #[utoipa::path] and routes!, or add them to NOT_API with the reason):\n{}",
        missing.join("\n")
    );
    // The allow-list stays honest: no entry names a documented path.
    for (entry, reason) in NOT_API {
        assert!(
            !documented.contains(*entry),
            "{entry} ({reason}) is documented; drop it from NOT_API"
        );
    }
}

/// Every documented operation, asked on a live hub with placeholder parameters and no
/// credentials, reaches a handler: not the router's 404 `not_found` or 405 fallback.
#[tokio::test]
async fn every_documented_operation_is_served() {
    let hub = TestHub::start().await;
    let document: Value = hub
        .http_client
        .get(hub.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let operations = operations(&document);
    assert!(operations.len() > 70, "{operations:?}");
    let mut unserved = Vec::new();
    for (method, path) in &operations {
        let concrete = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "placeholder"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let response = hub
            .http_client
            .request(method.clone(), hub.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let fallback = (status == 404 && body["code"] == "not_found")
            || (status == 405 && body["code"] == "method_not_allowed");
        if fallback {
            unserved.push(format!("{method} {path} ({concrete}): {status} {body}"));
        }
    }
    assert!(
        unserved.is_empty(),
        "documented but answered by the router's fallback:\n{}",
        unserved.join("\n")
    );
    // The check itself can tell: an undocumented path and a wrong method are the fallback.
    let response = hub
        .http_client
        .get(hub.url("/api/v1/not-a-route"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = hub
        .http_client
        .patch(hub.url("/api/v1/auth/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

/// `GET /api/openapi.json` serves exactly what `phlix-hub openapi` prints: OpenAPI 3.1.
#[tokio::test]
async fn the_served_document_is_the_printed_one() {
    let hub = TestHub::start().await;
    let response = hub
        .http_client
        .get(hub.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served = response.text().await.unwrap();
    assert_eq!(served, phlix_hub::openapi::json());
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_phlix-hub"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(printed.status.success(), "{printed:?}");
    assert_eq!(
        String::from_utf8(printed.stdout).unwrap(),
        format!("{served}\n")
    );
    let document: Value = serde_json::from_str(&served).unwrap();
    let version = document["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "{version}");
    // The shared parts: the error schema, the security schemes, public routes without any.
    let components = &document["components"];
    assert!(components["schemas"]["ErrorBody"]["properties"]["error"].is_object());
    for scheme in [
        "bearerAuth",
        "cookieAuth",
        "patAuth",
        "enrollmentAuth",
        "relayToken",
    ] {
        assert!(
            components["securitySchemes"][scheme].is_object(),
            "{scheme}"
        );
    }
    assert_eq!(
        components["securitySchemes"]["cookieAuth"]["name"],
        "phlix_hub_token"
    );
    assert!(document["paths"]["/health"]["get"]["security"].is_null());
    assert_eq!(
        document["paths"]["/api/v1/servers/{id}/heartbeat"]["post"]["security"][0]["enrollmentAuth"],
        serde_json::json!([])
    );
    // Personal access tokens: on the read routes of servers, libraries, shares and requests
    // and on every admin route (aliases included), nowhere else.
    let schemes = |method: &str, path: &str| -> Vec<String> {
        document["paths"][path][method]["security"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|requirement| requirement.as_object().unwrap().keys().cloned())
            .collect()
    };
    for (method, path) in operations(&document) {
        let pat = schemes(&method, &path).contains(&"patAuth".to_owned());
        // `/mcp` takes only personal access tokens; the JSON routes take them where the
        // hub's rule does.
        let expected = path == "/mcp" || phlix_hub::openapi::pat_scopes(&method, &path).is_some();
        assert_eq!(pat, expected, "{method} {path}");
    }
    // With the scope each route needs.
    let pat_scope = |method: &str, path: &str| {
        document["paths"][path][method]["security"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|requirement| requirement.get("patAuth").cloned())
    };
    assert_eq!(
        pat_scope("get", "/api/v1/me/servers"),
        Some(serde_json::json!(["servers:read"]))
    );
    assert_eq!(
        pat_scope("post", "/api/v1/me/requests"),
        Some(serde_json::json!(["requests:write"]))
    );
    assert_eq!(
        pat_scope("post", "/api/v1/admin/requests/{id}/approve"),
        Some(serde_json::json!(["admin"]))
    );
    assert_eq!(pat_scope("get", "/api/v1/me/mcp-tokens"), None);
    assert!(schemes("get", "/api/v1/me/servers").contains(&"patAuth".to_owned()));
    assert!(schemes("get", "/api/v1/admin/logs").contains(&"patAuth".to_owned()));
    assert!(!schemes("get", "/api/v1/me/webhooks").contains(&"patAuth".to_owned()));
    assert!(!schemes("post", "/api/v1/me/shares").contains(&"patAuth".to_owned()));
    // Every link names an operation of the document (ids are only checked here).
    let ids: BTreeSet<String> = operations(&document)
        .iter()
        .map(|(method, path)| {
            document["paths"][path][method]["operationId"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    let mut links = 0;
    for (method, path) in operations(&document) {
        for response in document["paths"][&path][&method]["responses"]
            .as_object()
            .unwrap()
            .values()
        {
            for link in response["links"].as_object().into_iter().flatten() {
                links += 1;
                let target = link.1["operationId"].as_str().unwrap();
                assert!(ids.contains(target), "{method} {path}: link to {target}");
            }
        }
    }
    assert!(links > 20, "{links} links");
    // Every request body has an example.
    for (method, path) in operations(&document) {
        let body = &document["paths"][&path][&method]["requestBody"];
        if body.is_object() {
            let has_example = body["content"]
                .as_object()
                .unwrap()
                .values()
                .any(|media| media.get("example").is_some());
            assert!(
                has_example,
                "{method} {path}: request body without an example"
            );
        }
    }
}

/// openapi-spec-validator (PyPI; `scripts/test` installs it) accepts the served document.
#[tokio::test]
async fn openapi_spec_validator_accepts_the_document() {
    let hub = TestHub::start().await;
    let served = hub
        .http_client
        .get(hub.url("/api/openapi.json"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, served).unwrap();
    let output = std::process::Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("python3 runs (scripts/test installs openapi-spec-validator)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success() && text.contains("OK"),
        "openapi-spec-validator refused the document (pip install openapi-spec-validator):\n{text}"
    );
}

/// `/api/docs` is Swagger UI from the binary, reading `/api/openapi.json`, under a CSP that
/// allows nothing from elsewhere.
#[tokio::test]
async fn the_docs_page_is_served_from_the_binary() {
    let hub = TestHub::start().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client.get(hub.url("/api/docs")).send().await.unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    assert_eq!(response.headers()["location"], "/api/docs/");
    let response = client.get(hub.url("/api/docs/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(csp, phlix_hub::openapi::DOCS_CONTENT_SECURITY_POLICY);
    assert!(!csp.contains("http"), "{csp}");
    let page = response.text().await.unwrap();
    assert!(page.contains("swagger-ui-bundle.js"), "{page}");
    assert!(
        !page.contains("<script>") && !page.contains("https://"),
        "inline or external script: {page}"
    );
    let initializer = client
        .get(hub.url("/api/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(initializer.contains("/api/openapi.json"), "{initializer}");
    for asset in ["swagger-ui-bundle.js", "swagger-ui.css"] {
        let response = client
            .get(hub.url(&format!("/api/docs/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
    }
}
