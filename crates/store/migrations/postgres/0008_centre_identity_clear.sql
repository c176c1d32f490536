-- The centre's identity in the relayed copies is TLP:CLEAR (DESIGN invariant 5). Every
-- relayed copy references it by `created_by_ref`, but it is stored once (its version never
-- changes), and releases before this one stored it with the marking and audience of the
-- first report relayed, so organisations outside that audience could not resolve it.
-- Rows written now are CLEAR from the start (mamori_share::relay); this resets the old one:
-- an identity in the `reports` collection, owned by a coordination centre, named as it is,
-- without any marking in its body (the relay marks every other identity it writes).
-- Its audience becomes the centre alone, as mamori_share::relay writes it.
UPDATE stix_objects
SET tlp = 'clear',
    audience = '{"originator":' || owner_org ||
               ',"organisations":[],"individuals":[],"excluded":[],"clearance":"none"}'
WHERE object_type = 'identity'
  AND collection_id IN (SELECT id FROM taxii_collections WHERE alias = 'reports')
  AND EXISTS (SELECT 1 FROM orgs o
              WHERE o.id = stix_objects.owner_org
                AND o.kind = 'coordination_centre'
                AND o.name = (stix_objects.body::jsonb ->> 'name'))
  AND (body::jsonb -> 'object_marking_refs') IS NULL
  AND (body::jsonb -> 'granular_markings') IS NULL;
