-- The TAXII 2.1 object store (issue 8 item 5): collections, STIX objects by
-- (collection, id, version) with their TLP audience, and the status of each POST.
-- Numbered 0005: 0004 is the incident reports' migration (issue 8 part 1).

-- A small fixed set of collections; who may read and write each is a list of role slugs.
-- `last_added` is the newest date_added handed out (µs since the epoch), so date_added is
-- strictly increasing per collection and paging by it is exact.
CREATE TABLE taxii_collections (
    id          TEXT PRIMARY KEY,
    alias       TEXT NOT NULL UNIQUE,
    title       TEXT NOT NULL,
    description TEXT NOT NULL,
    read_roles  TEXT NOT NULL,
    write_roles TEXT NOT NULL,
    last_added  BIGINT NOT NULL DEFAULT 0
);
INSERT INTO taxii_collections (id, alias, title, description, read_roles, write_roles) VALUES
  ('4f6d1c2e-9a3b-4c8e-8f1a-2b7d5e0c9a11', 'indicators', 'Indicators',
   'Indicators of compromise and the observables, sightings and notes around them, under their TLP 2.0 markings.',
   'admin,analyst,officer,member', 'admin,analyst,member'),
  ('7c2a9e41-3b6d-4f0e-9d25-8e1f4a6b3c22', 'reports', 'Reports',
   'Reports, incidents and vulnerabilities redistributed by the coordination centre, under their TLP 2.0 markings.',
   'admin,analyst,officer,member', 'admin,analyst');

-- One row per object version. Times are µs since the epoch. `audience` is the JSON of
-- mamori_core::tlp::Audience (originator, organisations, individuals, excluded, clearance);
-- `tlp` and `audience` are only ever judged by mamori_core::tlp::may_see, never in SQL.
CREATE TABLE stix_objects (
    collection_id TEXT NOT NULL REFERENCES taxii_collections(id),
    date_added    BIGINT NOT NULL,
    object_id     TEXT NOT NULL,
    object_type   TEXT NOT NULL,
    spec_version  TEXT NOT NULL,
    version       BIGINT NOT NULL,
    version_text  TEXT NOT NULL,
    owner_org     BIGINT NOT NULL REFERENCES orgs(id),
    tlp           TEXT NOT NULL,
    audience      TEXT NOT NULL,
    body          TEXT NOT NULL,
    PRIMARY KEY (collection_id, date_added),
    UNIQUE (collection_id, object_id, version)
);
CREATE INDEX stix_objects_type ON stix_objects(collection_id, object_type, date_added);

CREATE TABLE taxii_status (
    id            TEXT PRIMARY KEY,
    collection_id TEXT NOT NULL REFERENCES taxii_collections(id),
    owner_org     BIGINT NOT NULL REFERENCES orgs(id),
    created_at    BIGINT NOT NULL,
    body          TEXT NOT NULL
);
