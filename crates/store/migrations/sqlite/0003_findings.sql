-- Findings about servers sent by carriers' sensors (issue 7), stored with their TLP.
CREATE TABLE findings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id      INTEGER NOT NULL REFERENCES orgs(id),
    tlp         TEXT NOT NULL,
    kind        TEXT NOT NULL,
    address     TEXT NOT NULL,
    port        INTEGER NOT NULL,
    proto       INTEGER NOT NULL,
    score       REAL NOT NULL,
    body        TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE INDEX findings_address ON findings(address);
