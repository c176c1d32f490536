-- Incident reports to the one window (issue 8; PP-8): the flash report, its follow-up
-- stages, the audience that decides who sees it (originator = org_id, the marking, and
-- the recipients and exclusions as JSON), and the submitters' idempotency keys.
CREATE TABLE reports (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id          INTEGER NOT NULL REFERENCES orgs(id),
    user_id         INTEGER NOT NULL REFERENCES users(id),
    tlp             TEXT NOT NULL,
    confidential    INTEGER NOT NULL,
    sector          TEXT NOT NULL,
    impact          TEXT NOT NULL,
    regime          TEXT NOT NULL,
    detected_at     TEXT NOT NULL,
    received_at     TEXT NOT NULL,
    body            TEXT NOT NULL,
    audience        TEXT NOT NULL,
    acknowledged_at TEXT,
    feedback_at     TEXT,
    feedback        TEXT
);
CREATE INDEX reports_sector ON reports(sector, id);
CREATE INDEX reports_received_at ON reports(received_at);

CREATE TABLE report_stages (
    report_id   INTEGER NOT NULL REFERENCES reports(id),
    stage       TEXT NOT NULL,
    body        TEXT NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (report_id, stage)
);

-- One key per submitting organisation names one report: a retried submission finds it.
CREATE TABLE report_idempotency_keys (
    org_id     INTEGER NOT NULL REFERENCES orgs(id),
    idem_key   TEXT NOT NULL,
    report_id  INTEGER NOT NULL REFERENCES reports(id),
    created_at TEXT NOT NULL,
    PRIMARY KEY (org_id, idem_key)
);

-- Recipients' ratings of a report (PP-13, PP-18): one per organisation, replaced when it
-- rates again. Shown to the reporter only as counts, never with who rated.
CREATE TABLE report_ratings (
    report_id  INTEGER NOT NULL REFERENCES reports(id),
    org_id     INTEGER NOT NULL REFERENCES orgs(id),
    rating     TEXT NOT NULL,
    rated_at   TEXT NOT NULL,
    PRIMARY KEY (report_id, org_id)
);
