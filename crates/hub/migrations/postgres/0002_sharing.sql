-- Library sharing (SPEC M), invite links (SPEC N) and the owner's per-server switch for
-- collaborators through the relay (SPEC M.1).

CREATE TABLE library_shares (
    id                   TEXT PRIMARY KEY NOT NULL,
    owner_user_id        TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    collaborator_user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    server_id            TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    library_id           TEXT NOT NULL,
    library_name         TEXT NOT NULL,
    permission_level     TEXT NOT NULL CHECK (permission_level IN ('read', 'readwrite')),
    granted_by           TEXT NOT NULL,
    created_at           BIGINT NOT NULL,
    expires_at           BIGINT,
    revoked_at           BIGINT
);
CREATE UNIQUE INDEX library_shares_key ON library_shares (owner_user_id, collaborator_user_id, library_id);
CREATE INDEX library_shares_collaborator ON library_shares (collaborator_user_id);
CREATE INDEX library_shares_server ON library_shares (server_id);

CREATE TABLE invite_links (
    id            TEXT PRIMARY KEY NOT NULL,
    owner_user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    server_id     TEXT NOT NULL REFERENCES servers (id) ON DELETE CASCADE,
    library_id    TEXT,
    permission    TEXT NOT NULL CHECK (permission IN ('read', 'readwrite')),
    token_hash    TEXT NOT NULL,
    max_uses      BIGINT NOT NULL DEFAULT 1,
    use_count     BIGINT NOT NULL DEFAULT 0,
    expires_at    BIGINT,
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX invite_links_token ON invite_links (token_hash);
CREATE INDEX invite_links_owner ON invite_links (owner_user_id);

ALTER TABLE servers ADD COLUMN collaborator_relay BOOLEAN NOT NULL DEFAULT TRUE;
