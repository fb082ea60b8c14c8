"""No login the service, the ETL or the migrations use can rewrite the audit log (#22).

The local cluster's owner (``geoservice_owner``) is no superuser and cannot create roles;
the audit log's append-only triggers are kept by a superuser's event trigger
(``geoservice/migrations/audit_guard.sql``, installed by ``scripts/pgcluster.sh``). Each
login below is the real one, on a database of its own holding audit entries: the owner's
(migrations, ``geoservice db upgrade``), the ETL's ``geoservice_etl``, the API's
``geoservice_api`` and ``geoservice_rec``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

from geoservice.db import audit_guard_problem, require_current_schema
from geoservice.settings import LOCAL_LOGINS, Role, Settings
from tests.cli import run_cli

S = "geoservice"
LOGINS: tuple[Role, ...] = ("owner", "writer", "reader", "recorder")
GUARD_TRIGGERS = {
    "geoservice_audit_log_before",
    "geoservice_audit_log_after",
    "geoservice_audit_log_drop",
    "geoservice_audit_log_rewrite",
}
REFUSED = (
    "append-only",  # the guard, or the table's own trigger
    "permission denied",
    "must be owner",
    "must have admin option",
    "must be superuser",
)
"""What a refusal says; anything else (a syntax error, a missing object) fails the test."""

TAMPERING = (
    # the triggers
    f"ALTER TABLE {S}.audit_log DISABLE TRIGGER audit_log_append_only",
    f"ALTER TABLE {S}.audit_log DISABLE TRIGGER audit_log_no_truncate",
    f"ALTER TABLE {S}.audit_log DISABLE TRIGGER ALL",
    f"ALTER TABLE {S}.audit_log DISABLE TRIGGER USER",
    f"ALTER TABLE {S}.audit_log ENABLE REPLICA TRIGGER audit_log_append_only",
    # the guard's memory of the command's start cleared by code the command itself runs
    f"ALTER TABLE {S}.audit_log DISABLE TRIGGER audit_log_append_only, ADD CONSTRAINT blind "
    "CHECK (set_config('geoservice_guard.audit_log', '', true) IS NOT NULL)",
    f"DROP TRIGGER audit_log_append_only ON {S}.audit_log",
    f"DROP TRIGGER audit_log_no_truncate ON {S}.audit_log",
    f"ALTER TRIGGER audit_log_append_only ON {S}.audit_log RENAME TO audit_log_gone",
    f"CREATE OR REPLACE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON {S}.audit_log "
    f"FOR EACH ROW WHEN (false) EXECUTE FUNCTION {S}.audit_log_is_append_only()",
    f"CREATE TRIGGER audit_log_skip BEFORE INSERT ON {S}.audit_log "
    f"FOR EACH ROW EXECUTE FUNCTION {S}.audit_log_is_append_only()",
    # the trigger function
    f"CREATE OR REPLACE FUNCTION {S}.audit_log_is_append_only() RETURNS trigger "
    "LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
    f"DROP FUNCTION {S}.audit_log_is_append_only() CASCADE",
    # around the table
    f"CREATE RULE audit_log_nothing AS ON INSERT TO {S}.audit_log DO INSTEAD NOTHING",
    f"ALTER TABLE {S}.audit_log ENABLE ROW LEVEL SECURITY",
    f"CREATE TABLE {S}.audit_log_forged () INHERITS ({S}.audit_log)",
    f"ALTER TABLE {S}.audit_log RENAME TO audit_log_old",
    f"ALTER TABLE {S}.audit_log SET SCHEMA public",
    f"ALTER SCHEMA {S} RENAME TO geoservice_old",
    f"ALTER TABLE {S}.audit_log ALTER COLUMN actor TYPE text USING 'someone else'",
    f"ALTER TABLE {S}.audit_log DROP COLUMN actor",
    f"DROP TABLE {S}.audit_log",
    f"DROP TABLE {S}.audit_log CASCADE",
    f"DROP SCHEMA {S} CASCADE",
    # the rows
    f"UPDATE {S}.audit_log SET actor = 'someone else'",
    f"DELETE FROM {S}.audit_log",
    f"TRUNCATE {S}.audit_log",
    f"TRUNCATE {S}.audit_log CASCADE",
    # the guard itself, and the ways to a superuser
    "ALTER EVENT TRIGGER geoservice_audit_log_after DISABLE",
    "DROP EVENT TRIGGER geoservice_audit_log_after",
    "DROP SCHEMA geoservice_guard CASCADE",
    "CREATE OR REPLACE FUNCTION geoservice_guard.audit_log_after() RETURNS event_trigger "
    "LANGUAGE plpgsql AS $$ BEGIN END $$",
    "ALTER ROLE CURRENT_USER SUPERUSER",
    "ALTER ROLE CURRENT_USER CREATEROLE",
    "CREATE ROLE audit_sneak SUPERUSER",
    "GRANT pg_execute_server_program TO CURRENT_USER",
    "SET ROLE postgres",
)
REPLICA = (
    "SET session_replication_role = replica",
    "SET LOCAL session_replication_role = replica",
    "SELECT set_config('session_replication_role', 'replica', false)",
    "ALTER ROLE CURRENT_USER SET session_replication_role = replica",
    "ALTER DATABASE {database} SET session_replication_role = replica",
)


def _login(settings: Settings, base: Settings, role: Role) -> Engine:
    """The real login of ``role`` on the database of ``settings`` (no session role)."""
    url = settings.sqlalchemy_url()
    if role != "owner":
        user, key = LOCAL_LOGINS[role]
        url = url.set(username=user, password=base._cluster()[key])
    return sa.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 5})


def _state(engine: Engine) -> dict[str, object]:
    """The audit log as its readers see it, its triggers, its function and the guard."""
    with engine.connect() as conn:
        return {
            "entries": conn.execute(
                sa.text(f"SELECT id, actor, action, detail FROM {S}.audit_log ORDER BY id")
            ).all(),
            "triggers": conn.execute(
                sa.text(
                    "SELECT tgname, tgenabled, tgtype, tgfoid::regproc::text FROM pg_trigger "
                    f"WHERE tgrelid = '{S}.audit_log'::regclass AND NOT tgisinternal ORDER BY 1"
                )
            ).all(),
            "function": conn.execute(
                sa.text(
                    "SELECT prosrc FROM pg_proc "
                    f"WHERE oid = '{S}.audit_log_is_append_only'::regproc"
                )
            ).scalar_one(),
            "guard": conn.execute(
                sa.text(
                    "SELECT evtname, evtenabled, r.rolsuper FROM pg_event_trigger e "
                    "JOIN pg_roles r ON r.oid = e.evtowner ORDER BY 1"
                )
            ).all(),
        }


@pytest.fixture()
def audited(make_database, base_settings) -> Iterator[Settings]:
    """A migrated database with two audit entries, written as the ETL writes them."""
    settings = make_database()
    writer = _login(settings, base_settings, "writer")
    with writer.begin() as conn:
        for name, key_id in (("audit-1", "a0d17001"), ("audit-2", "a0d17002")):
            conn.execute(
                sa.text(
                    "SELECT geoservice.create_api_key(:name, :key_id, 'planner', 'h', NULL, NULL, "
                    "NULL, 'dba', 'cli', 'root')"
                ),
                {"name": name, "key_id": key_id},
            )
    writer.dispose()
    yield settings


def _refused(engine: Engine, statement: str) -> str:
    with pytest.raises(sa.exc.DBAPIError) as info, engine.begin() as conn:
        conn.exec_driver_sql(statement)
    message = str(info.value.orig)
    assert any(word in message for word in REFUSED), (statement, message)
    return message


def test_no_login_of_the_service_is_a_superuser(base_settings, audited) -> None:
    """Every login the service, the ETL and the migrations use, on the local cluster's own
    database and on a test database: no superuser, no CREATEROLE; the databases belong to
    the owner and carry the superuser's guard."""
    for settings in (base_settings, audited):
        for role in LOGINS:
            url, session_role = settings.login(role)
            if settings is base_settings:
                assert session_role is None, role  # the local cluster: a login per role
            engine = sa.create_engine(url, poolclass=NullPool)
            with engine.connect() as conn:
                user, superuser, createrole, owner = conn.execute(
                    sa.text(
                        "SELECT session_user, r.rolsuper, r.rolcreaterole, "
                        "pg_get_userbyid(d.datdba) FROM pg_roles r, pg_database d "
                        "WHERE r.rolname = session_user AND d.datname = current_database()"
                    )
                ).one()
                guard = conn.execute(
                    sa.text(
                        "SELECT evtname FROM pg_event_trigger e JOIN pg_roles r "
                        "ON r.oid = e.evtowner WHERE r.rolsuper AND e.evtenabled = 'O'"
                    )
                ).scalars()
                assert set(guard) == GUARD_TRIGGERS, (role, settings.database_url)
            engine.dispose()
            assert (superuser, createrole) == (False, False), (role, user)
            assert owner == "geoservice_owner", (role, user)
    assert base_settings.sqlalchemy_url().username == "geoservice_owner"
    owner = _login(audited, base_settings, "owner")
    assert audit_guard_problem(owner) is None  # what `geoservice db upgrade` warns about
    owner.dispose()


