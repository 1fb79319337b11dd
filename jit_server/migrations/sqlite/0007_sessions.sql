-- Live sessions: what a login to a shared account opened on a host, from open to close, and how
-- a reservation's end ends them. Portable SQL, as in 0001: Unix seconds in BIGINT, booleans 0/1.

-- When a reservation ends, hosts end the sessions its login opened (after a one-minute warning).
ALTER TABLE accounts ADD COLUMN end_session_at_expiry INTEGER NOT NULL DEFAULT 0;

-- Why a released reservation ended: 'released' (by its holder), 'force_released' (by an admin),
-- 'holder_disabled', 'reported' ("This was not me"). NULL for the other states (the state
-- itself says 'expired' or 'consumed').
ALTER TABLE reservations ADD COLUMN end_cause TEXT;

-- One row per session a host reported. One login opens one session, so the host and the login
-- attempt name it. Names are text, as in the audit log: the history reads the same after
-- renames and deletes.
CREATE TABLE sessions (
    id              INTEGER PRIMARY KEY,
    host_id         INTEGER NOT NULL REFERENCES hosts(id) ON DELETE CASCADE,
    attempt         TEXT NOT NULL,
    reservation_id  BIGINT,
    account         TEXT NOT NULL,
    person          TEXT,
    service         TEXT NOT NULL,
    -- The remote address, else who sat at the prompt (uid:1000, tty:tty1).
    source          TEXT,
    tty             TEXT,
    opened_at       BIGINT NOT NULL,
    closed_at       BIGINT,
    -- Set when the host ended the session because its reservation ended (see end_cause above,
    -- plus 'expired').
    end_cause       TEXT,
    UNIQUE (host_id, attempt)
);
CREATE INDEX sessions_open ON sessions (closed_at, opened_at);
CREATE INDEX sessions_person ON sessions (person, opened_at);
