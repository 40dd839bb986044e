//! The OpenAPI 3.1 document of the API port, generated from the route list the router serves.
//!
//! [`routes`] is the one list: `crate::api::router()` (every JSON route through `routes!` and
//! its handler's `#[utoipa::path]`), the relay's proxy route (`crate::relay::route`) and
//! `GET /api/openapi.json` itself. `crate::server::app_router` serves it; [`document`] takes the
//! document out of the same value and finishes it (security schemes, the shared error
//! responses, tags). `GET /api/openapi.json` and `phlix-hub openapi` both print [`json`];
//! `/api/docs` is Swagger UI (vendored into the binary) pointed at it. `tests/openapi.rs`
//! checks that no route is left out, that every documented operation is served, and runs
//! openapi-spec-validator and schemathesis against a live hub.

use std::sync::LazyLock;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use phlix_proto::ErrorBody;
use utoipa::OpenApi as _;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, ObjectBuilder, OpenApi, Ref, RefOr, ResponseBuilder, Schema, Type,
};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::http::cookies::ACCESS_COOKIE;
use crate::http::doc::methods_mut;
use crate::http::state::AppState;

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/api/openapi.json";
/// Where the browsable page is served.
pub const DOCS_PATH: &str = "/api/docs";

/// The content security policy of the Swagger UI page: its own scripts, its inline styles
/// (React sets `style` attributes), its `data:` images, the document; nothing external.
pub const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

const DESCRIPTION: &str = "\
The JSON API of phlix-hub on its HTTP port (8800 by default): accounts, the server directory, \
pairing, the server-facing routes, sharing, webhooks, media requests, relay bandwidth and \
administration, plus the relay's HTTP proxy route. The hub is compatible with the PHP Phlix \
hub (SPEC), so some error bodies carry the code in `error` rather than in `code`.

**Authentication.** `bearerAuth`: the access token of `/api/v1/auth/login` (HS256 JWT). \
`cookieAuth`: the same token in the `phlix_hub_token` cookie the login sets; under `/api/` \
it is read for GET requests only (mutating requests ignore cookies as a CSRF defence). \
`patAuth`: a personal access token (64 lowercase hex characters, `/api/v1/me/mcp-tokens`), \
on the routes that list it, with the scope each needs (`servers:read`, `requests:read`, \
`requests:write`, `admin`), and on `/mcp`; elsewhere a token is refused 403 \
`token.route_not_allowed`, and on a route its scopes miss 403 `token.insufficient_scope`. \
`enrollmentAuth`: the EdDSA enrollment JWT of a paired server, \
on `/api/v1/servers/{id}/…`. `relayToken`: a client relay token, on the client-mount \
WebSocket.

**Errors** are JSON (`ErrorBody`): `error`, and `code`/`message` when they apply. Every route \
that needs the database answers 503 while the hub starts or the database is unreachable, and \
paths paused by maintenance mode answer 503 `provider_unavailable`. Unknown paths answer 404 \
`not_found`, known paths with another method 405 `method_not_allowed`, and HEAD is 404 \
everywhere but on the proxy route. Bodies over 1 MiB are refused with 413 (not on the proxy \
route).

