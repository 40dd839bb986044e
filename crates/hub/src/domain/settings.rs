//! Hub settings (SPEC H.3): the keys admins may set, their types, defaults and ranges, and the
//! UI metadata of the settings page. Values are read at each use, so a change applies at once
//! (to the next token minted, the next media request, …) without a restart.
//!
//! Every write is all-or-nothing: each `key: value` of an update is checked first, then all of
//! them are written in one transaction. `null` removes an override (back to the default).

use serde_json::{Map, Value, json};

use super::{ClientInfo, Core, DomainError, DomainResult, audit};
use crate::auth::now_unix;
use crate::config::Config;
use crate::store::{Store, StoreResult};

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
/// `requests.movie_limit`: movie requests per user per 7 days (0 = unlimited; SPEC O).
pub const MOVIE_LIMIT: IntSetting = IntSetting {
    key: "requests.movie_limit",
    default: 0,
    min: 0,
    max: 1000,
};
/// `requests.series_limit`: series requests per user per 7 days (0 = unlimited; SPEC O).
pub const SERIES_LIMIT: IntSetting = IntSetting {
    key: "requests.series_limit",
    default: 0,
    min: 0,
    max: 1000,
};

/// `server.max_servers_per_user`: servers one account may pair (0 = unlimited).
pub const MAX_SERVERS_PER_USER: IntSetting = IntSetting {
    key: "server.max_servers_per_user",
    default: 0,
    min: 0,
    max: 1000,
};
/// `server.metrics.retention_days`: how long heartbeat rows (the metrics history) are kept.
pub const METRICS_RETENTION_DAYS: IntSetting = IntSetting {
    key: "server.metrics.retention_days",
    default: 7,
    min: 1,
    max: 3650,
};
/// `server.relay.reconnect_drain_grace_seconds` (float): how long a displaced tunnel may
/// finish its in-flight requests (overrides `--relay-drain-grace` once set).
pub const DRAIN_GRACE: &str = "server.relay.reconnect_drain_grace_seconds";
/// `federation.enabled` (bool): hub-to-hub federation (SPEC R; not implemented yet, stored).
pub const FEDERATION_ENABLED: &str = "federation.enabled";

/// `auth.signups_disabled` (bool): sign-up refused, except through an invite link.
pub const SIGNUPS_DISABLED: &str = "auth.signups_disabled";
/// `hub.maintenance_mode` (bool): the user API answers 503 (SPEC Q.4, `super::maintenance`).
pub const MAINTENANCE_MODE: &str = "hub.maintenance_mode";
/// `requests.auto_approve` (bool): a new media request is approved at once (SPEC O).
pub const AUTO_APPROVE: &str = "requests.auto_approve";

/// The type of a setting and what it accepts.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// A JSON integer in a range.
    Int(IntSetting),
    /// `true` / `false`.
    Bool { default: bool },
    /// An `http://` or `https://` URL (of an *arr service).
    Url { default: &'static str },
    /// Free text of at most `max_len` characters, no control characters.
    Text {
        default: &'static str,
        max_len: usize,
    },
    /// A JSON number in a range.
    Float { default: f64, min: f64, max: f64 },
}

/// A settable key with its metadata.
#[derive(Debug, Clone, Copy)]
pub struct Setting {
    pub key: &'static str,
    pub kind: Kind,
    /// Area of the settings page: `accounts`, `maintenance`, `sharing`, `servers`, `requests`,
    /// `radarr`, `sonarr`.
    pub group: &'static str,
    pub label: &'static str,
    pub help: &'static str,
}

