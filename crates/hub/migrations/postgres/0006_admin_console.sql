-- Admin console (SPEC Q): disabled accounts, sign-out everywhere, last sign-in, and the guard
-- row every transaction that can lower the number of active admins updates first, so that two
-- such transactions run one after the other (a row lock on PostgreSQL; SQLite's write
-- transactions are exclusive anyway) and the last admin cannot be removed by a race.

ALTER TABLE users ADD COLUMN disabled_at BIGINT;
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN last_login_at BIGINT;

CREATE TABLE admin_guard (
    id         INTEGER PRIMARY KEY NOT NULL,
    changed_at BIGINT NOT NULL DEFAULT 0
);
INSERT INTO admin_guard (id, changed_at) VALUES (1, 0);
