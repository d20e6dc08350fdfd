"""The mixed scenario through nginx, with 1 and with 2 API processes (and, for reference, one
process without nginx): what the scale-out topology costs and gives on this machine.

    python -m bench.through_nginx [--rounds 3] [--duration 10] [--scenario mixed-100]

Each configuration runs the same wrk script (`bench.scenarios`) in interleaved rounds, so a
noisy neighbour hurts them alike. Nothing is pinned: the API processes, nginx's workers and
wrk share the machine's cores as they would on a real host, and the report says how many there
are. CPU per request adds up the API processes and nginx (master and workers); wrk's own is
given apart. Results go to bench/results/<time>-nginx.json and latest-nginx.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import loadgen
from bench.runner import Options, Server, _database, _login, _say, _seed
from bench.scenarios import OWNER, by_name
from tenantry.cluster import nginx_binary, render_nginx

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


class Nginx:
    def __init__(self, ports: list[int], listen_port: int) -> None:
        self.runtime = ROOT / "var" / f"bench-nginx-{listen_port}"
        self.runtime.mkdir(parents=True, exist_ok=True)
        conf = self.runtime / "nginx.conf"
        conf.write_text(render_nginx(f"127.0.0.1:{listen_port}", ports, self.runtime, daemon=False))
        self.url = f"http://127.0.0.1:{listen_port}"
        self.proc = subprocess.Popen(
            [nginx_binary(install=True), "-p", str(self.runtime), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
        )
        self.ps = psutil.Process(self.proc.pid)

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in [self.ps, *self.ps.children(recursive=True)]:
            t = p.cpu_times()
            total += t.user + t.system
        return total

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Setup:
    """One configuration: its API processes, and nginx in front of them or not."""

    def __init__(self, name: str, servers: list[Server], nginx: Nginx | None) -> None:
        self.name, self.servers, self.nginx = name, servers, nginx
        self.url = nginx.url if nginx else servers[0].url

    def cpu_seconds(self) -> float:
        cpu = sum(s.cpu_seconds() for s in self.servers)
        return cpu + (self.nginx.cpu_seconds() if self.nginx else 0.0)

    def queries(self) -> tuple[int, int]:
        statements = requests = 0
        for s in self.servers:
            seen = httpx.get(s.url + "/__bench/queries").json()
            statements += sum(v[0] for v in seen.values())
            requests += sum(v[1] for v in seen.values())
            httpx.delete(s.url + "/__bench/queries")
        return statements, requests


def measure(setup: Setup, lua: str, duration: float, connections: int) -> dict[str, Any]:
    setup.queries()  # reset the counters
    before = setup.cpu_seconds()
    m = loadgen.run_wrk(setup.url, lua, duration_s=duration, connections=connections, cpu=None)
    used = setup.cpu_seconds() - before
    statements, requests = setup.queries()
    return {
        "rps": m.rps,
        "p50_ms": m.p50_ms,
        "p95_ms": m.p95_ms,
        "p99_ms": m.p99_ms,
        "errors": m.errors + m.non_2xx,
        "cpu_us_per_request": used * 1e6 / max(m.requests, 1),
        "queries_per_request": statements / requests if requests else None,
        "wrk_cpu": m.generator_cpu,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.through_nginx")
    parser.add_argument("--scenario", default="mixed-100")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    args = parser.parse_args(argv)
    scenario = next(s for s in by_name([args.scenario]) if s.name == args.scenario)
    loadgen.ensure_wrk()
    options = Options(crm_customers=0)  # the mixed scenario reads users and settings only
    url, mode, env = _database(options)
    redis = os.environ.get("REDIS_URL")
    if redis:
        env["REDIS_URL"] = redis
    from tenantry.kit.migrations import upgrade

    upgrade(url)
    asyncio.run(_seed(url, options))
    servers = [Server(env, None, name=f"bench-api-{i}") for i in (1, 2)]
    started: list[Nginx] = []
    try:
        for s in servers:
            s.wait_ready()
        one, two = Nginx([servers[0].port], 18081), Nginx([s.port for s in servers], 18082)
        started += [one, two]
        setups = [
            Setup("1 process, no nginx", servers[:1], None),
            Setup("1 process behind nginx", servers[:1], one),
            Setup("2 processes behind nginx", servers, two),
        ]
        for setup in setups:
            httpx.get(setup.url + "/readyz", timeout=10).raise_for_status()
        with httpx.Client(base_url=servers[0].url, timeout=30) as client:
            token = _login(client, OWNER, options.password)
        lua = scenario.lua(token, options.password, {})
        _say(f"{scenario.name} through nginx: {mode}{', Redis' if redis else ''}; warming up…")
        for setup in setups:
            measure(setup, lua, args.warmup, scenario.connections)
        runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in setups}
        for round_no in range(args.rounds):
            for setup in setups:
                _say(f"  round {round_no + 1}: {setup.name}")
                runs[setup.name].append(measure(setup, lua, args.duration, scenario.connections))
    finally:
        for n in started:
            n.stop()
        for s in servers:
            s.stop()
    summary = {
        name: {
            key: statistics.median(r[key] for r in rs)
            for key in ("rps", "p50_ms", "p95_ms", "p99_ms", "cpu_us_per_request", "wrk_cpu")
        }
        | {
            "errors": sum(r["errors"] for r in rs),
            "queries_per_request": rs[-1]["queries_per_request"],
        }
        for name, rs in runs.items()
    }
    data = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT
        ).stdout.strip(),
        "mode": mode,
        "redis": bool(redis),
        "cpus": len(os.sched_getaffinity(0)),
        "scenario": scenario.name,
        "connections": scenario.connections,
        "rounds": args.rounds,
        "duration_s": args.duration,
        "summary": summary,
        "runs": runs,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    (RESULTS / f"{stamp}-nginx.json").write_text(json.dumps(data, indent=2))
    table = markdown(data)
    (RESULTS / "latest-nginx.md").write_text(table)
    print(table)
    return 0


def _last_queries(runs: list[dict[str, Any]]) -> float | None:
    value: float | None = runs[-1]["queries_per_request"]
    return value


def markdown(data: dict[str, Any]) -> str:
    lines = [
        f"`{data['scenario']}` ({data['connections']} connections), {data['mode']}"
        f"{', Redis' if data['redis'] else ''}, {data['cpus']} CPUs shared by everything,"
        f" median of {data['rounds']} interleaved rounds of {data['duration_s']:g} s"
        f" (commit {data['git']}):",
        "",
        "| setup | req/s | p50 ms | p95 ms | p99 ms | CPU µs/req (API + nginx) | wrk CPU"
        " | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, s in data["summary"].items():
        lines.append(
            f"| {name} | {s['rps']:,.0f} | {s['p50_ms']:.1f} | {s['p95_ms']:.1f} |"
            f" {s['p99_ms']:.1f} | {s['cpu_us_per_request']:.0f} | {s['wrk_cpu']:.0%} |"
            f" {s['errors']} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
