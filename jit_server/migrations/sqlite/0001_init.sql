-- jit server schema, version 1.
-- Portable SQL on purpose: times are Unix seconds in BIGINT, booleans are 0/1, lists are JSON
-- text. The PostgreSQL migration differs only in id columns (identity instead of rowid).

CREATE TABLE admin_tokens (
    token_hash  TEXT PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE persons (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    display_name    TEXT,
    active          INTEGER NOT NULL DEFAULT 1,
    -- TOTP secret, encrypted with the at-rest key (nonce || ciphertext). NULL until enrolled.
    totp_secret     BLOB,
    -- Secret offered during enrollment, until the person confirms a first code.
    totp_pending    BLOB,
    -- Highest TOTP time step accepted so far: a step is accepted once per person.
    totp_last_step  BIGINT,
    locked_until    BIGINT,
    created_at      BIGINT NOT NULL
);

CREATE TABLE person_tokens (
    token_hash  TEXT PRIMARY KEY,
    person_id   INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

CREATE TABLE enrollment_codes (
    code_hash   TEXT PRIMARY KEY,
    person_id   INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);

CREATE TABLE totp_failures (
    id          INTEGER PRIMARY KEY,
    person_id   INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    at          BIGINT NOT NULL
);
CREATE INDEX totp_failures_person_at ON totp_failures (person_id, at);

CREATE TABLE groups (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);

CREATE TABLE group_members (
    group_id    INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    person_id   INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    PRIMARY KEY (group_id, person_id)
);

CREATE TABLE accounts (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    -- POSIX identity as JSON; NULL for an account that exists in the host's own files.
    posix             TEXT,
    default_ttl_secs  BIGINT NOT NULL,
    max_ttl_secs      BIGINT NOT NULL,
    host_patterns     TEXT NOT NULL,
    host_labels       TEXT NOT NULL,
    offline           TEXT NOT NULL,
    active            INTEGER NOT NULL DEFAULT 1,
    created_at        BIGINT NOT NULL,
    CHECK (default_ttl_secs >= 60 AND max_ttl_secs >= default_ttl_secs)
);

CREATE TABLE account_groups (
    account_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    group_id    INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    PRIMARY KEY (account_id, group_id)
);

CREATE TABLE hosts (
    id                INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    labels            TEXT NOT NULL,
    credential_hash   TEXT UNIQUE,
    join_secret_hash  TEXT,
    join_expires_at   BIGINT,
    active            INTEGER NOT NULL DEFAULT 1,
    last_seen         BIGINT,
    created_at        BIGINT NOT NULL
);

CREATE TABLE reservations (
    id          INTEGER PRIMARY KEY,
    account_id  INTEGER NOT NULL REFERENCES accounts(id),
    host_id     INTEGER NOT NULL REFERENCES hosts(id),
    person_id   INTEGER NOT NULL REFERENCES persons(id),
    state       TEXT NOT NULL CHECK (state IN ('active', 'consumed', 'released', 'expired')),
    reason      TEXT,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    ended_at    BIGINT,
    ended_by    TEXT
);
-- Exclusivity lives in the database, not in a server process: at most one active reservation
-- per account and host, whatever number of server processes share this database.
CREATE UNIQUE INDEX reservations_one_active ON reservations (account_id, host_id)
    WHERE state = 'active';
CREATE INDEX reservations_person ON reservations (person_id, state);

CREATE TABLE login_attempts (
    id              TEXT PRIMARY KEY,
    host_id         INTEGER NOT NULL REFERENCES hosts(id),
    account_id      INTEGER NOT NULL REFERENCES accounts(id),
    reservation_id  INTEGER NOT NULL REFERENCES reservations(id),
    state           TEXT NOT NULL CHECK (state IN ('pending', 'granted', 'denied')),
    origin          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL
);

CREATE TABLE audit (
    id          INTEGER PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    person      TEXT,
    account     TEXT,
    host        TEXT,
    result      TEXT NOT NULL,
    reason      TEXT,
    detail      TEXT,
    -- Set for events a host reports, so a redelivered event is stored once.
    event_key   TEXT UNIQUE
);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_person ON audit (person, at);
CREATE INDEX audit_account ON audit (account, at);
CREATE INDEX audit_host ON audit (host, at);
