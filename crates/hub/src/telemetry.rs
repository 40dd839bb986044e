//! Logging: JSON lines or pretty output, filtered by `HUB_LOG` (default `info`), and the
//! in-memory ring of the last [`RING_CAPACITY`] records that the admin log routes and the logs
//! page read (SPEC Q.4).
//!
//! The ring is fed by [`RingLayer`], installed beside the output layer under the same
//! `EnvFilter`, so `HUB_LOG` decides what is printed and what is kept alike. It is a
//! process-wide value ([`log_ring`]) because the tracing subscriber it belongs to is
//! process-wide by design: there is exactly one per process, installed before any hub state
//! exists. It holds log records only, never state a handler decides on.
//!
//! Secrets never reach the ring (SPEC J.3): a field whose name contains one of
//! [`SECRET_FIELD_NAMES`] is stored as `"[redacted]"`, and in every text (the message and
//! string values) the value of a `name=value` pair whose name contains one of
//! [`SENSITIVE_PARAMS`] and the credential after `Bearer ` are replaced by `<redacted>` —
//! the same rule `crate::http::redact` applies to logged URIs.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// Records the ring keeps; the oldest is dropped when a new one arrives.
pub const RING_CAPACITY: usize = 5000;
/// Records a live subscriber may fall behind before it skips some.
const LIVE_CAPACITY: usize = 1024;

/// Field names (lower-cased, matched as substrings) whose values are never recorded.
pub const SECRET_FIELD_NAMES: [&str; 11] = [
    "password",
    "passwd",
    "token",
    "secret",
    "authorization",
    "api_key",
    "apikey",
    "cookie",
    "jwt",
    "credential",
    "private_key",
];

/// Query parameters (lower-cased, matched as substrings of the name) whose values are hidden
/// in logged URIs and texts.
pub const SENSITIVE_PARAMS: [&str; 12] = [
    "token",
    "key",
    "secret",
    "sig",
    "password",
    "passwd",
    "code",
    "jwt",
    "auth",
    "session",
    "credential",
    "ticket",
];

/// What a redacted field value becomes.
pub const REDACTED_FIELD: &str = "[redacted]";
/// What a hidden value inside a text becomes.
pub const REDACTED_TEXT: &str = "<redacted>";

/// Installs the global subscriber. `format` `None` picks pretty on a terminal, JSON otherwise.
/// The filter is read from the environment variable `filter_var` (default `info`); it governs
/// the output and the in-memory ring alike.
pub fn init(format: Option<LogFormat>, filter_var: &str) {
    let format = format.unwrap_or(if std::io::stdout().is_terminal() {
        LogFormat::Pretty
    } else {
        LogFormat::Json
    });
    let filter = EnvFilter::try_from_env(filter_var).unwrap_or_else(|_| EnvFilter::new("info"));
    let json = matches!(format, LogFormat::Json).then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_writer(std::io::stdout)
    });
    let pretty = matches!(format, LogFormat::Pretty).then(|| {
        tracing_subscriber::fmt::layer()
            .compact()
            .with_writer(std::io::stdout)
    });
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(pretty)
        .with(RingLayer::new(log_ring()))
        .try_init();
}

/// For integration tests, which start many hubs in one process and cannot install a
/// subscriber per hub: installs (once per process; later calls and an already installed
/// subscriber leave things as they are) a subscriber with only the ring layer, recording
/// `phlix_hub` at `debug` and everything else at `warn`, without printing anything.
pub fn init_for_tests() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let _ = tracing_subscriber::registry()
            .with(EnvFilter::new("warn,phlix_hub=debug"))
            .with(RingLayer::new(log_ring()))
            .try_init();
    });
}

/// The process's log ring (empty until a subscriber with a [`RingLayer`] is installed).
pub fn log_ring() -> &'static LogRing {
    static RING: OnceLock<LogRing> = OnceLock::new();
    RING.get_or_init(|| LogRing::new(RING_CAPACITY))
}

/// One log record as the log routes serve it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LogRecord {
    /// RFC 3339, UTC, milliseconds.
    pub ts: String,
    /// `error`, `warn`, `info`, `debug` or `trace`.
    pub level: &'static str,
    /// The module path (or explicit target) of the call site.
    pub target: String,
    pub message: String,
    /// The event's other fields, secrets redacted.
    #[schema(value_type = Object)]
    pub fields: Map<String, Value>,
    #[serde(skip)]
    severity: Severity,
}

