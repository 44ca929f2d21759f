-- No query looks a practitioner up by `match_index`: the fallback tier (seed 002: name, NIK
-- and birth place) finds its candidate by NIK (`practitioners_by_nik`) and compares the key
-- in memory. The index only cost every insert and update a second B-tree of 32-byte keys
-- (issue 15's sync bench: ~13 % of a 100,000-record sync for the review key's index, this
-- one's twin).
DROP INDEX practitioners_by_match;
