-- The audit log's guard: an event trigger no role but a superuser can drop, disable or alter.
--
-- Run once per database AS A SUPERUSER (scripts/pgcluster.sh does it for the local cluster,
-- in template1 and in geoservice, so every database made afterwards has it too):
--
--     psql -d geoservice -v ON_ERROR_STOP=1 -f geoservice/migrations/audit_guard.sql
--
-- Idempotent. Not an Alembic migration: migrations run as the owner, and the point is that
-- the owner cannot undo this. See docs/OPERATIONS.md, "Who can rewrite the audit log".
--
-- geoservice.audit_log is "armed" once it carries its trigger audit_log_append_only
-- (migration 0004). From then on, for every role that is not a superuser, a DDL command is
-- refused (and rolled back) when, after it:
--   - either trigger (audit_log_append_only: BEFORE UPDATE OR DELETE FOR EACH ROW;
--     audit_log_no_truncate: BEFORE TRUNCATE) is gone, disabled, set to fire only as a
--     replica, given a WHEN condition or columns, or calls another function;
--   - the table has any other trigger, a rule, row level security or an inheriting table;
--   - the trigger function's body, language or settings changed (CREATE OR REPLACE);
--   - the table is not geoservice.audit_log any more (renamed, moved, schema renamed);
-- and when the table holds entries and the command would drop it (DROP TABLE, DROP SCHEMA
-- ... CASCADE, DROP OWNED), drop one of its columns or rewrite it (ALTER COLUMN ... TYPE
-- ... USING). An empty audit log may be dropped: that is how `geoservice db downgrade`
-- below 0004 works on a database that never recorded anything.
--
-- The functions run with the caller's rights (no SECURITY DEFINER): they read only the
-- catalogues and pg_relation_size, never a table, so no code of the caller's runs as a
-- superuser. What they learnt before a command (for renames, a replaced function, a dropped
-- table) is kept in the transaction-local setting geoservice_guard.audit_log, written afresh
-- by every ddl_command_start; the caller can change that setting, even from code a command
-- runs, so the triggers' state is also checked as it is after every command.

SET client_min_messages = warning;

CREATE SCHEMA IF NOT EXISTS geoservice_guard;
REVOKE ALL ON SCHEMA geoservice_guard FROM PUBLIC;
GRANT USAGE ON SCHEMA geoservice_guard TO PUBLIC;
COMMENT ON SCHEMA geoservice_guard IS
    'The audit log''s guard (geoservice/migrations/audit_guard.sql); superuser-owned';

CREATE OR REPLACE FUNCTION geoservice_guard.audit_log_function_digest(fn oid) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT pg_catalog.md5(pg_catalog.concat_ws('|', p.prolang::text, p.prosrc, p.probin,
                                              p.proconfig::text, p.prosecdef::text,
                                              p.prorettype::text))
    FROM pg_catalog.pg_proc p WHERE p.oid = fn
$$;

-- The armed audit log's state: '<table oid>,<function oid>,<function digest>,<has rows>',
-- or '' when there is no armed audit log in this database.
CREATE OR REPLACE FUNCTION geoservice_guard.audit_log_state() RETURNS text
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tab oid := pg_catalog.to_regclass('geoservice.audit_log');
    fn oid;
BEGIN
    IF tab IS NULL THEN
        RETURN '';
    END IF;
    SELECT t.tgfoid INTO fn FROM pg_catalog.pg_trigger t
    WHERE t.tgrelid = tab AND t.tgname = 'audit_log_append_only';
    IF fn IS NULL THEN
        RETURN '';
    END IF;
    RETURN pg_catalog.concat_ws(',', tab::text, fn::text,
                                geoservice_guard.audit_log_function_digest(fn),
                                (pg_catalog.pg_relation_size(tab) > 0)::text);
END $$;

CREATE OR REPLACE FUNCTION geoservice_guard.is_superuser() RETURNS boolean
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r
                     WHERE r.rolname = CURRENT_USER), false)
