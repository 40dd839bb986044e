-- Personal access tokens (SPEC E "MCP", table `mcp_tokens`): long-lived tokens for scripts and
-- the MCP endpoint. The token itself (64 lowercase hex) is shown once; only its SHA-256 is kept.
-- `session_epoch` is the user's epoch when the token was made: an admin's "sign out
-- everywhere", a disable or a password reset raise the user's epoch and so end these tokens too.

CREATE TABLE mcp_tokens (
    id            TEXT PRIMARY KEY NOT NULL,
    token_hash    TEXT NOT NULL,
    user_id       TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT NOT NULL,
    scopes        VARCHAR(1024) NOT NULL,
    session_epoch BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    created_at    BIGINT NOT NULL,
    last_used_at  BIGINT,
    last_used_ip  TEXT,
    revoked_at    BIGINT
);
CREATE UNIQUE INDEX mcp_tokens_token_hash ON mcp_tokens (token_hash);
CREATE INDEX mcp_tokens_user ON mcp_tokens (user_id, created_at);