@pytest.mark.parametrize("role", LOGINS)
def test_no_login_can_get_past_the_append_only_audit_log(audited, base_settings, role) -> None:
    engine = _login(audited, base_settings, role)
    owner = _login(audited, base_settings, "owner")
    try:
        before = _state(owner)
        assert len(before["entries"]) == 2
        assert [t[:2] for t in before["triggers"]] == [
            ("audit_log_append_only", "O"),
            ("audit_log_no_truncate", "O"),
        ]
        database = audited.sqlalchemy_url().database
        for statement in TAMPERING + REPLICA:
            _refused(engine, statement.format(database=database))
        with engine.connect() as conn:
            assert conn.execute(sa.text("SHOW session_replication_role")).scalar() == "origin"
        assert _state(owner) == before
    finally:
        engine.dispose()
        owner.dispose()


def test_the_owner_still_migrates_and_arranges(audited, base_settings) -> None:
    """The guard leaves the owner its work: migrations down and up (the audit log kept),
    harmless DDL on the audit log, new entries; a downgrade that would drop a non-empty audit
    log is refused as a whole."""
    owner = _login(audited, base_settings, "owner")
    try:
        before = _state(owner)
        down = run_cli("db", "downgrade", "0007", settings=audited)
        assert down.returncode == 0, down.stderr
        up = run_cli("db", "upgrade", settings=audited)
        assert up.returncode == 0, up.stderr
        assert _state(owner) == before
        with owner.begin() as conn:
            conn.exec_driver_sql(f"COMMENT ON TABLE {S}.audit_log IS 'append-only'")
            conn.exec_driver_sql(f"CREATE INDEX audit_log_actor ON {S}.audit_log (actor)")
            conn.exec_driver_sql(f"DROP INDEX {S}.audit_log_actor")
            conn.exec_driver_sql(f"GRANT SELECT ON {S}.audit_log TO geoservice_recorder")
            conn.exec_driver_sql(f"REVOKE SELECT ON {S}.audit_log FROM geoservice_recorder")
            conn.exec_driver_sql(
                f"INSERT INTO {S}.audit_log (actor, via, action) VALUES ('tests', 'cli', 'noted')"
            )
        gone = run_cli("db", "downgrade", "0003", settings=audited)
        assert gone.returncode != 0
        assert "dropping it while it holds entries refused" in gone.stderr, gone.stderr
        after = _state(owner)
        assert after["entries"][:2] == before["entries"] and len(after["entries"]) == 3
        assert after["triggers"] == before["triggers"]
        require_current_schema(owner)  # the refused downgrade left it at head
    finally:
        owner.dispose()