$$;

CREATE OR REPLACE FUNCTION geoservice_guard.refuse(what text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'geoservice.audit_log is append-only: % refused (role %)', what, CURRENT_USER
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Only a superuser may change how the audit log is kept; see '
                     'docs/OPERATIONS.md, "Who can rewrite the audit log".';
END $$;

CREATE OR REPLACE FUNCTION geoservice_guard.audit_log_before() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM pg_catalog.set_config('geoservice_guard.audit_log',
                                  geoservice_guard.audit_log_state(), true);
END $$;

-- The audit log as it is now, when it looks armed whatever the setting says (both triggers
-- present, or entries in it): user code run by a command (a STABLE column default, a CHECK
-- being validated) may have cleared geoservice_guard.audit_log, so the checks that matter
-- never rely on it alone.
CREATE OR REPLACE FUNCTION geoservice_guard.audit_log_live() RETURNS oid
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    tab oid := pg_catalog.to_regclass('geoservice.audit_log');
BEGIN
    IF tab IS NULL THEN
        RETURN NULL;
    END IF;
    IF pg_catalog.pg_relation_size(tab) > 0
       OR (SELECT count(*) FROM pg_catalog.pg_trigger t WHERE t.tgrelid = tab
           AND t.tgname IN ('audit_log_append_only', 'audit_log_no_truncate')) = 2 THEN
        RETURN tab;
    END IF;
    RETURN NULL;
END $$;

-- Refuses unless the armed table ``tab`` keeps its two triggers as made, calling ``fn``
-- (NULL: whichever function audit_log_append_only calls), without rules, row security or
-- inheriting tables.
CREATE OR REPLACE FUNCTION geoservice_guard.audit_log_check(tab oid, fn oid) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF fn IS NULL THEN
        SELECT t.tgfoid INTO fn FROM pg_catalog.pg_trigger t
        WHERE t.tgrelid = tab AND t.tgname = 'audit_log_append_only';
    END IF;
    IF (SELECT count(*) FROM pg_catalog.pg_trigger t WHERE t.tgrelid = tab AND NOT t.tgisinternal) <> 2
       OR NOT EXISTS (
           SELECT FROM pg_catalog.pg_trigger t
           WHERE t.tgrelid = tab AND t.tgname = 'audit_log_append_only' AND t.tgfoid = fn
             AND t.tgtype = 27  -- ROW | BEFORE | DELETE | UPDATE
             AND t.tgenabled IN ('O', 'A') AND t.tgqual IS NULL
             AND pg_catalog.cardinality(t.tgattr::int2[]) = 0)
       OR NOT EXISTS (
           SELECT FROM pg_catalog.pg_trigger t
           WHERE t.tgrelid = tab AND t.tgname = 'audit_log_no_truncate' AND t.tgfoid = fn
             AND t.tgtype = 34  -- BEFORE | TRUNCATE
             AND t.tgenabled IN ('O', 'A') AND t.tgqual IS NULL)
    THEN
        PERFORM geoservice_guard.refuse(
            'dropping, disabling, replacing or adding triggers on it');
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_rewrite r WHERE r.ev_class = tab) THEN
        PERFORM geoservice_guard.refuse('a rule on it');
    END IF;
    IF (SELECT c.relrowsecurity FROM pg_catalog.pg_class c WHERE c.oid = tab) THEN
        PERFORM geoservice_guard.refuse('row level security on it');
    END IF;
    IF EXISTS (SELECT FROM pg_catalog.pg_inherits i WHERE i.inhparent = tab) THEN
        PERFORM geoservice_guard.refuse('a table inheriting from it');
    END IF;
END $$;

CREATE OR REPLACE FUNCTION geoservice_guard.audit_log_after() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    before text[] := pg_catalog.string_to_array(
        NULLIF(pg_catalog.current_setting('geoservice_guard.audit_log', true), ''), ',');
    live oid;
    tab oid;
    fn oid;
    place text;
