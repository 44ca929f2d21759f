-- PostgreSQL's 0028 stops it trying to compress ciphertext; SQLite never compresses values,
-- so there is nothing to change here (the file keeps both backends' schema versions equal).
SELECT 1;
