//! Hub settings (SPEC H.3): the keys admins may set, their defaults and ranges. Values are read
//! at each use, so a change applies to the next token minted without a restart.

use serde_json::{Map, Value};

use super::{Core, DomainError, DomainResult};
use crate::auth::now_unix;
use crate::store::{Store, StoreError, StoreResult};

/// One integer setting.
#[derive(Debug, Clone, Copy)]
pub struct IntSetting {
    pub key: &'static str,
    pub default: i64,
    pub min: i64,
    pub max: i64,
}

/// `server.enrollment_ttl`: lifetime of enrollment JWTs.
pub const ENROLLMENT_TTL: IntSetting = IntSetting {
    key: "server.enrollment_ttl",
    default: 604_800,
    min: 60,
    max: 2_592_000,
};
/// `auth.access_ttl`: lifetime of access tokens.
pub const ACCESS_TTL: IntSetting = IntSetting {
    key: "auth.access_ttl",
    default: 3600,
    min: 300,
    max: 86_400,
};
/// `auth.refresh_ttl`: lifetime of refresh tokens.
pub const REFRESH_TTL: IntSetting = IntSetting {
    key: "auth.refresh_ttl",
    default: 604_800,
    min: 3600,
    max: 2_592_000,
};

/// `invite.default_expiry_seconds`: lifetime of an invite link created without `expires_in`
/// (0 = never expires; SPEC N).
pub const INVITE_DEFAULT_EXPIRY: IntSetting = IntSetting {
    key: "invite.default_expiry_seconds",
    default: 604_800,
    min: 0,
    max: 31_536_000,
};
/// `server.max_users_per_server`: distinct active collaborators per server (0 = unlimited;
/// SPEC M).
pub const MAX_USERS_PER_SERVER: IntSetting = IntSetting {
    key: "server.max_users_per_server",
    default: 0,
    min: 0,
    max: 10_000,
};

/// Every setting the API may read or write.
pub const ALL: [IntSetting; 5] = [
    ENROLLMENT_TTL,
    ACCESS_TTL,
    REFRESH_TTL,
    INVITE_DEFAULT_EXPIRY,
    MAX_USERS_PER_SERVER,
];

/// `auth.signups_disabled` (bool, SPEC H.3): sign-up refused, except through an invite link.
pub const SIGNUPS_DISABLED: &str = "auth.signups_disabled";

/// Whether sign-ups are disabled (`true`/`1` stored; anything else is off).
///
/// # Errors
/// Database failures only.
pub async fn signups_disabled(core: &Core) -> DomainResult<bool> {
    Ok(core
        .store
        .setting(SIGNUPS_DISABLED)
        .await?
        .is_some_and(|v| matches!(v.trim(), "true" | "1")))
}

impl IntSetting {
    /// Whether `value` is inside the allowed range.
    #[must_use]
    pub fn accepts(&self, value: i64) -> bool {
        (self.min..=self.max).contains(&value)
    }

    /// The current value: the stored one when it parses and is in range, else the default.
    ///
    /// # Errors
    /// Database failures only.
    pub async fn get(&self, store: &Store) -> StoreResult<i64> {
        Ok(store
            .setting(self.key)
            .await?
            .and_then(|text| text.trim().parse::<i64>().ok())
            .filter(|value| self.accepts(*value))
            .unwrap_or(self.default))
    }
}

/// Writes already-validated setting values.
///
/// # Errors
/// Database failures only.
pub async fn save_settings(core: &Core, updates: &[(&'static str, i64)]) -> DomainResult<()> {
    let now = now_unix();
    for (key, value) in updates {
        core.store
            .put_setting(key, &value.to_string(), "int", now)
            .await
            .map_err(|e: StoreError| DomainError::from(e))?;
        tracing::info!(target: "audit", event = "settings.changed", key, value, "audit");
    }
    Ok(())
}

/// Every setting with its current value.
///
/// # Errors
/// Database failures only.
pub async fn current(core: &Core) -> DomainResult<Vec<(IntSetting, i64)>> {
    let mut values = Vec::with_capacity(ALL.len());
    for setting in ALL {
        values.push((setting, setting.get(&core.store).await?));
    }
    Ok(values)
}

/// Checks every `key: value` of `map` before any is written, then writes them all: an unknown
/// key (400 `unknown_setting`) or an out-of-range value (422 `invalid_setting`) changes nothing.
///
/// # Errors
/// As above, and database failures.
pub async fn update(core: &Core, map: &Map<String, Value>) -> DomainResult<()> {
    let mut updates = Vec::new();
    let mut signups = None;
    for (key, value) in map {
        if key == SIGNUPS_DISABLED {
            signups = Some(value.as_bool().ok_or_else(|| DomainError::Unprocessable {
                code: "invalid_setting",
                message: format!("{key} must be true or false"),
            })?);
            continue;
        }
        let setting = ALL.iter().find(|s| s.key == key).ok_or_else(|| {
            DomainError::invalid("unknown_setting", format!("{key} is not a hub setting"))
        })?;
        let number = value
            .as_i64()
            .filter(|v| setting.accepts(*v))
            .ok_or_else(|| DomainError::Unprocessable {
                code: "invalid_setting",
                message: format!(
                    "{key} must be an integer from {} to {}",
                    setting.min, setting.max
                ),
            })?;
        updates.push((setting.key, number));
    }
    save_settings(core, &updates).await?;
    if let Some(disabled) = signups {
        core.store
            .put_setting(
                SIGNUPS_DISABLED,
                if disabled { "true" } else { "false" },
                "bool",
                now_unix(),
            )
            .await?;
        tracing::info!(target: "audit", event = "settings.changed", key = SIGNUPS_DISABLED, value = disabled, "audit");
    }
    Ok(())
}