impl Setting {
    /// `int`, `bool` or `string` (SPEC H.3 `types`).
    #[must_use]
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Int(_) => "int",
            Kind::Bool { .. } => "bool",
            Kind::Url { .. } | Kind::Text { .. } => "string",
            Kind::Float { .. } => "float",
        }
    }

    /// The value when no admin has set one: the schema's, or the environment's start-up
    /// default for the *arr `enabled`/`url` keys.
    #[must_use]
    pub fn default_value(&self, config: &Config) -> Value {
        let env = match self.key {
            "server.arr.radarr.enabled" => config.radarr.enabled.map(Value::from),
            "server.arr.sonarr.enabled" => config.sonarr.enabled.map(Value::from),
            "server.arr.radarr.url" => config.radarr.url.clone().map(Value::from),
            "server.arr.sonarr.url" => config.sonarr.url.clone().map(Value::from),
            DRAIN_GRACE => Some(json!(config.relay_timers.drain_grace.as_secs_f64())),
            _ => None,
        };
        env.unwrap_or_else(|| match self.kind {
            Kind::Int(int) => json!(int.default),
            Kind::Bool { default } => json!(default),
            Kind::Url { default } | Kind::Text { default, .. } => json!(default),
            Kind::Float { default, .. } => json!(default),
        })
    }

    /// Checks a JSON value (SPEC H.3: strict types) and gives its stored text.
    ///
    /// # Errors
    /// The message of the 400 `invalid_type`.
    pub fn check(&self, value: &Value) -> Result<String, String> {
        match self.kind {
            Kind::Int(int) => {
                let number = value
                    .as_i64()
                    .filter(|_| value.is_i64() || value.is_u64())
                    .ok_or_else(|| "Must be an integer".to_owned())?;
                if number < int.min {
                    return Err(format!("Must be >= {}", int.min));
                }
                if number > int.max {
                    return Err(format!("Must be <= {}", int.max));
                }
                Ok(number.to_string())
            }
            Kind::Bool { .. } => value
                .as_bool()
                .map(|b| b.to_string())
                .ok_or_else(|| "Must be true or false".to_owned()),
            Kind::Float { min, max, .. } => {
                let number = value
                    .as_f64()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| "Must be a number".to_owned())?;
                if number < min {
                    return Err(format!("Must be >= {min}"));
                }
                if number > max {
                    return Err(format!("Must be <= {max}"));
                }
                Ok(number.to_string())
            }
            Kind::Url { .. } => {
                let text = value
                    .as_str()
                    .ok_or_else(|| "Must be a string".to_owned())?;
                check_url(text.trim()).map(|()| text.trim().trim_end_matches('/').to_owned())
            }
            Kind::Text { max_len, .. } => {
                let text = value
                    .as_str()
                    .ok_or_else(|| "Must be a string".to_owned())?;
                if text.chars().count() > max_len {
                    return Err(format!("Must be at most {max_len} characters"));
                }
                if text.chars().any(char::is_control) {
                    return Err("Must not contain control characters".to_owned());
                }
                Ok(text.trim().to_owned())
            }
        }
    }

    /// The typed value of stored text, if it still passes [`Setting::check`].
    fn parse_stored(&self, text: &str) -> Option<Value> {
        let value = match self.kind {
            Kind::Int(_) => json!(text.trim().parse::<i64>().ok()?),
            Kind::Bool { .. } => json!(matches!(text.trim(), "true" | "1")),
            Kind::Url { .. } | Kind::Text { .. } => json!(text),
            Kind::Float { .. } => json!(text.trim().parse::<f64>().ok()?),
        };
        self.check(&value).ok().map(|_| value)
    }

    /// Parses what a settings form sent for this key (`None` = the field was absent, which
    /// for a checkbox means off).
    ///
    /// # Errors
    /// A message for the field.
    pub fn from_form(&self, text: Option<&str>) -> Result<Value, String> {
        let text = text.map(str::trim);
        let value = match self.kind {
            Kind::Int(int) => json!(
                text.unwrap_or_default()
                    .parse::<i64>()
                    .ok()
                    .filter(|v| (int.min..=int.max).contains(v))
                    .ok_or_else(|| format!(
                        "Enter a whole number from {} to {}.",
                        int.min, int.max
                    ))?
            ),
            Kind::Bool { .. } => json!(matches!(text, Some("on" | "true" | "1"))),
            Kind::Url { .. } | Kind::Text { .. } => json!(text.unwrap_or_default()),
            Kind::Float { min, max, .. } => json!(
                text.unwrap_or_default()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite() && (min..=max).contains(v))
                    .ok_or_else(|| format!("Enter a number from {min} to {max}."))?
            ),
        };
        self.check(&value).map(|_| value)
    }
}

fn check_url(text: &str) -> Result<(), String> {
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .ok_or_else(|| "Must be an http:// or https:// URL".to_owned())?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() || text.len() > 2048 {
        return Err("Must be an http:// or https:// URL with a host".to_owned());
    }
    if authority.contains('@') {
        return Err("Must not contain credentials (the API key comes from the environment)".into());
    }
    if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("Must not contain spaces or control characters".to_owned());
    }
    Ok(())
}

const fn int(
    setting: IntSetting,
    group: &'static str,
    label: &'static str,
    help: &'static str,
) -> Setting {
    Setting {
        key: setting.key,
        kind: Kind::Int(setting),
        group,
        label,
        help,
    }
}

const fn boolean(
    key: &'static str,
    group: &'static str,
    label: &'static str,
    help: &'static str,
) -> Setting {
    Setting {
        key,
        kind: Kind::Bool { default: false },
        group,
        label,
        help,
    }
}

