-- phlix-hub initial schema (SQLite). Times are unix seconds (INTEGER); ids are UUID text.
-- Append-only: never edit a shipped migration, add a new one.

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    display_name  TEXT,
    is_admin      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_username_lower ON users (lower(username));
CREATE UNIQUE INDEX users_email ON users (email);

CREATE TABLE auth_signup_guard (
    guard_key  TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL,
    elected_at INTEGER NOT NULL
);

CREATE TABLE auth_revoked_refresh_tokens (
    jti        TEXT PRIMARY KEY NOT NULL,
    user_id    TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER NOT NULL
);
CREATE INDEX auth_revoked_refresh_tokens_expires ON auth_revoked_refresh_tokens (expires_at);

CREATE TABLE login_rate_limit (
    rate_key   TEXT PRIMARY KEY NOT NULL,
    attempts   INTEGER NOT NULL,
    reset_at   INTEGER NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE audit_logs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    event        TEXT NOT NULL,
    user_id      TEXT,
    session_id   TEXT,
    device_id    TEXT,
    resource     TEXT,
    action       TEXT,
    success      BOOLEAN NOT NULL,
    reason       TEXT,
    ip_address   TEXT,
    user_agent   TEXT,
    context_json TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX audit_logs_event ON audit_logs (event);
CREATE INDEX audit_logs_user ON audit_logs (user_id);
CREATE INDEX audit_logs_created ON audit_logs (created_at);

CREATE TABLE hub_settings (
    setting_key   TEXT PRIMARY KEY NOT NULL,
    setting_value TEXT NOT NULL,
    value_type    TEXT NOT NULL CHECK (value_type IN ('string', 'int', 'bool', 'float', 'json')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE servers (
    id                       TEXT PRIMARY KEY NOT NULL,
    user_id                  TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    server_name              TEXT NOT NULL,
    version                  TEXT NOT NULL,
    public_key_jwk           TEXT NOT NULL,
    hostname_candidates_json TEXT NOT NULL DEFAULT '[]',
    status                   TEXT NOT NULL DEFAULT 'claiming'
                             CHECK (status IN ('online', 'offline', 'claiming', 'disabled')),
    last_seen_at             INTEGER,
    enrolled_at              INTEGER NOT NULL,
    heartbeat_interval       INTEGER NOT NULL DEFAULT 60,
    capabilities             TEXT,
    subdomain                TEXT,
    proxy_policy             TEXT NOT NULL DEFAULT 'phlix' CHECK (proxy_policy IN ('phlix', 'all')),
    created_at               INTEGER NOT NULL,
    updated_at               INTEGER NOT NULL
);
CREATE INDEX servers_user ON servers (user_id);
CREATE INDEX servers_last_seen ON servers (last_seen_at);
CREATE UNIQUE INDEX servers_subdomain ON servers (subdomain);

CREATE TABLE server_claims (
    id                       TEXT PRIMARY KEY NOT NULL,
    claim_code               TEXT NOT NULL,
    user_id                  TEXT,
    server_name              TEXT NOT NULL,
    version                  TEXT NOT NULL,
    hostname_candidates_json TEXT NOT NULL DEFAULT '[]',
    protocol_version         TEXT NOT NULL DEFAULT 'v1',
    public_key_jwk           TEXT NOT NULL,
    public_key_x             TEXT NOT NULL,
    status                   TEXT NOT NULL DEFAULT 'pending'
                             CHECK (status IN ('pending', 'paired', 'expired', 'revoked')),
    expires_at               INTEGER NOT NULL,
    claimed_by               TEXT,
    claimed_at               INTEGER,
    created_at               INTEGER NOT NULL,
    paired_at                INTEGER,
    paired_server_id         TEXT
);
CREATE UNIQUE INDEX server_claims_code ON server_claims (claim_code);
CREATE INDEX server_claims_status_expires ON server_claims (status, expires_at);
CREATE INDEX server_claims_key ON server_claims (public_key_x);

CREATE TABLE server_heartbeats (
    id                       INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id                TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    version                  TEXT NOT NULL,
    uptime_seconds           INTEGER NOT NULL,
    active_sessions          INTEGER NOT NULL,
    active_transcodes        INTEGER NOT NULL,
    hostname_candidates_json TEXT NOT NULL DEFAULT '[]',
    host_metrics_json        TEXT,
    received_at              INTEGER NOT NULL,
    sent_at                  INTEGER
);
CREATE INDEX server_heartbeats_server_received ON server_heartbeats (server_id, received_at);
CREATE INDEX server_heartbeats_received ON server_heartbeats (received_at);

CREATE TABLE server_libraries (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    server_id    TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    library_id   TEXT NOT NULL,
    library_name TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX server_libraries_server_library ON server_libraries (server_id, library_id);

CREATE TABLE server_library_hashes (
    server_id  TEXT PRIMARY KEY NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    hash       TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE client_relay_tokens (
    id         TEXT PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    server_id  TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE UNIQUE INDEX client_relay_tokens_hash ON client_relay_tokens (token_hash);
CREATE INDEX client_relay_tokens_user_server ON client_relay_tokens (user_id, server_id);
CREATE INDEX client_relay_tokens_expires ON client_relay_tokens (expires_at);

CREATE TABLE relay_sessions (
    id            TEXT PRIMARY KEY NOT NULL,
    server_id     TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    tunnel_id     TEXT NOT NULL,
    worker_node   TEXT NOT NULL,
    opened_at     INTEGER NOT NULL,
    closed_at     INTEGER,
    bytes_in      INTEGER NOT NULL DEFAULT 0,
    bytes_out     INTEGER NOT NULL DEFAULT 0,
    last_frame_at INTEGER,
    close_reason  TEXT
);
CREATE INDEX relay_sessions_server_opened ON relay_sessions (server_id, opened_at);
CREATE INDEX relay_sessions_server_closed ON relay_sessions (server_id, closed_at);

CREATE TABLE relay_user_quotas (
    user_id                TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    period_start           TEXT NOT NULL,
    bytes_in               INTEGER NOT NULL DEFAULT 0,
    bytes_out              INTEGER NOT NULL DEFAULT 0,
    quota_bytes_in         INTEGER NOT NULL DEFAULT 0,
    quota_bytes_out        INTEGER NOT NULL DEFAULT 0,
    max_concurrent_streams INTEGER NOT NULL DEFAULT 0,
    updated_at             INTEGER NOT NULL,
    PRIMARY KEY (user_id, period_start)
);

CREATE TABLE relay_user_settings (
    user_id      TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    throttle_bps INTEGER NOT NULL DEFAULT 3000000,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);