impl LogRecord {
    /// The record as one line of JSON.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A level ordered by verbosity: `Error` < `Warn` < … < `Trace`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Severity {
    /// `error|warn|info|debug|trace` (any case).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "error" => Some(Self::Error),
            "warn" => Some(Self::Warn),
            "info" => Some(Self::Info),
            "debug" => Some(Self::Debug),
            "trace" => Some(Self::Trace),
            _ => None,
        }
    }

    /// The lower-case name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warn => "warn",
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Trace => "trace",
        }
    }

    /// Every level, most severe first.
    pub const ALL: [Self; 5] = [
        Self::Error,
        Self::Warn,
        Self::Info,
        Self::Debug,
        Self::Trace,
    ];

    fn of(level: Level) -> Self {
        match level {
            Level::ERROR => Self::Error,
            Level::WARN => Self::Warn,
            Level::INFO => Self::Info,
            Level::DEBUG => Self::Debug,
            Level::TRACE => Self::Trace,
        }
    }
}

/// Which records a reader wants: at least as severe as `level`, and, if set, a target that
/// starts with `target`.
#[derive(Debug, Clone)]
pub struct LogFilter {
    pub level: Severity,
    pub target: Option<String>,
}

impl Default for LogFilter {
    fn default() -> Self {
        Self {
            level: Severity::Trace,
            target: None,
        }
    }
}

impl LogFilter {
    /// Whether `record` passes.
    #[must_use]
    pub fn matches(&self, record: &LogRecord) -> bool {
        record.severity <= self.level
            && self
                .target
                .as_deref()
                .is_none_or(|prefix| record.target.starts_with(prefix))
    }
}

/// The last records and a broadcast of new ones.
#[derive(Debug)]
pub struct LogRing {
    records: Mutex<VecDeque<Arc<LogRecord>>>,
    capacity: usize,
    live: broadcast::Sender<Arc<LogRecord>>, // new records, to the live tails
}

impl LogRing {
    /// An empty ring of `capacity` records.
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        Self {
            records: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
            capacity,
            live: broadcast::channel(LIVE_CAPACITY).0,
        }
    }

    /// Adds a record, dropping the oldest when full, and tells the live subscribers.
    pub fn push(&self, record: LogRecord) {
        let record = Arc::new(record);
        {
            let mut records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
            if records.len() >= self.capacity {
                records.pop_front();
            }
            records.push_back(Arc::clone(&record));
        }
        // No subscriber is not an error.
        let _ = self.live.send(record);
    }

    /// The newest `limit` records that pass `filter`, oldest first (newest last).
    #[must_use]
    pub fn recent(&self, filter: &LogFilter, limit: usize) -> Vec<Arc<LogRecord>> {
        let records = self.records.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<Arc<LogRecord>> = records
            .iter()
            .rev()
            .filter(|r| filter.matches(r))
            .take(limit)
            .cloned()
            .collect();
        out.reverse();
        out
    }

    /// Records pushed from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LogRecord>> {
        self.live.subscribe()
    }
}

/// The `tracing_subscriber` layer that copies each event into a [`LogRing`].
#[derive(Debug, Clone, Copy)]
pub struct RingLayer {
    ring: &'static LogRing,
}

impl RingLayer {
    /// A layer feeding `ring`.
    #[must_use]
    pub fn new(ring: &'static LogRing) -> Self {
        Self { ring }
    }
}

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let metadata = event.metadata();
        let mut visitor = FieldVisitor::default();
        event.record(&mut visitor);
        let severity = Severity::of(*metadata.level());
        self.ring.push(LogRecord {
            ts: timestamp(),
            level: severity.name(),
            target: metadata.target().to_owned(),
            message: redact_text(&visitor.message),
            fields: visitor.fields,
            severity,
        });
    }
}

fn timestamp() -> String {
    let format = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

/// Whether a field of this name is never recorded.
#[must_use]
pub fn is_secret_field(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_FIELD_NAMES.iter().any(|s| lower.contains(s))
}

#[derive(Default)]
struct FieldVisitor {
    message: String,
    fields: Map<String, Value>,
}

impl FieldVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        let name = field.name();
        if name == "message" {
            self.message = match value {
                Value::String(text) => text,
                other => other.to_string(),
            };
            return;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        let value = if is_secret_field(name) {
            Value::String(REDACTED_FIELD.to_owned())
        } else {
            match value {
                Value::String(text) => Value::String(redact_text(&text)),
                other => other,
            }
        };
        self.fields.insert(name.to_owned(), value);
    }
}

