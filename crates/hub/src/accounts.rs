//! Account rules shared by the HTTP API and the `user create` CLI: validation of new accounts,
//! registration and the user DTO.

use phlix_proto::auth::{RegisterRequest, User};

use crate::auth::now_unix;
use crate::auth::password::PasswordHasherPool;
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
