-- The admin dashboard's 24 h charts (SPEC Q.2, Q.5): one row per node and minute with the
-- servers online, the relay bytes this node moved and the heartbeats received in that minute.

CREATE TABLE hub_stats (
    node           TEXT NOT NULL,
    minute         INTEGER NOT NULL,
    servers_online INTEGER NOT NULL,
    relay_bytes    INTEGER NOT NULL,
    heartbeats     INTEGER NOT NULL,
    PRIMARY KEY (node, minute)
);
CREATE INDEX hub_stats_minute ON hub_stats (minute);
CREATE INDEX webhook_attempts_at ON webhook_attempts (at_ms);