**Not described here** (not API): the web UI's HTML pages under `/app/…`, its embedded \
assets `/app/assets/*`, the page redirects (`/`, `/login`, `/signup`, `/logout`, \
`/invite/{token}`, `/my-servers`, `/claim-server`, `/hub-settings`, `/requests`, \
`/admin/requests`, `/servers/{id}`), this document's browsable page `/api/docs`, subdomain \
ingress (`<label>.<public domain>`, forwarded to a server) and the tunnel listener (8802: \
every path upgrades to a server's tunnel WebSocket).";

/// The document's fixed parts: information, the error schema, the tags.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "phlix-hub API",
        description = DESCRIPTION,
        license(name = "AGPL-3.0-or-later", identifier = "AGPL-3.0-or-later")
    ),
    paths(crate::api::mcp::mcp_endpoint),
    components(schemas(ErrorBody)),
    tags(
        (name = "auth", description = "Accounts and sessions (SPEC E, F.1)"),
        (name = "directory", description = "The caller's servers (SPEC E.2, B.2, J.1)"),
        (name = "events", description = "Live events and metrics history (SPEC J.4, J.5)"),
        (name = "sharing", description = "Library shares and invite links (SPEC M, N)"),
        (name = "webhooks", description = "Webhook endpoints and deliveries (SPEC P)"),
        (name = "settings", description = "Hub settings (SPEC H.3)"),
        (name = "requests", description = "Media requests through Radarr and Sonarr (SPEC O)"),
        (name = "bandwidth", description = "Relay usage, quotas and throttles (SPEC B.5)"),
        (name = "admin", description = "User management, dashboard, audit log (SPEC Q)"),
        (name = "logs", description = "The hub's recent log records (SPEC Q.4)"),
        (name = "servers", description = "Routes a paired server calls (SPEC C.5, C.6, D)"),
        (name = "pairing", description = "Claim codes (SPEC C.1–C.3)"),
        (name = "relay", description = "HTTP over the relay and client mounts (SPEC A.5, B.2)"),
        (name = "tokens", description = "Personal access tokens (SPEC E \"MCP\")"),
        (name = "mcp", description = "The Model Context Protocol endpoint (Streamable HTTP)"),
        (name = "meta", description = "Health, keys, metrics and this document")
    )
)]
struct Base;

/// Every documented route of the API port, with the document they make.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(Base::openapi())
        .merge(crate::api::router())
        .merge(crate::relay::route::router())
        .routes(routes!(openapi_json))
}

/// The finished document.
#[must_use]
pub fn document() -> OpenApi {
    let mut document = routes().into_openapi();
    finish(&mut document);
    document
}

/// The document as served and printed (pretty JSON).
pub fn json() -> &'static str {
    static JSON: LazyLock<String> = LazyLock::new(|| match document().to_pretty_json() {
        Ok(json) => json,
        Err(err) => {
            tracing::error!(error = %err, "cannot serialise the OpenAPI document");
            String::from("{}")
        }
    });
    &JSON
}

/// `GET /api/openapi.json`: this document.
#[utoipa::path(
    get,
    path = "/api/openapi.json",
    tag = "meta",
    summary = "This OpenAPI 3.1 document",
    description = "The same text as `phlix-hub openapi` prints. Public.",
    responses(
        (status = 200, description = "The document", content_type = "application/json",
            body = Object)
    )
)]
async fn openapi_json() -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        json(),
    )
        .into_response()
}

/// `/api/docs`: Swagger UI (its files are embedded in the binary) reading `/api/openapi.json`,
/// under its own content security policy.
pub fn docs() -> Router<AppState> {
    let config = Config::new([DOCUMENT_PATH])
        // No badge from validator.swagger.io: the page loads nothing from elsewhere.
        .validator_url("none");
    Router::from(SwaggerUi::new(DOCS_PATH).config(config))
        .layer(axum::middleware::from_fn(docs_headers))
}

/// Middleware: the security headers of the Swagger UI page.
async fn docs_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    crate::http::page_security_headers(response.headers_mut(), DOCS_CONTENT_SECURITY_POLICY);
    response
}

/// The scopes a personal access token needs to call `method path` (empty: any scope), or
/// `None` when no token may call it. Read from the rule the hub enforces,
/// `domain::tokens::required_scope`, so the document lists `patAuth` (with the scope) exactly
/// where a token works.
#[must_use]
pub fn pat_scopes(method: &str, path: &str) -> Option<Vec<String>> {
    use crate::domain::tokens::{Needs, required_scope};
    match required_scope(&method.to_ascii_uppercase(), path)? {
        Needs::AnyScope => Some(Vec::new()),
        Needs::Scope(scope) => Some(vec![scope.as_str().to_owned()]),
    }
}

