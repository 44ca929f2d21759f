-- A golden record's provenance grouped by origin (pipeline::golden::Provenance): each
-- source's system, connector and time once, with the fields it gave, where every field had
-- its own entry repeating them: 1,483 bytes a practitioner in the FHIR bench (273 grouped),
-- parsed into ~50 strings for every practitioner a page shows (~15 grouped).
-- From {"<field>": {"source", "connector_id", "at"}, …}
-- to   [{"source", "connector_id", "at", "fields": ["<field>", …]}, …].
UPDATE practitioners SET provenance = COALESCE((
    SELECT json_group_array(json(g.origin)) FROM (
        SELECT json_object('source', f.value ->> '$.source', 'connector_id', f.value ->> '$.connector_id',
                           'at', f.value ->> '$.at', 'fields', json_group_array(f.key)) AS origin
        FROM json_each(practitioners.provenance) AS f
        GROUP BY f.value ->> '$.source', f.value ->> '$.connector_id', f.value ->> '$.at'
        ORDER BY min(f.key)) AS g), '[]')
WHERE provenance LIKE '{%';

UPDATE practitioner_versions SET provenance = COALESCE((
    SELECT json_group_array(json(g.origin)) FROM (
        SELECT json_object('source', f.value ->> '$.source', 'connector_id', f.value ->> '$.connector_id',
                           'at', f.value ->> '$.at', 'fields', json_group_array(f.key)) AS origin
        FROM json_each(practitioner_versions.provenance) AS f
        GROUP BY f.value ->> '$.source', f.value ->> '$.connector_id', f.value ->> '$.at'
        ORDER BY min(f.key)) AS g), '[]')
WHERE provenance LIKE '{%';
