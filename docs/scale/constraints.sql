-- What partitioning does to the log's constraints and append-only triggers (docs/scale.md).
-- Run on the tables of build.sql; every change is rolled back.
--   psql -h 127.0.0.1 -U postgres -d agencyhandy_h_scale -f docs/scale/constraints.sql
\set VERBOSITY terse

-- 1. The chain's no-fork constraint cannot be declared on the partitioned table.
BEGIN;
ALTER TABLE evp ADD CONSTRAINT evp_client_seq_uniq UNIQUE (client_id, seq);
ROLLBACK;
BEGIN;
CREATE UNIQUE INDEX evp_session_event_uniq ON evp (session_ref, event_type)
    WHERE NOT session_ref = '' AND NOT event_type = 'login_failed';
ROLLBACK;

-- 2. A unique index per partition is allowed, and stops a fork inside one month ...
BEGIN;
DO $$
DECLARE part regclass;
BEGIN
    FOR part IN SELECT inhrelid::regclass FROM pg_inherits WHERE inhparent = 'evp'::regclass LOOP
        EXECUTE format('CREATE UNIQUE INDEX ON %s (client_id, seq)', part);
    END LOOP;
END $$;
SAVEPOINT fork_inside;
INSERT INTO evp SELECT id + 100000000, email, event_type, occurred_at + interval '1 second', ip, user_agent, browser,
    os, '', reason, seq, prev_hash, hash, agency_id, client_id, user_id, chain_version
    FROM evp WHERE client_id = 2 ORDER BY seq DESC LIMIT 1;   -- same client, same seq, same month: refused
ROLLBACK TO SAVEPOINT fork_inside;
-- ... but not one across months: the same (client, seq) a month earlier is accepted.
INSERT INTO evp SELECT id + 100000000, email, event_type, occurred_at - interval '1 month', ip, user_agent, browser,
    os, '', reason, seq, prev_hash, hash, agency_id, client_id, user_id, chain_version
    FROM evp WHERE client_id = 2 ORDER BY seq DESC LIMIT 1;
SELECT client_id, seq, count(*) AS rows_with_this_seq FROM evp
    WHERE client_id = 2 GROUP BY client_id, seq HAVING count(*) > 1;
ROLLBACK;

-- 3. The append-only triggers (activitylog/db_guards.py) on the partitioned table: row
-- triggers are cloned onto every partition, the TRUNCATE trigger is not.
BEGIN;
CREATE FUNCTION evp_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'activity log entries are append-only (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER evp_no_update_delete BEFORE UPDATE OR DELETE ON evp FOR EACH ROW EXECUTE FUNCTION evp_refuse_change();
CREATE TRIGGER evp_no_truncate BEFORE TRUNCATE ON evp FOR EACH STATEMENT EXECUTE FUNCTION evp_refuse_change();
SELECT tgrelid::regclass AS on_table, count(*) AS triggers FROM pg_trigger
    WHERE tgname LIKE 'evp_no_%' GROUP BY 1 ORDER BY 1 LIMIT 3;
SAVEPOINT s;
DELETE FROM evp WHERE client_id = 2;                  -- refused
ROLLBACK TO SAVEPOINT s;
DELETE FROM evp_2025_06 WHERE id = (SELECT min(id) FROM evp_2025_06);  -- refused: the row trigger is cloned
ROLLBACK TO SAVEPOINT s;
TRUNCATE evp;                                         -- refused
ROLLBACK TO SAVEPOINT s;
TRUNCATE evp_2025_06;                                 -- NOT refused: statement triggers are not cloned
SELECT count(*) AS rows_left_in_evp_2025_06 FROM evp_2025_06;
ROLLBACK TO SAVEPOINT s;
ALTER TABLE evp DETACH PARTITION evp_2025_06;         -- NOT refused for the owner: no trigger fires
ROLLBACK;