/// Every key the API and the settings page may read or write, in page order.
pub const SCHEMA: [Setting; 22] = [
    int(
        ACCESS_TTL,
        "accounts",
        "Access token lifetime (seconds)",
        "How long a sign-in stays valid before it is silently renewed.",
    ),
    int(
        REFRESH_TTL,
        "accounts",
        "Refresh token lifetime (seconds)",
        "How long a browser stays signed in without activity.",
    ),
    boolean(
        SIGNUPS_DISABLED,
        "accounts",
        "Disable sign-up",
        "Nobody can create an account on the sign-up page; an invite link still allows it.",
    ),
    boolean(
        MAINTENANCE_MODE,
        "maintenance",
        "Maintenance mode",
        "While on, the API answers 503 to everyone except sign-in, settings, health, JWKS, the admin routes and the home servers themselves; tunnels and the relay keep working, and every page shows a banner.",
    ),
    int(
        ENROLLMENT_TTL,
        "servers",
        "Enrollment token lifetime (seconds)",
        "How long a paired server's token is valid before it must renew it.",
    ),
    int(
        MAX_SERVERS_PER_USER,
        "servers",
        "Servers per account",
        "How many servers one account may pair; 0 = no limit. Administrators are exempt.",
    ),
    int(
        METRICS_RETENTION_DAYS,
        "servers",
        "Metrics history (days)",
        "How long each server's heartbeats and host metrics are kept (at most 100 rows per server).",
    ),
    Setting {
        key: DRAIN_GRACE,
        kind: Kind::Float {
            default: 5.0,
            min: 0.0,
            max: 300.0,
        },
        group: "relay",
        label: "Reconnect drain grace (seconds)",
        help: "When a server reconnects, how long its previous tunnel may finish requests in flight. Until set, the --relay-drain-grace flag applies.",
    },
    boolean(
        FEDERATION_ENABLED,
        "federation",
        "Federation",
        "Hub-to-hub federation. Not available in this version yet: the value is kept for when it is.",
    ),
    int(
        MAX_USERS_PER_SERVER,
        "sharing",
        "Collaborators per server",
        "How many different people one server may be shared with; 0 = no limit.",
    ),
    int(
        INVITE_DEFAULT_EXPIRY,
        "sharing",
        "Invite link lifetime (seconds)",
        "How long a new invite link works when its creator sets no expiry; 0 = never expires.",
    ),
    boolean(
        AUTO_APPROVE,
        "requests",
        "Approve requests automatically",
        "A new media request is sent to Radarr or Sonarr at once, without an administrator.",
    ),
    int(
        MOVIE_LIMIT,
        "requests",
        "Movie requests per user per week",
        "How many films one person may request in 7 days; 0 = no limit. Administrators are exempt.",
    ),
    int(
        SERIES_LIMIT,
        "requests",
        "Series requests per user per week",
        "How many series one person may request in 7 days; 0 = no limit. Administrators are exempt.",
    ),
    boolean(
        "server.arr.radarr.enabled",
        "radarr",
        "Use Radarr",
        "Approved film requests are added to Radarr. Its API key comes from HUB_RADARR_API_KEY (or _FILE).",
    ),
    Setting {
        key: "server.arr.radarr.url",
        kind: Kind::Url {
            default: "http://localhost:7878",
        },
        group: "radarr",
        label: "Radarr URL",
        help: "Base URL of Radarr, as the hub reaches it.",
    },
    int(
        IntSetting {
            key: "server.arr.radarr.quality_profile_id",
            default: 0,
            min: 0,
            max: 1_000_000,
        },
        "radarr",
        "Radarr quality profile id",
        "0 = the first profile Radarr lists.",
    ),
    Setting {
        key: "server.arr.radarr.root_folder",
        kind: Kind::Text {
            default: "",
            max_len: 1024,
        },
        group: "radarr",
        label: "Radarr root folder",
        help: "Empty = the first root folder Radarr lists.",
    },
    boolean(
        "server.arr.sonarr.enabled",
        "sonarr",
        "Use Sonarr",
        "Approved series requests are added to Sonarr. Its API key comes from HUB_SONARR_API_KEY (or _FILE).",
    ),
    Setting {
        key: "server.arr.sonarr.url",
        kind: Kind::Url {
            default: "http://localhost:8989",
        },
        group: "sonarr",
        label: "Sonarr URL",
        help: "Base URL of Sonarr, as the hub reaches it.",
    },
    int(
        IntSetting {
            key: "server.arr.sonarr.quality_profile_id",
            default: 0,
            min: 0,
            max: 1_000_000,
        },
        "sonarr",
        "Sonarr quality profile id",
        "0 = the first profile Sonarr lists.",
    ),
    Setting {
        key: "server.arr.sonarr.root_folder",
        kind: Kind::Text {
            default: "",
            max_len: 1024,
        },
        group: "sonarr",
        label: "Sonarr root folder",
        help: "Empty = the first root folder Sonarr lists.",
    },
];