BEGIN
    IF geoservice_guard.is_superuser() THEN
        RETURN;
    END IF;
    live := geoservice_guard.audit_log_live();
    IF live IS NOT NULL THEN
        PERFORM geoservice_guard.audit_log_check(live, NULL);
    END IF;
    IF before IS NULL THEN
        RETURN;  -- not armed before this command
    END IF;
    tab := before[1]::oid;
    fn := before[2]::oid;
    SELECT n.nspname || '.' || c.relname INTO place
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = tab;
    IF place IS NULL THEN
        RETURN;  -- dropped: sql_drop allowed it (it was empty)
    END IF;
    IF place <> 'geoservice.audit_log' THEN
        PERFORM geoservice_guard.refuse(pg_catalog.format('renaming or moving it (to %s)', place));
    END IF;
    PERFORM geoservice_guard.audit_log_check(tab, fn);
    IF geoservice_guard.audit_log_function_digest(fn) IS DISTINCT FROM before[3] THEN
        PERFORM geoservice_guard.refuse(
            pg_catalog.format('changing its trigger function %s', fn::regprocedure));
    END IF;
END $$;

CREATE OR REPLACE FUNCTION geoservice_guard.audit_log_drop() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    before text[] := pg_catalog.string_to_array(
        NULLIF(pg_catalog.current_setting('geoservice_guard.audit_log', true), ''), ',');
    tab oid := coalesce(before[1]::oid, geoservice_guard.audit_log_live());
BEGIN
    IF tab IS NULL OR geoservice_guard.is_superuser() THEN
        RETURN;
    END IF;
    -- the table itself: a DROP runs no code of the caller's, so the setting is the one its
    -- ddl_command_start wrote
    IF coalesce(before[4]::boolean, false)
       AND EXISTS (SELECT FROM pg_catalog.pg_event_trigger_dropped_objects() d
                   WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = tab
                     AND d.objsubid = 0) THEN
        PERFORM geoservice_guard.refuse('dropping it while it holds entries');
    END IF;
    -- a column (ALTER TABLE ... DROP COLUMN): the table is still there to be measured
    IF EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = tab)
       AND pg_catalog.pg_relation_size(tab) > 0
       AND EXISTS (SELECT FROM pg_catalog.pg_event_trigger_dropped_objects() d
                   WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = tab
                     AND d.objsubid > 0) THEN
        PERFORM geoservice_guard.refuse('dropping a column while it holds entries');
    END IF;
END $$;

CREATE OR REPLACE FUNCTION geoservice_guard.audit_log_rewrite() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    rewritten oid := pg_catalog.pg_event_trigger_table_rewrite_oid();
BEGIN
    IF geoservice_guard.is_superuser() THEN
        RETURN;
    END IF;
    IF rewritten = pg_catalog.to_regclass('geoservice.audit_log')
       AND pg_catalog.pg_relation_size(rewritten) > 0 THEN
        PERFORM geoservice_guard.refuse('rewriting it while it holds entries');
    END IF;
END $$;

DROP EVENT TRIGGER IF EXISTS geoservice_audit_log_before;
DROP EVENT TRIGGER IF EXISTS geoservice_audit_log_after;
DROP EVENT TRIGGER IF EXISTS geoservice_audit_log_drop;
DROP EVENT TRIGGER IF EXISTS geoservice_audit_log_rewrite;
CREATE EVENT TRIGGER geoservice_audit_log_before ON ddl_command_start
    EXECUTE FUNCTION geoservice_guard.audit_log_before();
CREATE EVENT TRIGGER geoservice_audit_log_after ON ddl_command_end
    EXECUTE FUNCTION geoservice_guard.audit_log_after();
CREATE EVENT TRIGGER geoservice_audit_log_drop ON sql_drop
    EXECUTE FUNCTION geoservice_guard.audit_log_drop();
CREATE EVENT TRIGGER geoservice_audit_log_rewrite ON table_rewrite
    EXECUTE FUNCTION geoservice_guard.audit_log_rewrite();
