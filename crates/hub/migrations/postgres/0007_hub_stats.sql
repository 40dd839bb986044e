-- The admin dashboard's 24 h charts (SPEC Q.2, Q.5): one row per node and minute with the
-- servers online, the relay bytes this node moved and the heartbeats received in that minute.

CREATE TABLE hub_stats (
    node           TEXT NOT NULL,
    minute         BIGINT NOT NULL,
    servers_online BIGINT NOT NULL,
    relay_bytes    BIGINT NOT NULL,
    heartbeats     BIGINT NOT NULL,
    PRIMARY KEY (node, minute)
);
CREATE INDEX hub_stats_minute ON hub_stats (minute);
CREATE INDEX webhook_attempts_at ON webhook_attempts (at_ms);
