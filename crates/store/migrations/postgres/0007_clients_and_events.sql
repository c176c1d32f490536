-- TLP 2.0 on every output path (issue 8 item 3). Numbered 0007: 0006 belongs to the
-- anonymous relay and the sealed source.
--
-- AMBER reaches "the recipient organisation and its clients": which organisations are
-- clients of which. A provider (a carrier, a managed security provider) lists its clients.
CREATE TABLE org_clients (
    org_id        BIGINT NOT NULL REFERENCES orgs(id),
    client_org_id BIGINT NOT NULL REFERENCES orgs(id),
    created_at    TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (org_id, client_org_id),
    CHECK (org_id <> client_org_id)
);
CREATE INDEX org_clients_client ON org_clients(client_org_id, org_id);

-- The change feed the event stream and its resumption read (GET /api/v1/events). `seq` is
-- handed out by the one-row `event_clock`: a writer updates that row first, which on
-- PostgreSQL holds its lock to commit, so writers commit in `seq` order and a reader that
-- saw `seq = n` never later sees a new row below n (the same scheme as taxii_collections).
-- An event names what changed, never its content: a report (new or updated), or a range
-- of date_added in one TAXII collection (one POST).
CREATE TABLE event_clock (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL
);
INSERT INTO event_clock (id, last_seq) VALUES (1, 0);

CREATE TABLE share_events (
    seq           BIGINT PRIMARY KEY,
    kind          TEXT NOT NULL,
    report_id     BIGINT,
    collection_id TEXT,
    first_added   BIGINT,
    last_added    BIGINT
);
