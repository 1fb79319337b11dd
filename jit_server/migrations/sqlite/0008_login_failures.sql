-- Wrong login codes, counted against where they came from rather than against the person they
-- were typed for: the source (the local uid behind su, the remote address behind ssh, the tty at
-- a console, as the host tells it) on one host. A source that keeps guessing waits longer and
-- longer; the holder, typing from elsewhere, is never locked out by it. The same rows, counted
-- per person across every source, raise the guessing alert. Portable SQL, as in 0001: Unix
-- seconds in BIGINT, booleans 0/1.
CREATE TABLE login_failures (
    host_id    BIGINT NOT NULL,
    source     TEXT NOT NULL,
    -- The holder of the reservation the code was typed for.
    person_id  BIGINT NOT NULL,
    at         BIGINT NOT NULL,
    -- 1 once a right code came from the same source on the same host: it no longer delays that
    -- source, but still counts towards the person's guessing alert.
    forgiven   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX login_failures_source ON login_failures (host_id, source, at);
CREATE INDEX login_failures_person ON login_failures (person_id, at);

-- Offline grants hold the next 15 minutes of codes and are issued again as the reservation goes
-- on (argon2id hashes, a new salt each time). The steps the host was actually given, from the
-- first to the last, bound what an offline login it reports may have used.
ALTER TABLE offline_grants ADD COLUMN served_first_step BIGINT;
ALTER TABLE offline_grants ADD COLUMN served_last_step BIGINT;
