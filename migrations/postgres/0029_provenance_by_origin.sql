-- A golden record's provenance grouped by origin (pipeline::golden::Provenance): each
-- source's system, connector and time once, with the fields it gave, where every field had
-- its own entry repeating them: 1,483 bytes a practitioner in the FHIR bench (273 grouped),
-- parsed into ~50 strings for every practitioner a page shows (~15 grouped).
-- From {"<field>": {"source", "connector_id", "at"}, …}
-- to   [{"source", "connector_id", "at", "fields": ["<field>", …]}, …].
UPDATE practitioners SET provenance = COALESCE((
    SELECT json_agg(json_build_object('source', g.source, 'connector_id', g.connector_id, 'at', g.at,
                                      'fields', g.fields) ORDER BY g.first)::text
    FROM (SELECT f.value->>'source' AS source, f.value->>'connector_id' AS connector_id, f.value->>'at' AS at,
                 json_agg(f.key ORDER BY f.key) AS fields, min(f.key) AS first
          FROM json_each(practitioners.provenance::json) AS f
          GROUP BY 1, 2, 3) AS g), '[]')
WHERE provenance LIKE '{%';

UPDATE practitioner_versions SET provenance = COALESCE((
    SELECT json_agg(json_build_object('source', g.source, 'connector_id', g.connector_id, 'at', g.at,
                                      'fields', g.fields) ORDER BY g.first)::text
    FROM (SELECT f.value->>'source' AS source, f.value->>'connector_id' AS connector_id, f.value->>'at' AS at,
                 json_agg(f.key ORDER BY f.key) AS fields, min(f.key) AS first
          FROM json_each(practitioner_versions.provenance::json) AS f
          GROUP BY 1, 2, 3) AS g), '[]')
WHERE provenance LIKE '{%';
