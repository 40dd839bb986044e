-- Webhooks (SPEC P): endpoints, the durable delivery outbox and its attempt log.

CREATE TABLE webhooks (
    id                    TEXT PRIMARY KEY NOT NULL,
    user_id               TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                  TEXT NOT NULL,
    url                   TEXT NOT NULL,
    events_json           TEXT NOT NULL,
    enabled               BOOLEAN NOT NULL,
    scope                 TEXT NOT NULL CHECK (scope IN ('user', 'hub')),
    secret                TEXT NOT NULL,
    previous_secret       TEXT,
    previous_secret_until BIGINT,
    disabled_reason       TEXT,
    failing_since         BIGINT,
    last_delivery_at      BIGINT,
    last_delivery_status  BIGINT,
    created_at            BIGINT NOT NULL,
    updated_at            BIGINT NOT NULL
);
CREATE INDEX webhooks_user ON webhooks (user_id);

CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY NOT NULL,
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempt_count   BIGINT NOT NULL DEFAULT 0,
    -- Milliseconds since the epoch: retries in tests are sub-second.
    next_attempt_ms BIGINT,
    lease_until_ms  BIGINT,
    created_ms      BIGINT NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_ms);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_ms);

CREATE TABLE webhook_attempts (
    id               BIGSERIAL PRIMARY KEY,
    delivery_id      TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    at_ms            BIGINT NOT NULL,
    status_code      BIGINT,
    duration_ms      BIGINT NOT NULL,
    error            TEXT,
    response_excerpt TEXT NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id);
