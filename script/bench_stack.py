"""What the middleware stack costs: one route, served bare and under Tenantry's whole stack.

    script/bench-stack [ROUNDS] [SECONDS]      throughput, side by side (default 5 rounds of 10 s)
    script/bench-stack --instructions          CPU instructions per request (valgrind), exact

Apps (uvicorn factories in this module):
    bare           FastAPI() with the one route: the floor.
    tenantry_bare  Tenantry's app (every router, handler and object in memory) without its
                   middleware: the same route, first in the route table.
    full           Tenantry's app with its whole stack (the edge middleware), the route first in
                   the table as well. The route is rate limited like any API route, so the
                   limiter's count and headers are part of what is measured.
`full` against `tenantry_bare` is the stack's own cost; against `bare`, everything.

Throughput: each app is one uvicorn process pinned to core 0; wrk runs on core 1 (`-t1 -c50`).
The apps take turns, round after round, so that a noisy neighbour hurts them alike; each round
reports requests per second, the server's CPU time per request (from /proc/PID/stat) and
`full`'s throughput as a share of `tenantry_bare`'s in that same round. Medians are reported.
On a shared virtual machine the rates drift between rounds by 10-20%; the within-round share is
the steadier figure.

Instructions: the app is called in-process, without a server (the same scope uvicorn would
build), under valgrind's callgrind with instrumentation switched on only around the requests;
two run lengths are subtracted, so start-up and exit cancel out. No noise at all, but it counts
work, not time: an instruction that misses the cache costs more than one that does not.

Needs `wrk` or `valgrind` (installed from Debian's packages when missing and run as root),
`taskset`, PostgreSQL at DATABASE_URL (default 127.0.0.1:5432; the app only connects to it for
its lifespan) and loopback only.
"""

from __future__ import annotations

import argparse
import gc
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.loadgen import ensure_tool  # noqa: E402 - after the path is set
from bench.runner import Server  # noqa: E402

APPS = ("bare", "tenantry_bare", "full")
ENV = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/postgres",
    **os.environ,
    # one address sends everything: the limit must not be what is measured
    "RATE_LIMIT_DEFAULT": "1000000000/minute",
    "SHUTDOWN_DRAIN_S": "0",  # no balancer in front: nothing to drain between apps
}


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


# --- throughput ------------------------------------------------------------------------------


def _wrk(url: str, seconds: str) -> tuple[int, float, int]:
    url += "/ping"
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


def throughput(rounds: int, seconds: str) -> None:
    ensure_tool("wrk")
    servers: dict[str, Server] = {}
    try:
        for name in APPS:
            servers[name] = Server(
                ENV,
                0,
                factory=f"bench_stack:{name}",
                app_dir="script",
                ready_path="/ping",
                name=name,
            )
        for server in servers.values():
            server.wait_ready()
            _wrk(server.url, "2s")  # warm up
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name in APPS}
        shares = []
        for r in range(rounds):
            for name, server in servers.items():
                before = server.cpu_seconds()
                requests, rps, errors = _wrk(server.url, seconds)
                cpu_us = (server.cpu_seconds() - before) / requests * 1e6
                results[name].append((rps, cpu_us, errors))
                print(f"round {r + 1} {name:14s} {rps:7.0f} req/s  {cpu_us:6.1f} µs CPU/request")
            shares.append(results["full"][-1][0] / results["tenantry_bare"][-1][0])
            print(f"round {r + 1} full at {shares[-1]:.1%} of tenantry_bare")
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
        share = statistics.median(shares)
        print(
            f"\nthe stack costs {1 - share:.1%} of the app's throughput "
            f"(full at {share:.1%} of tenantry_bare, median of the rounds' shares, "
            f"{min(shares):.1%}-{max(shares):.1%})"
        )
    finally:
        for server in servers.values():
            server.stop()


# --- instructions ----------------------------------------------------------------------------

_SCOPE_HEADERS = [(b"host", b"127.0.0.1"), (b"user-agent", b"bench"), (b"accept", b"*/*")]


def _in_process(name: str, requests: int, marker: str) -> None:
    """Run by `instructions` under valgrind: warm up, wait to be instrumented, then serve."""
    import uvloop

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"{name} answered {message['status']}: nothing to count")

    app = globals()[name]()

    async def serve(count: int) -> None:
        for _ in range(count):
            scope = {
                "type": "http",
                "asgi": {"version": "3.0", "spec_version": "2.3"},
                "http_version": "1.1",
                "server": ("127.0.0.1", 8000),
                "client": ("127.0.0.1", 50000),
                "scheme": "http",
                "method": "GET",
                "root_path": "",
                "path": "/ping",
                "raw_path": b"/ping",
                "query_string": b"",
                "headers": _SCOPE_HEADERS,
                "state": {},
            }
            await app(scope, receive, send)

    uvloop.run(serve(300))  # warm
    gc.collect()
    gc.freeze()
    Path(marker + ".ready").touch()
    while not Path(marker + ".go").exists():  # until instrumentation is on
        time.sleep(0.05)
    uvloop.run(serve(requests))
    os._exit(0)  # no teardown in the count


def _count(name: str, requests: int, workdir: str) -> int:
    marker = f"{workdir}/{name}.{requests}"
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
    cmd += [f"--callgrind-out-file={marker}.out", sys.executable, __file__]
    cmd += ["--in-process", name, str(requests), marker]
    err = open(f"{marker}.err", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL, stderr=err)  # noqa: S603
    try:
        while not Path(marker + ".ready").exists():
            if proc.poll() is not None:
                raise RuntimeError(Path(f"{marker}.err").read_text()[-2000:])
            time.sleep(0.2)
        subprocess.run(  # noqa: S603
            ["callgrind_control", "-i", "on", str(proc.pid)],  # noqa: S607
            check=True,
            capture_output=True,
        )
        Path(marker + ".go").touch()
        proc.wait(timeout=900)
    finally:
        err.close()
    found = re.search(r"Collected : (\d+)", Path(f"{marker}.err").read_text())
    if not found:
        raise RuntimeError(Path(f"{marker}.err").read_text()[-2000:])
    return int(found.group(1))


def instructions(requests: int) -> None:
    ensure_tool("valgrind")
    print(f"counting instructions per request ({requests} requests per app, under valgrind)…")
    per: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for name in APPS:
            short, long = _count(name, 100, workdir), _count(name, 100 + requests, workdir)
            per[name] = (long - short) / requests
            print(f"{name:14s} {per[name]:9,.0f} instructions/request")
    cost = per["full"] / per["tenantry_bare"] - 1
    print(f"\nthe stack adds {cost:.1%} to the app's instructions per request")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--in-process":
        _in_process(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("rounds", nargs="?", type=int, default=5)
    parser.add_argument("seconds", nargs="?", default="10s")
    parser.add_argument("--instructions", action="store_true", help="count with valgrind")
    parser.add_argument("--requests", type=int, default=1000, help="with --instructions")
    args = parser.parse_args()
    if args.instructions:
        instructions(args.requests)
    else:
        throughput(args.rounds, args.seconds)


if __name__ == "__main__":
    main()
