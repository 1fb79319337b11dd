-- ssh public keys of persons. sshd on a host asks jitd (AuthorizedKeysCommand), which serves the
-- keys the server lists for each shared account of that host (GET /v1/host/keys).
-- A key belongs to one person only: the fingerprint is unique across all persons, so a login
-- by key is always attributed to one person.
CREATE TABLE ssh_keys (
    id           INTEGER PRIMARY KEY,
    person_id    INTEGER NOT NULL REFERENCES persons(id) ON DELETE CASCADE,
    -- Key type as in the key line: ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa, ...
    algorithm    TEXT NOT NULL,
    -- SHA256:<unpadded base64>, as ssh-keygen -l prints it.
    fingerprint  TEXT NOT NULL UNIQUE,
    -- "TYPE BASE64", validated and normalised; the comment is kept apart.
    public_key   TEXT NOT NULL,
    comment      TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX ssh_keys_person ON ssh_keys (person_id);
