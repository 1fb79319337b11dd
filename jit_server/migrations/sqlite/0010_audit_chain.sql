-- A tamper-evident audit log and the client address of API calls. Portable SQL, as in 0001.
--
-- Each row commits to the row before it: hash = HMAC-SHA256(chain key, previous hash || the
-- row's canonical encoding), hex. seq is the row's place in the chain (1, 2, …), so a deleted
-- row leaves a gap and an edited one no longer matches its hash. Rows written before this
-- migration have no seq yet; the server chains them, oldest first, when it first starts with it.
ALTER TABLE audit ADD COLUMN client TEXT;
ALTER TABLE audit ADD COLUMN seq BIGINT;
ALTER TABLE audit ADD COLUMN hash TEXT;
CREATE UNIQUE INDEX audit_seq ON audit (seq);

-- The chain's last link, in one row. A writer updates this row first in its transaction, which
-- holds the row's lock until commit: two writers can never both extend the same link, whatever
-- the database's isolation level, so the chain cannot fork. It also records how long the chain
-- is, so deleting the newest rows is seen too.
CREATE TABLE audit_chain_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   BIGINT NOT NULL,
    hash  TEXT NOT NULL,
    -- The chain key, random, sealed under the at-rest key like the other secrets (so rotate-key
    -- seals it again); stored by the first server that starts with the chain.
    sealed_key BLOB
);
INSERT INTO audit_chain_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
