-- Findings about servers sent by carriers' sensors (issue 7), stored with their TLP.
CREATE TABLE findings (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      BIGINT NOT NULL REFERENCES orgs(id),
    tlp         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    address     TEXT NOT NULL,
    port        INTEGER NOT NULL,
    proto       INTEGER NOT NULL,
    score       DOUBLE PRECISION NOT NULL,
    body        TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX findings_address ON findings(address);
