//! The pairing flow over HTTP (SPEC C.1–C.3): a server asks for a claim code, its owner
//! redeems it, the server collects its enrollment token by polling. The rules are in
//! [`crate::domain::claims`].

use phlix_proto::ErrorBody;
use serde_json::Value;
use tracing::instrument;
use utoipa::ToSchema;

use crate::domain::claims::{self, ClaimResponse, EnrollmentGrant};
use crate::http::error::ApiResult;
use crate::http::extract::{ClientInfo, CurrentUser, Json, Path, PhlixProtocol, Ready};

/// Body of `POST /api/v1/server-claims/new` (camelCase; read field by field in the PHP hub's
/// order, so a wrong field gets its own 400 message).
#[derive(Debug, ToSchema)]
#[schema(rename_all = "camelCase")]
pub struct ClaimRequest {
    /// 1–255 bytes.
    pub server_name: String,
    /// The server's version, 1–32 bytes.
    pub version: String,
    /// The server's Ed25519 public key as one OKP JWK.
    pub public_keys_jwk: ServerJwk,
    /// At most 32 URLs (each at most 512 bytes) where clients may reach the server directly.
    pub hostname_candidates: Option<Vec<String>>,
    /// Must be `v1`.
    pub protocol_version: String,
}

/// An Ed25519 public key as a JWK.
#[derive(Debug, ToSchema)]
pub struct ServerJwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// The 32-byte public key, base64url. Other members (such as `kid`) are kept as sent and
    /// not read.
    pub x: String,
}

/// Body of `POST /api/v1/server-claims/claim`.
#[derive(Debug, ToSchema)]
pub struct RedeemRequest {
    /// The code the server shows, `XXXX-XXXX` (case and the dash are optional).
    pub claim_code: String,
}

/// Answer of the claim poll: `pending` and `expired` carry only `status`; `claimed` (answered
/// once) carries the enrollment.
#[derive(Debug, ToSchema)]
pub struct ClaimPoll {
    /// `pending`, `claimed` or `expired`.
    pub status: String,
    /// `claimed` only.
    pub enrollment_jwt: Option<String>,
    /// `claimed` only.
    pub hub_jwks_url: Option<String>,
    /// `claimed` only.
    pub server_id: Option<String>,
}

/// `POST /api/v1/server-claims/new` → 200 `ClaimResponse`. A repeat request with the key of a
/// still-pending claim gets that claim back with its remaining lifetime.
#[utoipa::path(
    post,
    path = "/api/v1/server-claims/new",
    tag = "pairing",
    summary = "A server asks for a claim code (SPEC C.1)",
    description = "Public: the server proves nothing yet. A repeat request with the key of a \
        still-pending claim gets that claim back with its remaining lifetime.",
    params(
        ("Accept-Phlix-Protocol" = String, Header, pattern = "^v1$", description = "Must be `v1`")
    ),
    request_body(
        content = ClaimRequest,
        example = json!({"serverName": "Living-room NAS", "version": "0.45.0",
            "publicKeysJwk": {"kty": "OKP", "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo", "kid": "server-key-1"},
            "hostnameCandidates": ["https://nas.example.com:443"], "protocolVersion": "v1"})
    ),
    responses(
        (status = 200, description = "A claim code valid for ten minutes", body = ClaimResponse),
        (status = 400, description = "`HUB_PROTOCOL_UNSUPPORTED` (header or `protocolVersion` \
            not `v1`), `SERVER_KEY_INVALID`, `Bad Request` with a message naming the field, or \
            `invalid_json`", body = ErrorBody),
    )
)]
#[instrument(skip_all)]
pub async fn new_claim(
    Ready(core): Ready,
    _: PhlixProtocol,
    Json(body): Json<Value>,
) -> ApiResult<Json<ClaimResponse>> {
    Ok(Json(claims::request_code(&core, &body).await?))
}

/// `GET /api/v1/server-claims/{claimId}` → always 200: `pending`, `claimed` (once; the token is
/// minted now and the claim deleted) or `expired`.
#[utoipa::path(
    get,
    path = "/api/v1/server-claims/{claim_id}",
    tag = "pairing",
    summary = "The server polls its claim (SPEC C.3)",
    description = "Public; the claim id is the server's secret until it is claimed. Always 200: \
        an unknown id reads as `expired`; `claimed` is answered once (the claim is then gone).",
    params(
        ("claim_id" = String, Path, description = "The `claimId` of the claim response"),
        ("Accept-Phlix-Protocol" = String, Header, pattern = "^v1$", description = "Must be `v1`")
    ),
    responses(
        (status = 200, description = "The claim's state", body = ClaimPoll,
            example = json!({"status": "pending"})),
        (status = 400, description = "`HUB_PROTOCOL_UNSUPPORTED`", body = ErrorBody),
    )
)]
#[instrument(skip_all)]
pub async fn poll_claim(
    Ready(core): Ready,
    _: PhlixProtocol,
    Path(claim_id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(claims::poll(&core, &claim_id).await?))
}

/// `POST /api/v1/server-claims/claim` `{"claim_code"}` → 200 `{enrollment_jwt, hub_jwks_url,
/// server_id}`; 404 `CLAIM_CODE_NOT_FOUND`, 410 `CLAIM_CODE_EXPIRED`, 409
/// `CLAIM_CODE_ALREADY_CLAIMED`.
#[utoipa::path(
    post,
    path = "/api/v1/server-claims/claim",
    tag = "pairing",
    summary = "The owner redeems a claim code (SPEC C.2)",
    params(
        ("Accept-Phlix-Protocol" = String, Header, pattern = "^v1$", description = "Must be `v1`")
    ),
    request_body(content = RedeemRequest, example = json!({"claim_code": "K7QX-3MPD"})),
    responses(
        (status = 200, description = "The server is paired with the caller", body = EnrollmentGrant),
        (status = 400, description = "`HUB_PROTOCOL_UNSUPPORTED`, `Bad Request` (`claim_code is \
            required`) or `invalid_json`", body = ErrorBody),
        (status = 401, description = "Not signed in (`auth.*`, `account_disabled`)", body = ErrorBody),
        (status = 404, description = "`CLAIM_CODE_NOT_FOUND`", body = ErrorBody),
        (status = 409, description = "`CLAIM_CODE_ALREADY_CLAIMED`, or `server_limit_reached`",
            body = ErrorBody),
        (status = 410, description = "`CLAIM_CODE_EXPIRED`", body = ErrorBody),
    ),
    security(("bearerAuth" = []))
)]
#[instrument(skip_all, fields(user_id = %current.user.id))]
pub async fn redeem(
    Ready(core): Ready,
    _: PhlixProtocol,
    current: CurrentUser,
    client: ClientInfo,
    Json(body): Json<Value>,
) -> ApiResult<Json<EnrollmentGrant>> {
    Ok(Json(
        claims::redeem(&core, &current.user, client, &body).await?,
    ))
}