impl Visit for FieldVisitor {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::from(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::from(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, Value::from(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::from(format!("{value:?}")));
    }
}

/// Whether a query parameter of this name has its value hidden.
#[must_use]
pub fn is_sensitive_param(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SENSITIVE_PARAMS.iter().any(|s| lower.contains(s))
}

/// `text` with the values of sensitive `name=value` pairs (a query string, a URL, `key=value`
/// prose) and the credential after `Bearer ` replaced by `<redacted>`.
#[must_use]
pub fn redact_text(text: &str) -> String {
    let lower = text.to_ascii_lowercase();
    if !text.contains('=') && !lower.contains("bearer ") {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0; // bytes of `text` already in `out`
    let mut i = 0;
    while i < bytes.len() {
        let hide_from = if bytes[i] == b'=' {
            let start = text[..i]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
                .map_or(0, |p| p + 1);
            let name = &text[start..i];
            (!name.is_empty() && is_sensitive_param(name)).then_some(i + 1)
        } else if lower.as_bytes()[i..].starts_with(b"bearer ") {
            Some(i + "bearer ".len())
        } else {
            None
        };
        match hide_from {
            Some(from) => {
                let end = text[from..]
                    .find(|c: char| {
                        c.is_whitespace()
                            || matches!(c, '&' | '"' | '\'' | ',' | ';' | ')' | ']' | '}' | '>')
                    })
                    .map_or(text.len(), |p| from + p);
                out.push_str(&text[copied..from]);
                if end > from {
                    out.push_str(REDACTED_TEXT);
                }
                copied = end;
                i = end.max(i + 1);
            }
            None => i += 1,
        }
    }
    out.push_str(&text[copied.min(text.len())..]);
    out
}

/// A short, stable stand-in for a secret identifier in logs (a claim id, say): 8 hex digits of
/// its SHA-256, enough to follow one through the log, useless to redeem it.
#[must_use]
pub fn short_hash(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(&Sha256::digest(secret.as_bytes())[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_lose_their_secrets_and_keep_the_rest() {
        assert_eq!(
            redact_text("GET /api/v1/servers/s1/proxy/web?token=abc&x=1&api_key=k done"),
            "GET /api/v1/servers/s1/proxy/web?token=<redacted>&x=1&api_key=<redacted> done"
        );
        assert_eq!(
            redact_text("header Authorization: Bearer eyJhbGc.x.y, next"),
            "header Authorization: Bearer <redacted>, next"
        );
        assert_eq!(redact_text("count=3 name=x"), "count=3 name=x");
        assert_eq!(
            redact_text("err=\"password=hunter2\""),
            "err=\"password=<redacted>\""
        );
        assert_eq!(redact_text("plain ünïcode"), "plain ünïcode");
        assert_eq!(redact_text("secret="), "secret=");
    }

    #[test]
    fn field_names_are_matched_case_insensitively_as_substrings() {
        for name in [
            "password",
            "Access_Token",
            "API_KEY",
            "x_cookie",
            "jwt",
            "client_secret",
        ] {
            assert!(is_secret_field(name), "{name}");
        }
        for name in ["user_id", "kid", "level", "server_id"] {
            assert!(!is_secret_field(name), "{name}");
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_and_filters() {
        let ring = LogRing::new(3);
        for (i, severity) in [
            Severity::Info,
            Severity::Debug,
            Severity::Warn,
            Severity::Error,
        ]
        .into_iter()
        .enumerate()
        {
            ring.push(LogRecord {
                ts: String::new(),
                level: severity.name(),
                target: format!("a::{i}"),
                message: i.to_string(),
                fields: Map::new(),
                severity,
            });
        }
        let all = ring.recent(&LogFilter::default(), 10);
        assert_eq!(
            all.iter().map(|r| r.message.as_str()).collect::<Vec<_>>(),
            ["1", "2", "3"]
        );
        let warn = LogFilter {
            level: Severity::Warn,
            target: None,
        };
        assert_eq!(ring.recent(&warn, 10).len(), 2);
        assert_eq!(ring.recent(&warn, 1)[0].message, "3");
        let target = LogFilter {
            level: Severity::Trace,
            target: Some("a::1".into()),
        };
        assert_eq!(ring.recent(&target, 10).len(), 1);
    }
}
