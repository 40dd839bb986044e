//! The pairing flow (SPEC C.1–C.3): a server asks for a claim code, its owner redeems it, the
//! server collects its enrollment token by polling.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Map, Value};

use super::events::HubEvent;
use super::settings::ENROLLMENT_TTL;
use super::{ClaimFailure, ClientInfo, Core, DomainError, DomainResult};
use crate::auth::{enrollment, now_unix};
use crate::store::{AuditEntry, ClaimRow, PollOutcome, Redemption, StoreError, UserRow};
use crate::telemetry::short_hash;

/// Lifetime of a claim code.
pub const CLAIM_TTL_SECS: i64 = 600;
/// Alphabet of claim codes: no 0/O/1/I.
pub const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A fresh `XXXX-XXXX` code, uniformly drawn (rejection sampling: 32 divides 256).
#[must_use]
pub fn new_claim_code() -> String {
    let bytes = crate::auth::random_bytes::<8>();
    let chars: String = bytes
        .iter()
        .map(|b| char::from(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()]))
        .collect();
    format!("{}-{}", &chars[..4], &chars[4..])
}

/// Normalises what a user typed (`k7qx m2p9`, `K7QX-M2P9`, …) to the stored `K7QX-M2P9` form,
/// or `None` when it cannot be a code.
#[must_use]
pub fn normalise_code(input: &str) -> Option<String> {
    let cleaned: String = input
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (cleaned.len() == 8).then(|| format!("{}-{}", &cleaned[..4], &cleaned[4..]))
}

/// `ClaimResponse` (camelCase).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClaimResponse {
    pub claim_code: String,
    pub expires_in: i64,
    pub claim_id: String,
    pub hub_base_url: String,
}

fn required_string<'a>(body: &'a Map<String, Value>, field: &str) -> DomainResult<&'a str> {
    body.get(field)
        .and_then(Value::as_str)
        .ok_or_else(|| DomainError::BadRequest(format!("ClaimRequest \"{field}\" is required.")))
}

/// A validated claim request.
struct ClaimInput {
    server_name: String,
    version: String,
    jwk: Value,
    x: String,
    hostnames: Vec<String>,
}

/// Checks the body of `POST /api/v1/server-claims/new` in the PHP hub's order and with its
/// answers (but a 400 for over-long names where the PHP hub answers 500, SPEC C.1).
fn validate_claim(body: &Value) -> DomainResult<ClaimInput> {
    let body = body.as_object().ok_or_else(|| {
        DomainError::BadRequest("ClaimRequest body must be a JSON object.".into())
    })?;
    let server_name = required_string(body, "serverName")?;
    let version = required_string(body, "version")?;
    let jwk = body
        .get("publicKeysJwk")
        .filter(|v| v.is_object())
        .ok_or_else(|| {
            DomainError::BadRequest("ClaimRequest \"publicKeysJwk\" is required.".into())
        })?;
    let hostnames = match body.get("hostnameCandidates") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .filter(|list| list.len() <= 32 && list.iter().all(|h| h.len() <= 512))
            .ok_or_else(|| {
                DomainError::BadRequest(
                    "ClaimRequest \"hostnameCandidates\" must be a list of at most 32 strings."
                        .into(),
                )
            })?,
        Some(_) => {
            return Err(DomainError::BadRequest(
                "ClaimRequest \"hostnameCandidates\" must be a list of strings.".into(),
            ));
        }
    };
    let protocol = required_string(body, "protocolVersion")?;
    if protocol != "v1" {
        return Err(DomainError::ProtocolUnsupported);
    }
    let x = validate_jwk(jwk)?;
    // The PHP hub answers 500 HUB_INTERNAL_ERROR here (SPEC C.1); ours is a clear 400.
    if server_name.is_empty() || server_name.len() > 255 {
        return Err(DomainError::BadRequest(
            "ClaimRequest \"serverName\" must be 1 to 255 bytes.".into(),
        ));
    }
    if version.is_empty() || version.len() > 32 {
        return Err(DomainError::BadRequest(
            "ClaimRequest \"version\" must be 1 to 32 bytes.".into(),
        ));
    }
    Ok(ClaimInput {
        server_name: server_name.to_owned(),
        version: version.to_owned(),
        jwk: jwk.clone(),
        x,
        hostnames,
    })
}

