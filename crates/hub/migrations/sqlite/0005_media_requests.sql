-- Media requests (SPEC O): users ask for a film or a series, an admin approves (the hub then
-- adds it to Radarr or Sonarr, `arr_id` = the *arr's id) or denies, and the availability sync
-- marks it available. Integer ids like the PHP hub's.

CREATE TABLE requests (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id          TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type             TEXT NOT NULL CHECK (type IN ('movie', 'series')),
    tmdb_id          INTEGER NOT NULL,
    title            TEXT NOT NULL,
    poster_url       TEXT,
    season           INTEGER,
    episode          INTEGER,
    status           TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'available', 'rejected')),
    rejection_reason TEXT,
    arr_id           INTEGER,
    decided_by       TEXT,
    decided_at       INTEGER,
    available_at     INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL
);
-- One live request per user and (type, tmdb_id, season): a second one is 409 request_exists.
CREATE UNIQUE INDEX requests_live_key ON requests (user_id, type, tmdb_id, COALESCE(season, -1))
    WHERE status IN ('pending', 'approved', 'available');
CREATE INDEX requests_user ON requests (user_id, created_at);
CREATE INDEX requests_status ON requests (status, created_at);
CREATE INDEX requests_tmdb ON requests (type, tmdb_id);
