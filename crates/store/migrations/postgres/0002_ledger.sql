-- The overseer's ledger (issue 4): entries, the Merkle tree's complete subtrees, and
-- signed checkpoints. Append-only by design: nothing in mamori updates or deletes these
-- rows, and the overseer's verifier detects anyone who does.
CREATE TABLE ledger_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    size  BIGINT NOT NULL
);
INSERT INTO ledger_head (id, size) VALUES (1, 0);

-- data is the entry's canonical encoding: its leaf hash is SHA-256(0x00 || data).
-- kind and at repeat what data says, for the overseer's queries.
CREATE TABLE ledger_entries (
    idx   BIGINT PRIMARY KEY,
    kind  TEXT NOT NULL,
    at    TIMESTAMPTZ NOT NULL,
    data  BYTEA NOT NULL
);
CREATE INDEX ledger_entries_at ON ledger_entries(at);

-- Every complete subtree (level, idx), written once when its last leaf arrives.
CREATE TABLE ledger_nodes (
    level SMALLINT NOT NULL,
    idx   BIGINT NOT NULL,
    hash  BYTEA NOT NULL,
    PRIMARY KEY (level, idx)
);

CREATE TABLE ledger_checkpoints (
    size        BIGINT PRIMARY KEY,
    root        BYTEA NOT NULL,
    note        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL
);