/// `publicKeysJwk` must be one Ed25519 OKP key whose `x` is 32 bytes of base64url.
fn validate_jwk(jwk: &Value) -> DomainResult<String> {
    let field = |name: &str| jwk.get(name).and_then(Value::as_str);
    if field("kty") != Some("OKP") {
        return Err(DomainError::ServerKeyInvalid(
            "publicKeysJwk.kty must be \"OKP\"".into(),
        ));
    }
    if field("crv") != Some("Ed25519") {
        return Err(DomainError::ServerKeyInvalid(
            "publicKeysJwk.crv must be \"Ed25519\"".into(),
        ));
    }
    let x = field("x")
        .ok_or_else(|| DomainError::ServerKeyInvalid("publicKeysJwk.x is required".into()))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(x.trim_end_matches('='))
        .map_err(|_| DomainError::ServerKeyInvalid("publicKeysJwk.x is not base64url".into()))?;
    let bytes: [u8; 32] = bytes.try_into().map_err(|_| {
        DomainError::ServerKeyInvalid("publicKeysJwk.x must decode to exactly 32 bytes".into())
    })?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| {
        DomainError::ServerKeyInvalid("publicKeysJwk.x is not an Ed25519 public key".into())
    })?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// A server asks for a claim code (SPEC C.1): the body is checked in the PHP hub's order; a
/// repeat request with the key of a still-pending claim gets that claim back with its
/// remaining lifetime.
///
/// # Errors
/// The PHP hub's 400s for a bad body or key; database failures.
pub async fn request_code(core: &Core, body: &Value) -> DomainResult<ClaimResponse> {
    let input = validate_claim(body)?;
    let now = now_unix();
    let hub_base_url = core.config.public_url.clone();
    if let Some(existing) = core.store.pending_claim_for_key(&input.x, now).await? {
        return Ok(ClaimResponse {
            claim_code: existing.claim_code,
            expires_in: existing.expires_at - now,
            claim_id: existing.id,
            hub_base_url,
        });
    }
    let mut claim = ClaimRow {
        id: uuid::Uuid::new_v4().to_string(),
        claim_code: new_claim_code(),
        server_name: input.server_name,
        version: input.version,
        hostname_candidates_json: serde_json::to_string(&input.hostnames)
            .unwrap_or_else(|_| "[]".into()),
        protocol_version: "v1".into(),
        public_key_jwk: input.jwk.to_string(),
        public_key_x: input.x,
        status: "pending".into(),
        expires_at: now + CLAIM_TTL_SECS,
        created_at: now,
    };
    let mut attempts = 0;
    loop {
        match core.store.insert_claim(&claim).await {
            Ok(()) => break,
            Err(StoreError::Conflict(_)) if attempts < 8 => {
                attempts += 1;
                claim.claim_code = new_claim_code();
            }
            Err(err) => return Err(err.into()),
        }
    }
    // The claim id is a bearer secret until the server polls (SPEC C.3): log a stand-in.
    tracing::info!(claim = %short_hash(&claim.id), server_name = %claim.server_name, "claim code issued");
    Ok(ClaimResponse {
        claim_code: claim.claim_code,
        expires_in: CLAIM_TTL_SECS,
        claim_id: claim.id,
        hub_base_url,
    })
}

/// Answer of the claim poll and of the redemption.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EnrollmentGrant {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    pub enrollment_jwt: String,
    pub hub_jwks_url: String,
    pub server_id: String,
}

/// Mints an enrollment token for `server_id` with the TTL in force.
///
/// # Errors
/// Database failures reading the setting.
pub async fn mint_enrollment(core: &Core, server_id: &str) -> DomainResult<String> {
    let ttl = ENROLLMENT_TTL.get(&core.store).await?;
    let keys = core.keys.current();
    Ok(enrollment::mint(
        &keys,
        server_id,
        &core.config.public_url,
        ttl,
        now_unix(),
    ))
}

/// The public keys that verify enrollment tokens now, for the JWKS (the previous key too
/// inside its rotation overlap); 120 fetches / 60 s per IP.
pub fn published_keys(core: &Core, ip: &str) -> DomainResult<Vec<crate::auth::keys::Jwk>> {
    let now = now_unix();
    if let Err(retry_after) = core.limits.jwks.check(ip, now) {
        return Err(DomainError::RateLimited { retry_after });
    }
    let ring = core.keys.current();
    Ok(ring
        .verifying_keys(now)
        .into_iter()
        .map(|k| k.jwk())
        .collect())
}

/// The server polls its claim (SPEC C.3): `pending`, `claimed` (once; the token is minted now
/// and the claim deleted) or `expired`.
///
/// # Errors
/// Database failures.
pub async fn poll(core: &Core, claim_id: &str) -> DomainResult<Value> {
    if claim_id.len() > 64 {
        return Ok(serde_json::json!({"status": "expired"}));
    }
    Ok(match core.store.poll_claim(claim_id, now_unix()).await? {
        PollOutcome::Pending => serde_json::json!({"status": "pending"}),
        PollOutcome::Expired => serde_json::json!({"status": "expired"}),
        PollOutcome::Claimed { server_id } => {
            let grant = EnrollmentGrant {
                status: Some("claimed"),
                enrollment_jwt: mint_enrollment(core, &server_id).await?,
                hub_jwks_url: core.jwks_url(),
                server_id,
            };
            serde_json::to_value(grant).map_err(|e| DomainError::Internal(e.into()))?
        }
    })
}

