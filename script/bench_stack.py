"""What the middleware stack costs: one route, served bare and under Tenantry's whole stack.

    script/bench-stack [ROUNDS] [SECONDS]

Apps (uvicorn factories in this module):
    bare           FastAPI() with the one route: the floor.
    tenantry_bare  Tenantry's app (every router, handler and object in memory) without any
                   middleware: the same route, first in the route table.
    full           Tenantry's app with its whole stack, the route first in the table as well.
`full` against `tenantry_bare` is the stack's own cost; against `bare`, everything.

Each app is one uvicorn process pinned to core 0; wrk runs on core 1 (`-t1 -c50`). The apps are
loaded in turn, round after round (interleaved, so that a noisy neighbour hurts them alike), and
each round reports requests per second and the server's CPU time per request (from
/proc/PID/stat, which load elsewhere on the machine does not inflate). Medians are reported.
Needs `wrk` and `taskset`, PostgreSQL at DATABASE_URL (default 127.0.0.1:5432) and loopback only.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[1]
APPS = ("bare", "tenantry_bare", "full")


async def ping() -> dict[str, Any]:
    return {"message": "pong", "ok": True}


def bare() -> FastAPI:
    app = FastAPI()
    app.get("/ping")(ping)
    return app


def full() -> FastAPI:
    from tenantry.app import create_app

    app = create_app()
    app.get("/ping")(ping)
    # First in the table, as in `bare`: both pay the same routing cost.
    app.router.routes.insert(0, app.router.routes.pop())
    return app


def tenantry_bare() -> FastAPI:
    app = full()
    app.user_middleware.clear()
    return app


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(port: int, seconds: str) -> tuple[int, float, int]:
    url = f"http://127.0.0.1:{port}/ping"
    out = subprocess.run(  # noqa: S603 - our own arguments
        ["taskset", "-c", "1", "wrk", "-t1", "-c50", f"-d{seconds}", url],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return requests, rps, int(errors.group(1)) if errors else 0


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    seconds = sys.argv[2] if len(sys.argv) > 2 else "10s"
    env = {
        "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
        **os.environ,
        # one address sends everything: the limit must not be what is measured
        "RATE_LIMIT_DEFAULT": "1000000000/minute",
    }
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    try:
        for i, name in enumerate(APPS):
            port = 18700 + i
            cmd = ["taskset", "-c", "0", str(ROOT / ".venv/bin/uvicorn"), "--app-dir", "script"]
            cmd += ["--factory", f"bench_stack:{name}", "--port", str(port), "--loop", "uvloop"]
            cmd += ["--http", "httptools", "--no-access-log", "--log-level", "warning"]
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)  # noqa: S603
            servers[name] = (proc, port)
        for _, port in servers.values():
            for _ in range(150):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            _wrk(port, "2s")  # warm up
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in APPS}
        for r in range(rounds):
            for name, (proc, port) in servers.items():
                before = _cpu_seconds(proc.pid)
                requests, rps, errors = _wrk(port, seconds)
                cpu_us = (_cpu_seconds(proc.pid) - before) / requests * 1e6
                results[name].append((rps, cpu_us, errors))
                print(f"round {r + 1} {name:14s} {rps:7.0f} req/s  {cpu_us:6.1f} µs CPU/request")
        print("\nmedians")
        floor = statistics.median(rps for rps, _, _ in results["bare"])
        for name, rows in results.items():
            rps = statistics.median(row[0] for row in rows)
            cpu = statistics.median(row[1] for row in rows)
            errors = sum(row[2] for row in rows)
            print(
                f"{name:14s} {rps:7.0f} req/s ({rps / floor:5.1%} of bare)  "
                f"{cpu:6.1f} µs CPU/request  non-2xx {errors}"
            )
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait(timeout=30)


if __name__ == "__main__":
    main()
