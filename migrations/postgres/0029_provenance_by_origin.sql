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
    SELECT json_agg(json_build_object('source', g.source, 'connector_id', g.connector_id, 'at', g.at,
                                      'fields', g.fields) ORDER BY g.first)::text
    FROM (SELECT f.value->>'source' AS source, f.value->>'connector_id' AS connector_id, f.value->>'at' AS at,
                 json_agg(f.key ORDER BY f.key) AS fields, min(f.key) AS first
          FROM json_each(p.provenance::json) AS f
          GROUP BY 1, 2, 3) AS g), '[]')
FROM (SELECT provenance FROM practitioners UNION SELECT provenance FROM practitioner_versions) AS p
WHERE p.provenance LIKE '{%';
UPDATE practitioners SET provenance = r.by_origin FROM regrouped AS r WHERE r.per_field = practitioners.provenance;
UPDATE practitioner_versions SET provenance = r.by_origin FROM regrouped AS r
WHERE r.per_field = practitioner_versions.provenance;
DROP TABLE regrouped;
