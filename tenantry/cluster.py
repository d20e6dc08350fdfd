"""`script/cluster`: the scale-out topology on one machine, with real processes.

    script/cluster [--api N] [--port P]    start, print the public URL, run until Ctrl-C
    script/cluster stop                    stop the cluster started from this checkout

It starts PostgreSQL (DATABASE_URL when given, else one embedded server for the whole
cluster), uses Redis (REDIS_URL, else 127.0.0.1:6379), migrates and seeds the demo data when
the database is empty, then runs N API processes (`tenantry serve`, each on its own port), one
`tenantry worker` and nginx in front (least_conn, keepalive; `deploy/nginx.conf` filled in).
A process that exits is started again, as an orchestrator would; SIGTERM to one API process
is a graceful stop (`kit.shutdown`). Everything the cluster writes goes under its state
directory (default var/cluster): the nginx config, each process's log and `cluster.json`
(pids, ports, URLs) for `script/cluster stop` and for the tests.

Written here rather than as a compose file because this machine runs no container engine:
this is the runnable proof of what `deploy/compose.yaml` describes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "deploy" / "nginx.conf"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def render_nginx(listen: str, api_ports: list[int], runtime: Path, *, daemon: bool) -> str:
    """`deploy/nginx.conf` with its markers filled in for processes on this host."""
    servers = "\n".join(
        f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=2s;" for p in api_ports
    )
    text = TEMPLATE.read_text()
    for marker, value in {
        "@@RUNTIME@@": str(runtime),
        "@@LISTEN@@": listen,
        "@@SERVERS@@": servers,
        "@@DAEMON@@": "on" if daemon else "off",
    }.items():
        text = text.replace(marker, value)
    return text


def nginx_binary(install: bool) -> str:
    """nginx from PATH or /usr/sbin; installed from Debian's package when missing and allowed."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if found:
        return found
    if not install or shutil.which("apt-get") is None or os.geteuid() != 0:
        raise SystemExit("nginx is missing: `apt-get install nginx-light` (as root), then again")
    print("Installing nginx from Debian's packages…", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = shutil.which("apt-get") or "apt-get"
    install_it = [apt, "install", "-y", "-q", "nginx-light"]
    subprocess.run(install_it, check=False, env=env)  # noqa: S603 - fixed arguments
    if not Path("/usr/sbin/nginx").exists():  # a machine whose package lists are stale
        subprocess.run([apt, "update", "-q"], check=True, env=env)  # noqa: S603
        subprocess.run(install_it, check=True, env=env)  # noqa: S603
    return "/usr/sbin/nginx"


def redis_answers(url: str) -> bool:
    from redis import Redis

    try:
        return bool(Redis.from_url(url, socket_connect_timeout=2).ping())
    except Exception:  # refused, unresolvable, timed out: not there
        return False


@dataclass
class Proc:
    """One process of the cluster, started again when it exits (until the cluster stops)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    ready_url: str | None = None
    popen: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = field(default=0.0)

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.popen = subprocess.Popen(  # noqa: S603 - our own commands
                self.argv,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
                # Its own process group: Ctrl-C reaches the cluster, which stops each
                # process in order, not every process at once.
                start_new_session=True,
            )
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return None if self.popen is None else self.popen.pid

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(sig)


def wait_ready(url: str, procs: list[Proc], timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for p in procs:
            if p.popen is not None and p.popen.poll() is not None:
                raise SystemExit(f"{p.name} exited while starting; its log: {p.log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - our own URL
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready after {timeout_s:.0f} s")


class Cluster:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.state_dir: Path = args.state_dir.resolve()
        self.procs: list[Proc] = []
        self.stopping = threading.Event()
        self.embedded = False

    def database(self) -> str:
        url = os.environ.get("DATABASE_URL")
        if url:
            return url
        from tenantry.kit import embedded

        print("Starting the embedded PostgreSQL (once, for the whole cluster)…", file=sys.stderr)
        self.embedded = True
        pgdata = self.state_dir / "pgdata"
        url = embedded.start(pgdata)
        embedded.supervise(pgdata, self.stopping)
        return url

    def run(self) -> int:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        logs = self.state_dir / "logs"
        logs.mkdir(exist_ok=True)
        nginx = nginx_binary(install=self.args.install_nginx)
        redis = os.environ.get("REDIS_URL") or DEFAULT_REDIS
        if not redis_answers(redis):
            raise SystemExit(f"Redis does not answer at {redis}: start one or set REDIS_URL")
        database = self.database()
        tenantry = [sys.executable, "-m", "tenantry.cli"]
        env = {
            **os.environ,
            "DATABASE_URL": database,
            "REDIS_URL": redis,
            # The worker runs the jobs; the API processes only queue them.
            "JOBS_IN_PROCESS": "false",
            # nginx is on this host: its X-Forwarded-For names the client (the rate limits' key).
            "TRUSTED_PROXIES": "127.0.0.1",
            "PYTHONUNBUFFERED": "1",
        }
        print("Migrating…", file=sys.stderr, flush=True)
        subprocess.run([*tenantry, "migrate"], env=env, check=True, cwd=ROOT)  # noqa: S603
        if self.args.seed:  # the demo companies, when the database has none yet
            subprocess.run([*tenantry, "seed", "--demo"], env=env, check=True, cwd=ROOT)  # noqa: S603
        api_ports = [free_port() for _ in range(self.args.api)]
        serve = [*tenantry, "serve", "--no-migrate", "--host", "127.0.0.1", "--port"]
        for i, port in enumerate(api_ports, 1):
            self.procs.append(
                Proc(
                    f"api-{i}",
                    [*serve, str(port)],
                    env,
                    logs / f"api-{i}.log",
                    ready_url=f"http://127.0.0.1:{port}/readyz",
                )
            )
        self.procs.append(Proc("worker", [*tenantry, "worker"], env, logs / "worker.log"))
        runtime = self.state_dir / "nginx"
        runtime.mkdir(exist_ok=True)
        conf = runtime / "nginx.conf"
        listen = f"{self.args.host}:{self.args.port}"
        conf.write_text(render_nginx(listen, api_ports, runtime, daemon=False))
        self.procs.append(
            Proc("nginx", [nginx, "-p", str(runtime), "-c", str(conf)], env, logs / "nginx.log")
        )
        for p in self.procs:
            p.start()
        for p in self.procs:
            if p.ready_url:
                wait_ready(p.ready_url, self.procs)
        public = f"http://{listen}"
        wait_ready(f"{public}/readyz", self.procs)
        self.write_state(public, api_ports)
        print(f"Tenantry cluster ready at {public}  (docs {public}/docs)", flush=True)
        for p in self.procs:
            print(f"  {p.name:<8} pid {p.pid}  log {p.log}", flush=True)
        print("Ctrl-C or `script/cluster stop` stops it.", flush=True)
        self.watch()
        return 0

    def write_state(self, public: str, api_ports: list[int]) -> None:
        state = {
            "pid": os.getpid(),
            "url": public,
            "api": [f"http://127.0.0.1:{p}" for p in api_ports],
            "processes": {p.name: p.pid for p in self.procs},
        }
        (self.state_dir / "cluster.json").write_text(json.dumps(state, indent=2))

    def watch(self) -> None:
        """Start again what exits, until told to stop; then stop everything, in order."""
        while not self.stopping.wait(0.5):
            for p in self.procs:
                if p.popen is not None and p.popen.poll() is not None:
                    code = p.popen.returncode
                    print(f"{p.name} exited ({code}); starting it again", flush=True)
                    p.restarts += 1
                    p.start()
                    self.write_state(*self._urls())
        self.shutdown()

    def _urls(self) -> tuple[str, list[int]]:
        state = json.loads((self.state_dir / "cluster.json").read_text())
        return state["url"], [int(u.rsplit(":", 1)[1]) for u in state["api"]]

    def shutdown(self) -> None:
        print("Stopping the cluster…", file=sys.stderr, flush=True)
        # nginx first (no new requests), then the API processes and the worker, gracefully.
        for group in (["nginx"], [p.name for p in self.procs if p.name != "nginx"]):
            members = [p for p in self.procs if p.name in group]
            for p in members:
                p.stop(signal.SIGQUIT if p.name == "nginx" else signal.SIGTERM)
            for p in members:
                if p.popen is None:
                    continue
                try:
                    p.popen.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    p.popen.kill()
        if self.embedded:
            from tenantry.kit import embedded

            embedded.stop_all()
        (self.state_dir / "cluster.json").unlink(missing_ok=True)


def stop(state_dir: Path, timeout_s: float = 120) -> int:
    state_file = state_dir / "cluster.json"
    if not state_file.exists():
        print(f"No cluster is running from {state_dir}.", file=sys.stderr)
        return 1
    pid = json.loads(state_file.read_text())["pid"]
    if not _is_cluster(pid):  # gone (a crash, a reboot) and its number perhaps reused
        state_file.unlink(missing_ok=True)
        print("The cluster had already stopped.", file=sys.stderr)
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _is_cluster(pid):
        if time.monotonic() > deadline:
            print(f"The cluster (pid {pid}) is still stopping after {timeout_s:.0f} s.")
            return 1
        time.sleep(0.2)
    print("Stopped.", file=sys.stderr)
    return 0


def _is_cluster(pid: int) -> bool:
    """Whether `pid` is a running `tenantry.cluster` (not another process given its number)."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"tenantry.cluster" in command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="script/cluster", description=__doc__.split("\n")[0])
    parser.add_argument("command", nargs="?", choices=("start", "stop"), default="start")
    parser.add_argument("--api", type=int, default=2, help="API processes (default 2)")
    parser.add_argument("--host", default="127.0.0.1", help="nginx's interface")
    parser.add_argument("--port", type=int, default=8080, help="nginx's port (default 8080)")
    parser.add_argument("--state-dir", type=Path, default=ROOT / "var" / "cluster")
    parser.add_argument("--no-seed", dest="seed", action="store_false", help="no demo data")
    parser.add_argument(
        "--no-install-nginx",
        dest="install_nginx",
        action="store_false",
        help="fail instead of installing nginx when it is missing",
    )
    args = parser.parse_args(argv)
    if args.command == "stop":
        return stop(args.state_dir.resolve())
    if args.api < 1:
        parser.error("--api must be at least 1")
    cluster = Cluster(args)
    # Ctrl-C and SIGTERM (`script/cluster stop`) end the watch loop; the loop stops the rest.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: cluster.stopping.set())
    try:
        return cluster.run()
    except BaseException:
        cluster.shutdown()
        raise


if __name__ == "__main__":
    sys.exit(main())
