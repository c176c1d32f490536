-- The anonymous relay and the sealed source (issue 8 item 4; PP-12, DESIGN invariant 6).
-- Numbered 0006: 0005 is the TAXII object store; 0007 belongs to another change.

-- An organisation's registered profile: what the relay scrubs from everything it
-- redistributes. `kind` is alias, domain, contact or range (CIDR).
CREATE TABLE org_identifiers (
    org_id     BIGINT NOT NULL REFERENCES orgs(id),
    kind       TEXT NOT NULL,
    value      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, kind, value)
);

-- Per report: the sealed source's opaque handle (random, never derived from the org id),
-- the STIX bundle it was submitted as (if any), and where its relayed copy stands.
CREATE TABLE report_relays (
    report_id    BIGINT PRIMARY KEY REFERENCES reports(id),
    handle       TEXT NOT NULL UNIQUE,
    bundle       TEXT,
    state        TEXT NOT NULL,
    reason       TEXT,
    versions     BIGINT NOT NULL DEFAULT 0,
    updated_at   TIMESTAMPTZ NOT NULL
);

-- Requests to reveal a sealed source, and their decision (two people; the Approval and
-- the SourceReveal are in the ledger).
CREATE TABLE source_reveal_requests (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    report_id       BIGINT NOT NULL REFERENCES reports(id),
    requester       BIGINT NOT NULL REFERENCES users(id),
    reason          TEXT NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    decision        TEXT,
    decided_by      BIGINT REFERENCES users(id),
    decision_reason TEXT,
    decided_at      TIMESTAMPTZ
);
CREATE INDEX source_reveal_requests_report ON source_reveal_requests(report_id, id);

-- Reports received before this migration get their handle now (128 random bits); their
-- relayed copy is written when their next stage arrives.
INSERT INTO report_relays (report_id, handle, state, reason, updated_at)
SELECT id, 'src-' || replace(gen_random_uuid()::text, '-', ''), 'not_relayed',
       'received before the relay existed: relayed with its next stage', received_at
FROM reports;
