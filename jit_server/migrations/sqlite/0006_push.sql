-- Push approval with number matching: which factor an account requires, persons' push factors
-- (with their ntfy topic) and browsers' Web Push subscriptions, and the challenges of logins
-- waiting for an approval. Portable SQL, as in 0001: Unix seconds in BIGINT, booleans 0/1.

-- The factor a login to the account must use: 'totp', 'push' or 'any' (whichever the holder has).
ALTER TABLE accounts ADD COLUMN factor TEXT NOT NULL DEFAULT 'any';

-- A person who enrolled push: logins wait for their approval (a row here is the factor).
CREATE TABLE push_factors (
    person_id    INTEGER PRIMARY KEY REFERENCES persons(id) ON DELETE CASCADE,
    -- Where notifications go on the configured ntfy server; NULL: no ntfy for this person.
    ntfy_topic   TEXT,
    -- The person's ntfy access token, encrypted with the at-rest key (nonce || ciphertext).
    ntfy_token   BLOB,
    created_at   BIGINT NOT NULL
);

-- Browsers (the portal's service worker) that receive Web Push notifications for a person.
CREATE TABLE push_subscriptions (
    id           INTEGER PRIMARY KEY,
    person_id    INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    -- The push service's URL for this browser (https only).
    endpoint     TEXT NOT NULL UNIQUE,
    -- The browser's P-256 public key and auth secret (RFC 8291), base64url as the browser gave them.
    p256dh       TEXT NOT NULL,
    auth         TEXT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX push_subscriptions_person ON push_subscriptions (person_id);

-- One challenge per login attempt that waits for an approval. It is bound to the attempt, and
-- through it to the reservation, host, service and source address. The number is the one the
-- prompt shows; the approver types it. An approval is used once: 'approved' becomes 'used' by
-- the login that consumes the reservation.
CREATE TABLE push_challenges (
    id              TEXT PRIMARY KEY,
    attempt_id      TEXT NOT NULL UNIQUE REFERENCES login_attempts(id) ON DELETE CASCADE,
    reservation_id  INTEGER NOT NULL REFERENCES reservations(id),
    person_id       INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    account_id      INTEGER NOT NULL REFERENCES accounts(id),
    host_id         INTEGER NOT NULL REFERENCES hosts(id),
    number          BIGINT NOT NULL CHECK (number BETWEEN 10 AND 99),
    state           TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'used', 'denied',
                                                   'expired', 'reported', 'closed')),
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    answered_at     BIGINT
);
-- The rate limit: the newest push of a person for an account.
CREATE INDEX push_challenges_person_account ON push_challenges (person_id, account_id, created_at);
CREATE INDEX push_challenges_pending ON push_challenges (state, expires_at);
