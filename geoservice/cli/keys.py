"""``geoservice keys`` (API keys) and ``geoservice audit`` (who did what)."""

from __future__ import annotations

import json
import os
import secrets
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from geoservice.audit import Actor
from geoservice.cli.base import (
    By,
    app,
    keys_app,
    stderr,
)
from geoservice.db import (
    open_engine,
)
from geoservice.settings import Settings


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what the key is for (unique).")],
    role: Annotated[str, typer.Option(help="tracker, dispatch, planner, gis or admin.")],
    units: Annotated[
        str | None,
        typer.Option(
            help="Patrol unit codes, comma-separated (XD01-1,XD01-2): the only units whose "
            "positions the key may post (a tracker key needs them)."
        ),
    ] = None,
    rate: Annotated[
        float | None, typer.Option(help="Requests per second [GEOSERVICE_RATE_PER_S].")
    ] = None,
    burst: Annotated[int | None, typer.Option(help="Burst [GEOSERVICE_RATE_BURST].")] = None,
    by: By = None,
) -> None:
    """Create a key; it is printed once, alone on the last line (only its hash is kept)."""
    from geoservice.keys import create_key

    engine = open_engine(Settings(), "writer")
    codes = None if units is None else units.split(",")
    key = create_key(
        engine, name, role, actor=Actor.cli(by), rate_per_s=rate, burst=burst, units=codes
    )
    bound = f", units {units}" if units else ""
    stderr.print(
        f"key {name!r} ({role}{bound}) created; it is shown once, keep it:", highlight=False
    )
    typer.echo(key)


@keys_app.command("list")
def keys_list(as_json: Annotated[bool, typer.Option("--json", help="JSON.")] = False) -> None:
    """The keys: names, roles, dates (never the keys themselves)."""
    from geoservice.keys import list_keys

    with open_engine(Settings()).connect() as conn:
        infos = list_keys(conn)
    if as_json:
        rows = [
            {
                **k.__dict__,
                "created_at": k.created_at.isoformat(),
                "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            }
            for k in infos
        ]
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table("name", "role", "key id", "created", "by", "revoked", "rate/s", "units")
    for k in infos:
        table.add_row(
            k.name,
            k.role,
            k.key_id,
            f"{k.created_at:%Y-%m-%d %H:%M}",
            k.created_by,
            f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "",
            "" if k.rate_per_s is None else f"{k.rate_per_s:g}",
            ",".join(k.units or ()),
        )
    Console().print(table)


@keys_app.command("revoke")
def keys_revoke(name: str, by: By = None) -> None:
    """Revoke a key: every server refuses it within a second."""
    from geoservice.keys import revoke_key

    revoke_key(open_engine(Settings(), "writer"), name, actor=Actor.cli(by))
    typer.echo(f"key {name!r} revoked")


@keys_app.command("local-admin")
def keys_local_admin(by: By = None) -> None:
    """The local demo's admin key in <data dir>/admin.key (mode 600), created the first
    time; prints where it is (``make run`` calls this)."""
    from geoservice.keys import create_key

    settings = Settings()
    path = settings.resolved_data_dir / "admin.key"
    if not path.exists():
        key = create_key(
            open_engine(settings, "writer"),
            f"local-admin-{secrets.token_hex(3)}",
            "admin",
            actor=Actor.cli(by),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key + "\n")
    typer.echo(f'admin key in {path}: curl -H "Authorization: Bearer $(cat {path})" ...')


@app.command("audit")
def audit_command(
    as_json: Annotated[bool, typer.Option("--json", help="JSON.")] = False,
    limit: Annotated[int, typer.Option(min=1, help="Newest entries first.")] = 50,
) -> None:
    """The audit log: publishes, promotions, rollbacks, keys created and revoked."""
    from geoservice import audit

    with open_engine(Settings()).connect() as conn:
        entries = audit.entries(conn, limit=limit)
    if as_json:
        typer.echo(json.dumps([e.to_json() for e in entries], ensure_ascii=False, indent=2))
        return
    table = Table("at", "who", "via", "action", "version", "detail", "note")
    for e in entries:
        who = e.actor if e.os_user in (None, e.actor) else f"{e.actor} ({e.os_user})"
        detail = ", ".join(f"{k}={v}" for k, v in e.detail.items() if k != "sources")
        table.add_row(
            f"{e.at:%Y-%m-%d %H:%M:%S}",
            who,
            e.via,
            e.action,
            str(e.version_id or ""),
            detail,
            e.note,
        )
    Console().print(table)