/// The parts every operation shares: the security schemes, `ErrorBody.field_errors`, the 503
/// (start-up, database, maintenance) and 413 (body limit) answers where an operation does not
/// document them itself, and operation ids made unique by their tag (`utoipa` names an
/// operation after its handler, and several modules have a `list`).
fn finish(document: &mut OpenApi) {
    let components = document.components.get_or_insert_with(Default::default);
    let bearer = |format: &str, description: &str| {
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format(format)
                .description(Some(description))
                .build(),
        )
    };
    components.add_security_scheme(
        "bearerAuth",
        bearer(
            "JWT",
            "The access token (HS256 JWT) of `/api/v1/auth/login`, `register` or `refresh`.",
        ),
    );
    components.add_security_scheme(
        "cookieAuth",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            ACCESS_COOKIE,
            "The access token in the session cookie the login sets. Under `/api/` it is read \
             for GET requests only.",
        ))),
    );
    components.add_security_scheme(
        "patAuth",
        bearer(
            "64 lowercase hex characters",
            "A personal access token (`/api/v1/me/mcp-tokens`).",
        ),
    );
    components.add_security_scheme(
        "enrollmentAuth",
        bearer(
            "EdDSA JWT",
            "The enrollment token of a paired server (SPEC C.4), verifiable with \
             `/.well-known/jwks.json`.",
        ),
    );
    components.add_security_scheme(
        "relayToken",
        bearer(
            "64 lowercase hex characters",
            "A client relay token of `POST /api/v1/me/servers/{id}/relay-token`; also accepted \
             as the first `Sec-WebSocket-Protocol` entry that is not `bearer`.",
        ),
    );
    if let Some(RefOr::T(Schema::Object(error))) = components.schemas.get_mut("ErrorBody") {
        error.properties.insert(
            "field_errors".to_owned(),
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
                .description(Some(
                    "400 `validation_failed` only: the message of every bad field, by field.",
                ))
                .into(),
        );
    }
    let error_response = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    components.responses.insert(
        "Unavailable".to_owned(),
        RefOr::T(error_response(
            "`hub.starting` (start-up not finished), `store.unavailable` (the database is \
             unreachable) or, on the paths maintenance mode pauses, `provider_unavailable` \
             with `Retry-After`",
        )),
    );
    components.responses.insert(
        "PayloadTooLarge".to_owned(),
        RefOr::T(error_response("`body_too_large`: the body exceeds 1 MiB")),
    );
    for (path, item) in &mut document.paths.paths {
        // One handler for several methods (the proxy route) has one id for all of them.
        let mut ids: Vec<Option<String>> = methods_mut(item)
            .map(|(_, operation)| operation.operation_id.clone())
            .collect();
        ids.sort();
        let shared = ids
            .windows(2)
            .any(|pair| pair[0].is_some() && pair[0] == pair[1]);
        for (method, operation) in methods_mut(item) {
            // Routes that take a session token also take a personal access token where its
            // rule allows (`/mcp` takes only the latter and says so itself).
            let bearer = SecurityRequirement::new("bearerAuth", Vec::<String>::new());
            if let Some(security) = &mut operation.security
                && security.contains(&bearer)
            {
                let pat = SecurityRequirement::new("patAuth", Vec::<String>::new());
                security.retain(|requirement| *requirement != pat);
                if let Some(scopes) = pat_scopes(method, path) {
                    security.push(SecurityRequirement::new("patAuth", scopes));
                }
            }
            if let (Some(id), Some(tag)) = (
                &mut operation.operation_id,
                operation.tags.as_ref().and_then(|tags| tags.first()),
            ) {
                *id = if shared {
                    format!("{tag}_{id}_{method}")
                } else {
                    format!("{tag}_{id}")
                };
            }
            let responses = &mut operation.responses.responses;
            if path != DOCUMENT_PATH {
                responses
                    .entry("503".to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name("Unavailable")));
            }
            // The proxy route streams bodies of any size.
            if operation.request_body.is_some() && !path.contains("/proxy") {
                responses
                    .entry("413".to_owned())
                    .or_insert_with(|| RefOr::Ref(Ref::from_response_name("PayloadTooLarge")));
            }
        }
    }
}
