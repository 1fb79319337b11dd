-- Named admins, token lifetimes, and the web portal's sessions and passkeys.
-- Portable SQL, as in 0001: Unix seconds in BIGINT, booleans 0/1.

-- An admin is a person with the admin role; every admin action is audited under their name.
ALTER TABLE persons ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;

-- Person tokens lapse when unused for the configured lifetime; each use moves the end forward.
-- NULL (tokens made before this version): the lifetime starts at their next use.
ALTER TABLE person_tokens ADD COLUMN expires_at BIGINT;
ALTER TABLE person_tokens ADD COLUMN last_used_at BIGINT;

-- The tokens `jit-server init` and `jit-server admin-token` print are one-time bootstrap
-- tokens: each creates (or restores) one named admin, then is spent.
ALTER TABLE admin_tokens ADD COLUMN used_at BIGINT;
ALTER TABLE admin_tokens ADD COLUMN used_by TEXT;

-- Portal sessions. The cookie holds a random id; only its SHA-256 is stored. A session exists
-- before sign-in (person_id NULL) so that the sign-in forms carry a CSRF token too; signing in
-- replaces it with a new one.
CREATE TABLE portal_sessions (
    id_hash             TEXT PRIMARY KEY,
    person_id           INTEGER REFERENCES persons(id) ON DELETE CASCADE,
    -- How the person signed in: totp, passkey, enrollment.
    factor              TEXT,
    -- While a person enrolls with an enrollment code (before they have a factor).
    enroll_code_hash    TEXT,
    csrf                TEXT NOT NULL,
    -- A pending WebAuthn ceremony: its challenge (base64url), kind and end.
    challenge           TEXT,
    challenge_kind      TEXT,
    challenge_expires_at BIGINT,
    -- A message for the next page shown (never a secret).
    flash               TEXT,
    created_at          BIGINT NOT NULL,
    last_seen           BIGINT NOT NULL
);
CREATE INDEX portal_sessions_person ON portal_sessions (person_id);
CREATE INDEX portal_sessions_last_seen ON portal_sessions (last_seen);

-- Passkeys (WebAuthn credentials) of persons, for signing in to the portal.
CREATE TABLE passkeys (
    id              INTEGER PRIMARY KEY,
    person_id       INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    -- base64url of the credential id the authenticator chose.
    credential_id   TEXT NOT NULL UNIQUE,
    -- The COSE_Key as the authenticator sent it, and its COSE algorithm (-7 ES256, -8 EdDSA,
    -- -257 RS256).
    public_key      BLOB NOT NULL,
    algorithm       BIGINT NOT NULL,
    sign_count      BIGINT NOT NULL,
    name            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_used_at    BIGINT
);
CREATE INDEX passkeys_person ON passkeys (person_id);
