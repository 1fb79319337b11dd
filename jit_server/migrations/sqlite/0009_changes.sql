-- The change log hosts watch (GET /v1/host/watch): one row per write that changes what a host
-- should know, appended in the same transaction as the write. Portable SQL, as in 0001: Unix
-- seconds in BIGINT, text kinds. `seq` is the row id (BIGSERIAL on PostgreSQL).
CREATE TABLE changes (
    seq   INTEGER PRIMARY KEY,
    -- The host the change is for (its name), or NULL for every host.
    host  TEXT,
    -- What changed: accounts, reservations, persons, offline, keys, groups, host.
    kind  TEXT NOT NULL,
    at    BIGINT NOT NULL
);
CREATE INDEX changes_at ON changes (at);
