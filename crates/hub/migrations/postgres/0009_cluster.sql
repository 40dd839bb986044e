-- Several hub nodes on one database (issue #19). `hub_nodes` is the node registry: each node
-- upserts its row at start and touches `last_seen_at` every 5 s; a node silent for 15 s is
-- dead. `instance` is random per process, so a second process started under a name that is
-- still alive is refused. `draining_since` is set while a node leaves (SIGTERM).
CREATE TABLE hub_nodes (
    name           TEXT PRIMARY KEY NOT NULL,
    instance       TEXT NOT NULL,
    cluster_url    TEXT NOT NULL,
    started_at     BIGINT NOT NULL,
    last_seen_at   BIGINT NOT NULL,
    draining_since BIGINT
);

-- Which node holds each server's tunnel. `epoch` grows with every new tunnel of the server, so
-- a node only gives up (or removes) the ownership it still holds.
CREATE TABLE relay_owners (
    server_id TEXT PRIMARY KEY NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    node      TEXT NOT NULL,
    epoch     BIGINT NOT NULL,
    since     BIGINT NOT NULL
);
CREATE INDEX relay_owners_node ON relay_owners (node);
