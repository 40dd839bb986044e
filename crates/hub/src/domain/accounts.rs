//! Accounts (SPEC E "Auth", F.1): validation of new accounts, registration (API, sign-up form
//! and the `user create` CLI), login with its rate limit, refresh rotation, logout, the user
//! DTO — each with its audit rows.

use phlix_proto::auth::{AuthResponse, RegisterRequest, User};

use super::events::HubEvent;
use super::settings::{ACCESS_TTL, REFRESH_TTL};
use super::{ClientInfo, Core, DomainError, DomainResult, audit};
use crate::auth::now_unix;
use crate::auth::password::PasswordHasherPool;
use crate::auth::session::TokenKind;
use crate::store::{NewUser, Store, StoreError, UserRow};

/// Limits of a new account (SPEC E: username 3–50, password ≥ 8).
pub const USERNAME_LEN: std::ops::RangeInclusive<usize> = 3..=50;
pub const PASSWORD_MIN: usize = 8;
/// Argon2 accepts longer input, but nobody types this much and it bounds the work per request.
pub const PASSWORD_MAX: usize = 1024;
pub const EMAIL_MAX: usize = 255;
pub const DISPLAY_NAME_MAX: usize = 128;

/// A registration that passed validation; `email` is lowercased.
#[derive(Debug, Clone)]
pub struct Registration {
    pub username: String,
    pub email: String,
    pub password: String,
    pub display_name: Option<String>,
}

/// Checks a registration request and says what is wrong in words a user understands.
///
/// User names are letters, digits, `.`, `_` and `-` so that they can never be mistaken for an
/// e-mail address at login.
///
/// # Errors
/// A one-sentence message naming the offending field.
pub fn validate(request: &RegisterRequest) -> Result<Registration, String> {
    let username = request
        .username
        .as_deref()
        .map(str::trim)
        .unwrap_or_default();
    if username.is_empty() {
        return Err("username is required".into());
    }
    if !USERNAME_LEN.contains(&username.chars().count()) {
        return Err(format!(
            "username must be {} to {} characters long",
            USERNAME_LEN.start(),
            USERNAME_LEN.end()
        ));
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err("username may only contain letters, digits, '.', '_' and '-'".into());
    }
    let email = request.email.as_deref().map(str::trim).unwrap_or_default();
    if email.is_empty() {
        return Err("email is required".into());
    }
    if !is_plausible_email(email) {
        return Err("email is not a valid e-mail address".into());
    }
    let password = request.password.as_deref().unwrap_or_default();
    if password.is_empty() {
        return Err("password is required".into());
    }
    if password.chars().count() < PASSWORD_MIN {
        return Err(format!(
            "password must be at least {PASSWORD_MIN} characters long"
        ));
    }
    if password.len() > PASSWORD_MAX {
        return Err(format!(
            "password must be at most {PASSWORD_MAX} bytes long"
        ));
    }
    let display_name = request
        .display_name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty());
    if display_name.is_some_and(|name| name.chars().count() > DISPLAY_NAME_MAX) {
        return Err(format!(
            "display_name must be at most {DISPLAY_NAME_MAX} characters long"
        ));
    }
    Ok(Registration {
        username: username.to_owned(),
        email: email.to_lowercase(),
        password: password.to_owned(),
        display_name: display_name.map(str::to_owned),
    })
}

fn is_plausible_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else {
        return false;
    };
    email.len() <= EMAIL_MAX
        && !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("password hashing failed: {0}")]
    Hash(#[from] anyhow::Error),
}

/// Hashes the password and inserts the user (the first user becomes admin).
///
/// # Errors
/// `Store(Conflict(..))` for a taken user name or e-mail; store or hashing failures.
pub async fn register(
    store: &Store,
    passwords: &PasswordHasherPool,
    registration: Registration,
    force_admin: bool,
) -> Result<UserRow, RegisterError> {
    let password_hash = passwords.hash(registration.password).await?;
    let user = NewUser {
        id: uuid::Uuid::new_v4().to_string(),
        username: registration.username,
        email: registration.email,
        password_hash,
        display_name: registration.display_name,
        force_admin,
        now: now_unix(),
    };
    Ok(store.create_user(&user).await?)
}

/// The user `user_id`, if the account exists.
///
/// # Errors
/// Database failures.
pub async fn find_user(core: &Core, user_id: &str) -> DomainResult<Option<UserRow>> {
    Ok(core.store.user_by_id(user_id).await?)
}

