-- When the reservation's host first fetched the grant (GET /v1/host/offline). A host can only
-- have decided a login offline with a grant it fetched, so the server reconciles a reported
-- offline login only for a grant it served (NULL: never served).
ALTER TABLE offline_grants ADD COLUMN served_at BIGINT;
