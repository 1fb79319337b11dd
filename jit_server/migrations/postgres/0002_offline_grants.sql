-- Offline grants: for a reservation of an account with offline = 'cached', the hashed codes of
-- its time window, which the reservation's host keeps to decide a login while the server is
-- unreachable (see jit_proto::offline). Written after the reservation, off the write lock.
CREATE TABLE offline_grants (
    reservation_id  BIGINT PRIMARY KEY REFERENCES reservations(id) ON DELETE CASCADE,
    kdf             TEXT NOT NULL,
    iterations      BIGINT NOT NULL,
    salt            BYTEA NOT NULL,
    codes           TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