/// The API view of a user row.
#[must_use]
pub fn user_dto(row: &UserRow) -> User {
    User {
        id: row.id.clone(),
        username: row.username.clone(),
        email: row.email.clone(),
        display_name: row.display_name.clone(),
        is_admin: row.is_admin,
        created_at: format_datetime(row.created_at),
        updated_at: format_datetime(row.updated_at),
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS` (UTC), the PHP hub's DATETIME text.
#[must_use]
pub fn format_datetime(unix: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// Failed logins allowed per IP and window (SPEC B.6: login 5 / 900 s).
pub const LOGIN_MAX_FAILURES: i64 = 5;
/// Length of the login rate-limit window.
pub const LOGIN_WINDOW_SECS: i64 = 900;
/// Failed logins allowed per account and window, from any number of addresses (ours: the
/// per-IP limit alone let 20 addresses × 5 guesses at one account). The account is then locked
/// until its window ends, except for addresses it has signed in from before; a successful
/// sign-in from one of those, or an admin, lifts the lock.
pub const ACCOUNT_MAX_FAILURES: i64 = 10;

fn account_key(user_id: &str) -> String {
    format!("login:account:{user_id}")
}

/// Mints an access/refresh pair with the TTLs in force now.
pub async fn issue_tokens(core: &Core, user: &UserRow) -> DomainResult<AuthResponse> {
    let access_ttl = ACCESS_TTL.get(&core.store).await?;
    let refresh_ttl = REFRESH_TTL.get(&core.store).await?;
    let (access_token, claims) = core
        .sessions
        .mint(TokenKind::Access, &user.id, access_ttl, user.session_epoch)
        .map_err(|e| DomainError::Internal(e.into()))?;
    let (refresh_token, _) = core
        .sessions
        .mint(
            TokenKind::Refresh,
            &user.id,
            refresh_ttl,
            user.session_epoch,
        )
        .map_err(|e| DomainError::Internal(e.into()))?;
    Ok(AuthResponse {
        access_token,
        refresh_token,
        token_type: "Bearer".into(),
        expires_in: access_ttl,
        user: user_dto(user),
        claims,
    })
}

/// Validates and creates an account (the first one becomes admin) with its audit row; shared
/// by the JSON API and the sign-up form.
///
/// # Errors
/// 400 on invalid fields, 403 `signups_disabled` (unless `invite_token` is a usable invite
/// link), 409 when the username or e-mail is taken.
pub async fn create_account(
    core: &Core,
    client: &ClientInfo,
    request: &RegisterRequest,
    invite_token: Option<&str>,
) -> DomainResult<UserRow> {
    let registration = validate(request).map_err(|message| DomainError::Invalid {
        code: "invalid_request",
        message,
    })?;
    // With sign-ups disabled only an invite link lets a visitor in (the link is the
    // permission, SPEC N); the very first account can always be made.
    if super::settings::signups_disabled(core).await? && core.store.count_users().await? > 0 {
        let invited = match invite_token {
            Some(token) => super::shares::invite_is_usable(core, token).await?,
            None => false,
        };
        if !invited {
            return Err(DomainError::Denied {
                code: "signups_disabled",
                message: "Sign-ups are disabled on this hub; ask for an invite link".into(),
            });
        }
    }
    let user = register(&core.store, &core.passwords, registration, false)
        .await
        .map_err(|err| match err {
            RegisterError::Store(err) => DomainError::from(err),
            RegisterError::Hash(err) => DomainError::Internal(err),
        })?;
    core.store
        .audit(&audit::entry(
            "auth.register",
            client,
            Some(&user.id),
            true,
            None,
        ))
        .await?;
    tracing::info!(user_id = %user.id, is_admin = user.is_admin, "user registered");
    // Hub scope only (SPEC P.2): the user's own endpoints cannot exist yet.
    core.events.publish(HubEvent::named(
        "user.created",
        "",
        "",
        serde_json::json!({"id": user.id, "username": user.username, "email": user.email,
                           "is_admin": user.is_admin, "created_at": user.created_at}),
    ));
    Ok(user)
}

/// Checks a login (username or e-mail) and password, with the per-IP and per-account failure
/// limits and the audit rows; shared by the JSON API and the login form.
///
/// # Errors
/// 400 when a field is empty, 401 on bad credentials, 429 while the IP is locked out or the
/// account is locked for this address.
pub async fn authenticate(
    core: &Core,
    client: &ClientInfo,
    login: &str,
    password: String,
) -> DomainResult<UserRow> {
    let rate_key = format!("login:ip:{}", client.ip);
    let now = now_unix();
    if let Some(retry_after) = core
        .store
        .rate_limit_retry_after(&rate_key, LOGIN_MAX_FAILURES, now)
        .await?
    {
        return Err(DomainError::RateLimited {
            retry_after: u64::try_from(retry_after).unwrap_or(1).max(1),
        });
    }
    let login = login.trim();
    if login.is_empty() {
        return Err(DomainError::Invalid {
            code: "invalid_request",
            message: "username or email is required".into(),
        });
    }
    if password.is_empty() {
        return Err(DomainError::Invalid {
            code: "invalid_request",
            message: "password is required".into(),
        });
    }
    if login.len() > 255 || password.len() > PASSWORD_MAX {
        return Err(DomainError::InvalidCredentials);
    }
    let user = core.store.user_by_login(login).await?;
    if let Some(user) = &user
        && let Some(retry_after) = core
            .store
            .rate_limit_retry_after(&account_key(&user.id), ACCOUNT_MAX_FAILURES, now)
            .await?
        && !core.store.has_signed_in_from(&user.id, &client.ip).await?
    {
        // Locked, and this address is a stranger to the account: refuse without checking the
        // password (which would tell a guesser whether it was right), and count the attempt
        // against the address.
        core.store
            .record_rate_limit_failure(&rate_key, LOGIN_WINDOW_SECS, now)
            .await?;
        let mut entry = audit::entry(
            "auth.login.failure",
            client,
            Some(&user.id),
            false,
            Some("account_locked"),
        );
        entry.context_json = serde_json::to_string(&serde_json::json!({ "login": login })).ok();
        core.store.audit(&entry).await?;
        return Err(DomainError::AccountLocked {
            retry_after: u64::try_from(retry_after).unwrap_or(1).max(1),
        });
    }
    let verified = core
        .passwords
        .verify(password, user.as_ref().map(|u| u.password_hash.clone()))
        .await
        .map_err(DomainError::Internal)?;
    match user {
        Some(user) if verified && user.disabled_at.is_some() => {
            core.store
                .audit(&audit::entry(
                    "auth.login.failure",
                    client,
                    Some(&user.id),
                    false,
                    Some("account_disabled"),
                ))
                .await?;
            Err(DomainError::AccountDisabled)
        }
        Some(user) if verified => {
            core.store.touch_login(&user.id, now).await?;
            if core.store.clear_rate_limit(&account_key(&user.id)).await? {
                tracing::info!(user_id = %user.id, "account failure count cleared by a sign-in");
            }
            core.store
                .audit(&audit::entry(
                    "auth.login.success",
                    client,
                    Some(&user.id),
                    true,
                    None,
                ))
                .await?;
            Ok(user)
        }
        user => {
            core.store
                .record_rate_limit_failure(&rate_key, LOGIN_WINDOW_SECS, now)
                .await?;
            let reason = if user.is_some() {
                "wrong_password"
            } else {
                "unknown_user"
            };
            let mut entry = audit::entry(
                "auth.login.failure",
                client,
                user.as_ref().map(|u| u.id.as_str()),
                false,
                Some(reason),
            );
            entry.context_json = serde_json::to_string(&serde_json::json!({ "login": login })).ok();
            core.store.audit(&entry).await?;
            // The login name stays in the audit row; the log says who tried from where.
            tracing::info!(
                ip = %client.ip,
                user_id = user.as_ref().map(|u| u.id.as_str()),
                reason,
                "sign-in failed"
            );
            if let Some(user) = &user {
                let failures = core
                    .store
                    .record_rate_limit_failure(&account_key(&user.id), LOGIN_WINDOW_SECS, now)
                    .await?;
                if failures == ACCOUNT_MAX_FAILURES {
                    lock_account(core, client, user, failures, now).await?;
                }
            }
            Err(DomainError::InvalidCredentials)
        }
    }
}

/// The account reached [`ACCOUNT_MAX_FAILURES`]: an audit row and an `auth.account_locked`
/// event on the user's own event stream.
async fn lock_account(
    core: &Core,
    client: &ClientInfo,
    user: &UserRow,
    failures: i64,
    now: i64,
) -> DomainResult<()> {
    let locked_until = core
        .store
        .rate_limit_retry_after(&account_key(&user.id), ACCOUNT_MAX_FAILURES, now)
        .await?
        .map_or(now + LOGIN_WINDOW_SECS, |left| now + left);
    let mut entry = audit::entry(
        "auth.account_locked",
        client,
        Some(&user.id),
        true,
        Some("too_many_failures"),
    );
    entry.context_json = serde_json::to_string(&serde_json::json!({
        "failures": failures,
        "locked_until": locked_until,
    }))
    .ok();
    core.store.audit(&entry).await?;
    core.events
        .publish(HubEvent::account_locked(&user.id, failures, locked_until));
    tracing::warn!(user_id = %user.id, failures, locked_until, "account locked after failed sign-ins");
    Ok(())
}

/// An admin lifts the lock (and the failure count) of `user_id`'s sign-ins. Returns whether
/// there was anything to lift.
///
/// # Errors
/// 404 `user.not_found`; database failures.
pub async fn unlock(
    core: &Core,
    admin_id: &str,
    client: &ClientInfo,
    user_id: &str,
) -> DomainResult<bool> {
    if core.store.user_by_id(user_id).await?.is_none() {
        return Err(DomainError::NotFound("user.not_found"));
    }
    let lifted = core.store.clear_rate_limit(&account_key(user_id)).await?;
    let mut entry = audit::entry("auth.account_unlocked", client, Some(user_id), true, None);
    entry.context_json = serde_json::to_string(&serde_json::json!({
        "admin_id": admin_id,
        "was_locked": lifted,
    }))
    .ok();
    core.store.audit(&entry).await?;
    Ok(lifted)
}

/// Spends a refresh token: verifies it, revokes its `jti` (so it works exactly once) and
/// mints a new access and refresh pair. Shared by the API and the pages' session renewal.
///
/// # Errors
/// 401 `auth.invalid_refresh_token` for a forged, expired, revoked or orphaned token.
pub async fn rotate_refresh(core: &Core, token: &str) -> DomainResult<AuthResponse> {
    let claims = core
        .sessions
        .verify(token, TokenKind::Refresh)
        .map_err(|_| DomainError::InvalidRefreshToken)?;
    let jti = claims
        .jti
        .as_deref()
        .ok_or(DomainError::InvalidRefreshToken)?;
    let user = core
        .store
        .user_by_id(&claims.sub)
        .await?
        .ok_or(DomainError::InvalidRefreshToken)?;
    if user.disabled_at.is_some() {
        return Err(DomainError::AccountDisabled);
    }
    if claims.sv != user.session_epoch {
        // Signed out everywhere (or the password was reset) after this token was issued.
        return Err(DomainError::InvalidRefreshToken);
    }
    if !core
        .store
        .revoke_refresh(jti, &user.id, claims.exp, now_unix())
        .await?
    {
        tracing::warn!(user_id = %user.id, "refresh token presented again after rotation or logout");
        return Err(DomainError::InvalidRefreshToken);
    }
    issue_tokens(core, &user).await
}

/// Ends a session: revokes the presented refresh token (if it is one) and writes the
/// `auth.logout` audit row. Shared by the API and the sign-out button.
///
/// # Errors
/// Database failures only.
pub async fn end_session(
    core: &Core,
    client: &ClientInfo,
    refresh: Option<String>,
) -> DomainResult<()> {
    let mut user_id = None;
    if let Some(token) = refresh
        && let Ok(claims) = core.sessions.verify(&token, TokenKind::Refresh)
        && let Some(jti) = claims.jti.as_deref()
    {
        core.store
            .revoke_refresh(jti, &claims.sub, claims.exp, now_unix())
            .await?;
        user_id = Some(claims.sub.clone());
    }
    core.store
        .audit(&audit::entry(
            "auth.logout",
            client,
            user_id.as_deref(),
            true,
            None,
        ))
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(username: &str, email: &str, password: &str) -> RegisterRequest {
        RegisterRequest {
            username: Some(username.into()),
            email: Some(email.into()),
            password: Some(password.into()),
            display_name: None,
        }
    }

    #[test]
    fn valid_registrations_are_normalised() {
        let ok = validate(&request(" alice ", "Alice@Example.COM", "password1")).unwrap();
        assert_eq!(ok.username, "alice");
        assert_eq!(ok.email, "alice@example.com");
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (request("", "a@b.co", "password1"), "username is required"),
            (
                request("al", "a@b.co", "password1"),
                "username must be 3 to 50",
            ),
            (
                request(&"a".repeat(51), "a@b.co", "password1"),
                "username must be 3 to 50",
            ),
            (
                request("al ice", "a@b.co", "password1"),
                "username may only contain",
            ),
            (
                request("al@ice", "a@b.co", "password1"),
                "username may only contain",
            ),
            (request("alice", "", "password1"), "email is required"),
            (
                request("alice", "not-an-email", "password1"),
                "email is not a valid",
            ),
            (request("alice", "a@b", "password1"), "email is not a valid"),
            (request("alice", "a@b.co", ""), "password is required"),
            (request("alice", "a@b.co", "short"), "at least 8"),
            (
                request("alice", "a@b.co", &"x".repeat(1025)),
                "at most 1024",
            ),
        ];
        for (req, expected) in cases {
            let err = validate(&req).unwrap_err();
            assert!(
                err.contains(expected),
                "{err:?} should contain {expected:?}"
            );
        }
    }

    #[test]
    fn datetimes_use_the_php_format() {
        assert_eq!(format_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(format_datetime(1_760_000_000), "2025-10-09 08:53:20");
    }
}
