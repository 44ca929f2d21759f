-- A golden record's provenance grouped by origin (pipeline::golden::Provenance): each
-- source's system, connector and time once, with the fields it gave, where every field had
-- its own entry repeating them: 1,483 bytes a practitioner in the FHIR bench (273 grouped),
-- parsed into ~50 strings for every practitioner a page shows (~15 grouped).
-- From {"<field>": {"source", "connector_id", "at"}, …}
-- to   [{"source", "connector_id", "at", "fields": ["<field>", …]}, …].
-- Each distinct stored value is converted once, for the current and the kept versions
-- alike: the practitioners one sync created share theirs.
CREATE TEMP TABLE regrouped (per_field TEXT PRIMARY KEY, by_origin TEXT NOT NULL);
INSERT INTO regrouped
SELECT p.provenance, COALESCE((
    SELECT json_group_array(json(g.origin)) FROM (
        SELECT json_object('source', f.value ->> '$.source', 'connector_id', f.value ->> '$.connector_id',
                           'at', f.value ->> '$.at', 'fields', json_group_array(f.key)) AS origin
        FROM json_each(p.provenance) AS f
        GROUP BY f.value ->> '$.source', f.value ->> '$.connector_id', f.value ->> '$.at'
        ORDER BY min(f.key)) AS g), '[]')
FROM (SELECT provenance FROM practitioners UNION SELECT provenance FROM practitioner_versions) AS p
WHERE p.provenance LIKE '{%';
UPDATE practitioners SET provenance = (SELECT by_origin FROM regrouped WHERE per_field = provenance)
WHERE provenance LIKE '{%';
UPDATE practitioner_versions SET provenance = (SELECT by_origin FROM regrouped WHERE per_field = provenance)
WHERE provenance LIKE '{%';
DROP TABLE regrouped;
