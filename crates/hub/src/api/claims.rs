//! The pairing flow over HTTP (SPEC C.1–C.3): a server asks for a claim code, its owner
//! redeems it, the server collects its enrollment token by polling. The rules are in
//! [`crate::domain::claims`].

use serde_json::Value;
use tracing::instrument;

use crate::domain::claims::{self, ClaimResponse, EnrollmentGrant};
use crate::http::error::ApiResult;
use crate::http::extract::{ClientInfo, CurrentUser, Json, Path, PhlixProtocol, Ready};

/// `POST /api/v1/server-claims/new` → 200 `ClaimResponse`. A repeat request with the key of a
/// still-pending claim gets that claim back with its remaining lifetime.
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
