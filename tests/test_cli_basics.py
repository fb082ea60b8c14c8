"""The CLI's database commands, with the real executable."""

from __future__ import annotations

import json

from geoservice import datasets
from tests.cli import run_cli
from tests.tcp_proxy import free_port


def test_db_url_prints_the_url_in_use_without_its_password(settings) -> None:
    url = settings.sqlalchemy_url()
    assert url.password  # the owner's login has one to hide
    result = run_cli("db", "url", settings=settings)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == url.render_as_string(hide_password=True)
    assert url.password not in result.stdout and "***" in result.stdout
    shown = run_cli("db", "url", "--show-password", settings=settings)
    assert shown.stdout.strip() == url.render_as_string(hide_password=False)


def test_wrong_database_url_is_one_line_naming_host_and_port() -> None:
    port = free_port()
    result = run_cli(
        "datasets", env={"GEOSERVICE_DATABASE_URL": f"postgresql://u@127.0.0.1:{port}/db"}
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: cannot connect to PostgreSQL at 127.0.0.1:{port}/db")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_unparseable_database_url_is_named() -> None:
    result = run_cli("datasets", env={"GEOSERVICE_DATABASE_URL": "not a url"})
    assert result.returncode == 2
    assert "GEOSERVICE_DATABASE_URL 'not a url' is not a database URL" in result.stderr


def test_datasets_and_rollback(settings, engine) -> None:
    empty = run_cli("datasets", settings=settings)
    assert empty.returncode == 0
    assert "no dataset published yet" in empty.stdout
    first = datasets.publish(engine, {"stations": lambda c, s: 0}, sources=[], note="first")
    datasets.publish(engine, {"stations": lambda c, s: 0}, sources=[], note="second")

    listed = json.loads(run_cli("datasets", "--json", settings=settings).stdout)
    assert [(v["id"], v["current"], v["note"]) for v in listed] == [
        (first, False, "first"),
        (first + 1, True, "second"),
    ]
    result = run_cli("rollback", str(first), settings=settings)
    assert result.returncode == 0
    assert result.stdout.strip() == f"dataset version {first} is current"
    table = run_cli("datasets", settings=settings).stdout
    rows = {
        line.split("│")[2].strip(): line.split("│")[1].strip()
        for line in table.splitlines()
        if line.count("│") > 3
    }
    assert rows[str(first)] == "*"
    assert rows[str(first + 1)] == ""

    missing = run_cli("rollback", "99", settings=settings)
    assert missing.returncode == 2
    assert "dataset version 99 does not exist" in missing.stderr