/// The schema entry of `key`.
#[must_use]
pub fn find(key: &str) -> Option<&'static Setting> {
    SCHEMA.iter().find(|s| s.key == key)
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

/// The effective value of `key` (stored, else default); `Value::Null` for an unknown key.
///
/// # Errors
/// Database failures only.
pub async fn value(core: &Core, key: &str) -> DomainResult<Value> {
    let Some(setting) = find(key) else {
        return Ok(Value::Null);
    };
    Ok(core
        .store
        .setting(key)
        .await?
        .and_then(|text| setting.parse_stored(&text))
        .unwrap_or_else(|| setting.default_value(&core.config)))
}

/// The effective boolean `key`.
///
/// # Errors
/// Database failures only.
pub async fn flag(core: &Core, key: &str) -> DomainResult<bool> {
    Ok(value(core, key).await?.as_bool().unwrap_or(false))
}

/// The effective string `key`.
///
/// # Errors
/// Database failures only.
pub async fn text(core: &Core, key: &str) -> DomainResult<String> {
    Ok(value(core, key)
        .await?
        .as_str()
        .unwrap_or_default()
        .to_owned())
}

/// Whether sign-ups are disabled.
///
/// # Errors
/// Database failures only.
pub async fn signups_disabled(core: &Core) -> DomainResult<bool> {
    flag(core, SIGNUPS_DISABLED).await
}

/// Applies the settings this node keeps in memory (the relay's drain grace, the maintenance
/// flag). Called at start,
/// after every change on this node, and on each maintenance tick (changes made on other
/// nodes).
///
/// # Errors
/// Database failures only.
pub async fn apply_live(core: &Core) -> DomainResult<()> {
    // Only an admin's value overrides the flag: the stored text, checked by the schema.
    let grace = match (core.store.setting(DRAIN_GRACE).await?, find(DRAIN_GRACE)) {
        (Some(text), Some(setting)) => setting
            .parse_stored(&text)
            .and_then(|value| value.as_f64())
            .map(std::time::Duration::from_secs_f64),
        _ => None,
    };
    core.relay.set_drain_grace(grace);
    // Other nodes follow the maintenance flag within `maintenance::REFRESH` anyway.
    core.maintenance.set(flag(core, MAINTENANCE_MODE).await?);
    Ok(())
}

/// One key as the settings API and page show it.
#[derive(Debug, Clone)]
pub struct Current {
    pub setting: &'static Setting,
    pub value: Value,
    pub overridden: bool,
}

/// Every setting with its effective value and whether an admin set it.
///
/// # Errors
/// Database failures only.
pub async fn current(core: &Core) -> DomainResult<Vec<Current>> {
    let stored: std::collections::HashMap<String, String> =
        core.store.all_settings().await?.into_iter().collect();
    Ok(SCHEMA
        .iter()
        .map(|setting| {
            let parsed = stored
                .get(setting.key)
                .and_then(|text| setting.parse_stored(text));
            Current {
                setting,
                overridden: parsed.is_some(),
                value: parsed.unwrap_or_else(|| setting.default_value(&core.config)),
            }
        })
        .collect())
}

/// Checks every `key: value` of `map` (SPEC H.3: 400 `invalid_key` for a key that is not
/// settable, 400 `invalid_type` for a wrong type or range) before any is written, then writes
/// them all in one transaction; `null` removes the override. One audit row per key.
///
/// # Errors
/// As above, and database failures.
pub async fn update(
    core: &Core,
    actor: &str,
    client: &ClientInfo,
    map: &Map<String, Value>,
) -> DomainResult<()> {
    let mut writes = Vec::with_capacity(map.len());
    for (key, value) in map {
        let setting = find(key).ok_or_else(|| {
            DomainError::invalid(
                "invalid_key",
                format!("{key} is not a setting the API may change"),
            )
        })?;
        let stored = if value.is_null() {
            None
        } else {
            Some(setting.check(value).map_err(|message| {
                DomainError::invalid("invalid_type", format!("{key}: {message}"))
            })?)
        };
        writes.push((setting.key, stored, setting.type_name()));
    }
    let now = now_unix();
    core.store.write_settings(&writes, now).await?;
    // This node follows at once.
    apply_live(core).await?;
    for (key, stored, _) in &writes {
        let mut entry = audit::entry("settings.changed", client, Some(actor), true, None);
        entry.resource = Some("settings".into());
        entry.action = Some("settings.update".into());
        // No setting is a secret (API keys are not settable): the row records the new value.
        entry.context_json = Some(json!({"key": key, "value": stored}).to_string());
        core.store.audit(&entry).await?;
    }
    Ok(())
}