/// A signed-in user redeems `{"claim_code"}` (SPEC C.2) and gets the server's enrollment.
///
/// # Errors
/// 400 without a code; those of [`redeem_code`].
pub async fn redeem(
    core: &Core,
    user: &UserRow,
    client: ClientInfo,
    body: &Value,
) -> DomainResult<EnrollmentGrant> {
    let code = body
        .get("claim_code")
        .and_then(Value::as_str)
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| DomainError::BadRequest("claim_code is required".into()))?;
    let server_id = redeem_code(core, user, client, code).await?;
    Ok(EnrollmentGrant {
        status: None,
        enrollment_jwt: mint_enrollment(core, &server_id).await?,
        hub_jwks_url: core.jwks_url(),
        server_id,
    })
}

/// Redeems a typed claim code for `user` (SPEC C.2): the new server's id, with its audit row
/// and a `server.online` event (a claimed server starts online). Shared by the JSON API and
/// the claim form.
///
/// # Errors
/// 404 `CLAIM_CODE_NOT_FOUND` (also for text that cannot be a code), 410
/// `CLAIM_CODE_EXPIRED`, 409 `CLAIM_CODE_ALREADY_CLAIMED`.
pub async fn redeem_code(
    core: &Core,
    user: &UserRow,
    client: ClientInfo,
    code: &str,
) -> DomainResult<String> {
    let code = normalise_code(code).ok_or(DomainError::Claim(ClaimFailure::Unknown))?;
    // `server.max_servers_per_user` (SPEC H.3; 0 = no limit, admins exempt).
    let limit = super::settings::MAX_SERVERS_PER_USER
        .get(&core.store)
        .await?;
    if limit > 0 && !user.is_admin {
        let owned = core.store.server_ids_of(&user.id).await?.len();
        if i64::try_from(owned).unwrap_or(i64::MAX) >= limit {
            return Err(DomainError::Conflict {
                code: "server_limit_reached",
                message: format!(
                    "This account has reached the hub's limit of {limit} servers; remove one first"
                ),
            });
        }
    }
    let server_id = uuid::Uuid::new_v4().to_string();
    let now = now_unix();
    match core
        .store
        .redeem_claim(&code, &user.id, &server_id, now)
        .await?
    {
        Redemption::Paired { server_id } => {
            core.store
                .audit(&AuditEntry {
                    event: "server.claimed".into(),
                    user_id: Some(user.id.clone()),
                    resource: Some(format!("server:{server_id}")),
                    action: Some("claim".into()),
                    success: true,
                    ip_address: Some(client.ip),
                    user_agent: client.user_agent,
                    created_at: now,
                    ..AuditEntry::default()
                })
                .await?;
            tracing::info!(%server_id, "server paired");
            core.events
                .publish(HubEvent::status(&user.id, &server_id, true, Some(now)));
            if let Some(server) = core.store.server_by_id(&server_id).await? {
                core.events.publish(HubEvent::named(
                    "server.claimed",
                    &user.id,
                    &server_id,
                    serde_json::json!({"server_id": server_id, "server_name": server.server_name}),
                ));
            }
            Ok(server_id)
        }
        Redemption::NotFound => Err(DomainError::Claim(ClaimFailure::Unknown)),
        Redemption::Expired => Err(DomainError::Claim(ClaimFailure::Expired)),
        Redemption::AlreadyClaimed => Err(DomainError::Claim(ClaimFailure::AlreadyClaimed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_spec_format() {
        for _ in 0..200 {
            let code = new_claim_code();
            assert_eq!(code.len(), 9);
            assert_eq!(&code[4..5], "-");
            assert!(
                code.bytes()
                    .filter(|b| *b != b'-')
                    .all(|b| CODE_ALPHABET.contains(&b)),
                "{code}"
            );
        }
    }

    #[test]
    fn typed_codes_are_normalised() {
        assert_eq!(normalise_code("k7qx m2p9").as_deref(), Some("K7QX-M2P9"));
        assert_eq!(normalise_code(" K7QX-M2P9 ").as_deref(), Some("K7QX-M2P9"));
        assert_eq!(normalise_code("k7qxm2p9").as_deref(), Some("K7QX-M2P9"));
        assert_eq!(normalise_code("K7QX-M2P"), None);
        assert_eq!(normalise_code(""), None);
    }
}
