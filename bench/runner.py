"""`tenantry bench`: start the server, seed, warm up, run every scenario in interleaved rounds,
and report. See bench/README.md."""

from __future__ import annotations

import asyncio
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from bench import loadgen, report
from bench.scenarios import FLOOR_FASTAPI, OWNER, SYNC_SCENARIO, Scenario, by_name

ROOT = Path(__file__).resolve().parents[1]
SERVER_CPU, GENERATOR_CPU = 0, 1


@dataclass
class Options:
    scenarios: list[str] | None = None
    duration_s: float = 10
    warmup_s: float = 2
    repeat: int = 3
    locust_users: int = 100
    locust_duration_s: float = 20
    locust: bool = True
    sync: bool = True  # the sync-throughput scenario (bench/sync_throughput.py)
    sync_duration_s: float = 60
    database_url: str | None = None
    redis_url: str | None = None
    out_dir: Path = ROOT / "bench" / "results"
    profile: str | None = None
    extra_users: int = 200
    crm_customers: int = 100_000  # in acme, with their leads, calls and messages
    password: str = field(default_factory=lambda: os.environ.get("DEMO_PASSWORD", "tenantry-demo"))


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pinning() -> tuple[int | None, int | None, str]:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        server, generator = cpus[0], cpus[1]
        return (
            server,
            generator,
            (
                f"server pinned to CPU {server}, load generator to CPU {generator} "
                f"({len(cpus)} CPUs available)"
            ),
        )
    return None, None, "only one CPU: server and load generator share it (ratios still hold)"


def _database(options: Options) -> tuple[str, str, dict[str, str]]:
    """(URL, mode description, env for the server process)."""
    url = options.database_url or os.environ.get("DATABASE_URL")
    if url:
        return url, "server PostgreSQL (DATABASE_URL)", {"DATABASE_URL": url}
    from tenantry.kit import embedded

    url = embedded.start(ROOT / "var" / "bench-pgdata")
    return url, "embedded PostgreSQL (var/bench-pgdata)", {"TENANTRY_EMBEDDED_DATABASE_URL": url}


async def _seed(url: str, options: Options) -> None:
    from bench.seed import seed

    await seed(
        url,
        password=options.password,
        extra_users=options.extra_users,
        crm_customers=options.crm_customers,
    )


class Server:
    """One uvicorn process serving an app factory (the benchmark's, by default), pinned to `cpu`;
    ready when `ready_path` answers 200."""

    def __init__(
        self,
        env: dict[str, str],
        cpu: int | None,
        *,
        factory: str = "bench.server:create",
        app_dir: str = ".",
        ready_path: str = "/readyz",
        name: str = "bench-server",
    ) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.ready_path = ready_path
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            factory,
            "--app-dir",
            app_dir,
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--no-server-header",  # as `tenantry serve` runs it
            "--log-level",
            "warning",
            "--backlog",
            "4096",
        ]
        full_env = {
            **os.environ,
            # The limiter stays in the stack (its cost is part of what we measure) with limits
            # no benchmark reaches: a 429 would count as an error.
            "RATE_LIMIT_DEFAULT": "1000000000/minute",
            "RATE_LIMIT_AUTH": "1000000000/minute",
            "RATE_LIMIT_LOGIN_ACCOUNT": "1000000000/minute",
            # Stopped between scenarios with no balancer in front: nothing to drain.
            "SHUTDOWN_DRAIN_S": "0",
            **env,
            "PYTHONUNBUFFERED": "1",
        }
        (ROOT / "var").mkdir(exist_ok=True)
        self.log = open(ROOT / "var" / f"{name}.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=full_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None,
        )
        self.ps = psutil.Process(self.proc.pid)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited; see {self.log.name}")
            try:
                if httpx.get(self.url + self.ready_path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not become ready in {timeout:.0f}s")

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def _queries_per_request(client: httpx.Client) -> float | None:
    seen = client.get("/__bench/queries").json()
    statements = sum(v[0] for v in seen.values())
    requests = sum(v[1] for v in seen.values())
    return statements / requests if requests else None


def _run_once(
    server: Server,
    client: httpx.Client,
    scenario: Scenario,
    lua: str,
    duration: float,
    generator_cpu: int | None,
) -> dict[str, Any]:
    client.delete("/__bench/queries")
    cpu_before, wall_before = server.cpu_seconds(), time.perf_counter()
    measured = loadgen.run_wrk(
        server.url, lua, duration_s=duration, connections=scenario.connections, cpu=generator_cpu
    )
    cpu_used = server.cpu_seconds() - cpu_before
    server_cpu = cpu_used / (time.perf_counter() - wall_before)
    return {
        "rps": measured.rps,
        "requests": measured.requests,
        "p50_ms": measured.p50_ms,
        "p95_ms": measured.p95_ms,
        "p99_ms": measured.p99_ms,
        "errors": measured.errors,
        "non_2xx": measured.non_2xx,
        "error_rate": measured.error_rate,
        "queries_per_request": None if scenario.floor else _queries_per_request(client),
        "server_cpu": server_cpu,
        # CPU per request holds up on a busy machine better than req/s does.
        "server_cpu_us_per_request": cpu_used * 1e6 / max(measured.requests, 1),
        "generator_cpu": measured.generator_cpu,
        "generator_saturated": measured.generator_cpu > 0.9,
        "failed": measured.errors + measured.non_2xx > 0,
    }


def _endpoints(rows: list[dict[str, str]]) -> dict[str, dict[str, float]]:
    """Each request of a locust run (method and path) with its count and percentiles: which
    one makes the p95."""
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        if row["Name"] == "Aggregated":
            continue
        out[f"{row['Type']} {row['Name']}"] = {
            "requests": float(row["Request Count"]),
            **{k: float(row[k]) for k in ("50%", "95%", "99%") if row.get(k) not in (None, "N/A")},
        }
    return out


def _summarise(
    scenario: Scenario, runs: list[dict[str, Any]], floors: list[float]
) -> dict[str, Any]:
    def med(key: str) -> float | None:
        values = [r[key] for r in runs if r.get(key) is not None]
        return statistics.median(values) if values else None

    ratios = [r["rps"] / f for r, f in zip(runs, floors, strict=True) if f]
    rps = [r["rps"] for r in runs]
    summary = {
        "name": scenario.name,
        "note": scenario.note,
        "connections": scenario.connections,
        "runs": runs,
        "rps": statistics.median(rps),
        "rps_min": min(rps),
        "rps_max": max(rps),
        "ratio": statistics.median(ratios) if ratios else None,
        "ratio_min": min(ratios) if ratios else None,
        "ratio_max": max(ratios) if ratios else None,
        "p50_ms": med("p50_ms"),
        "p95_ms": med("p95_ms"),
        "p99_ms": med("p99_ms"),
        "error_rate": max(r["error_rate"] for r in runs),
        "queries_per_request": med("queries_per_request"),
        "server_cpu": med("server_cpu"),
        "server_cpu_us_per_request": med("server_cpu_us_per_request"),
        "generator_cpu": med("generator_cpu"),
        "generator_saturated": any(r["generator_saturated"] for r in runs),
        "failed": any(r["failed"] for r in runs),
        "target": scenario.target.describe(),
    }
    summary["verdict"] = report.verdict(scenario.target, summary)
    return summary


# The locust user classes (bench/locustfile.py) and what each stands for.
USER_SCENARIOS = (
    ("TeamUser", "teamuser", "locust TeamUser (wait 1-3 s), as the seeds' load tests"),
    ("SyncUser", "syncuser", "seed 003's sync API: 3 history pages to 1 sync started (wait 1-3 s)"),
    ("OnboardingUser", "onboardinguser", "seed 000's onboarding: profile and catalog (wait 1-3 s)"),
)


def _locust(
    server: Server, token: str, options: Options, cpu: int | None, user: tuple[str, str, str]
) -> dict[str, Any]:
    user_class, slug, note = user
    env = {"BENCH_TOKEN": token}
    if user_class == "SyncUser":
        # Found once here, as the token is: the seed's class measures its 3:1 mix only, not
        # each user looking its source up as it starts (100 lookups in the spawn burst).
        with httpx.Client(base_url=server.url, timeout=30) as client:
            r = client.get("/api/v1/sync-sources", headers={"Authorization": f"Bearer {token}"})
            r.raise_for_status()
            env["BENCH_SOURCE_ID"] = r.json()["items"][0]["id"]
    runs = []
    for i in range(options.repeat):
        _say(f"  locust {user_class}, {options.locust_users} users, round {i + 1}/{options.repeat}")
        m = loadgen.run_locust(
            server.url,
            user_class,
            users=options.locust_users,
            duration_s=options.locust_duration_s,
            cpu=cpu,
            env=env,
        )
        runs.append(
            {
                "rps": m.rps,
                "requests": m.requests,
                "p50_ms": m.p50_ms,
                "p95_ms": m.p95_ms,
                "p99_ms": m.p99_ms,
                "errors": m.errors,
                "error_rate": m.error_rate,
                "generator_cpu": m.generator_cpu,
                "failed": m.errors > 0,
                "endpoints": _endpoints(m.raw["rows"]),
            }
        )
    p95s = [r["p95_ms"] for r in runs]
    return {
        "name": f"locust-{slug}-{options.locust_users}",
        "note": note,
        "runs": runs,
        "rps": statistics.median(r["rps"] for r in runs),
        "p50_ms": statistics.median(r["p50_ms"] for r in runs),
        "p95_ms": statistics.median(p95s),
        "p99_ms": statistics.median(r["p99_ms"] for r in runs),
        "p95_min": min(p95s),
        "p95_max": max(p95s),
        "error_rate": max(r["error_rate"] for r in runs),
        "generator_cpu": statistics.median(r["generator_cpu"] for r in runs),
        "failed": any(r["failed"] for r in runs),
        "target": "p95<50 ms, no errors",
        "verdict": "met"
        if statistics.median(p95s) < 50 and not any(r["failed"] for r in runs)
        else "missed",
    }


def _login(client: httpx.Client, email: str, password: str) -> str:
    r = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    r.raise_for_status()
    return str(r.json()["access_token"])


def _placeholders(
    client: httpx.Client, token: str, scenarios: list[Scenario]
) -> dict[str, list[str]]:
    """Values for the placeholders the scenarios' paths name, read from the seeded data: 1,000
    of acme's customers spread over the list, the query strings of
    intelligence pages 2-41."""
    wanted = set().union(*(s.placeholders() for s in scenarios))
    headers = {"Authorization": f"Bearer {token}"}
    values: dict[str, list[str]] = {}

    def walk(path: str, pages: int) -> list[dict[str, Any]]:
        seen, cursor = [], None
        for _ in range(pages):
            url = path + (f"&cursor={cursor}" if cursor else "")
            page = client.get(url, headers=headers).raise_for_status().json()
            seen.append(page)
            cursor = page["next_cursor"]
            if not cursor:
                break
        return seen

    if "customer" in wanted:
        pages = walk("/api/v1/customers?limit=100", 100)
        values["customer"] = [c["id"] for p in pages for c in p["items"][::10]]
    if "insights_page" in wanted:
        pages = walk("/api/v1/intelligence/customers?limit=50", 41)
        cursors = [p["next_cursor"] for p in pages[:40] if p["next_cursor"]]
        # a small seed (the harness's own test) has one page: then that page
        values["insights_page"] = [f"limit=50&cursor={c}" for c in cursors] or ["limit=50"]
    return values


def run(options: Options) -> dict[str, Any]:
    wanted = options.scenarios
    sync_wanted = options.sync and (not wanted or SYNC_SCENARIO in wanted)
    if wanted and SYNC_SCENARIO in wanted:
        wanted = [n for n in wanted if n != SYNC_SCENARIO] or [FLOOR_FASTAPI]
    scenarios = by_name(wanted)
    server_cpu, generator_cpu, pin_note = _pinning()
    loadgen.ensure_wrk()
    (ROOT / "var").mkdir(exist_ok=True)
    url, mode, env = _database(options)
    redis_url = options.redis_url or os.environ.get("REDIS_URL")
    if redis_url:
        env["REDIS_URL"] = redis_url
    _say(f"Tenantry bench: {mode}{', Redis ' + redis_url if redis_url else ''}; {pin_note}")
    from tenantry.kit.migrations import upgrade

    upgrade(url)
    asyncio.run(_seed(url, options))
    server = Server(env, server_cpu)
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as client:
            token = _login(client, OWNER, options.password)
            values = _placeholders(client, token, scenarios)
            scripts = {
                s.name: s.lua(token if s.auth else None, options.password, values)
                for s in scenarios
            }
            _say(f"Warming up ({options.warmup_s:g}s per scenario)…")
            for s in scenarios:
                loadgen.run_wrk(
                    server.url,
                    scripts[s.name],
                    duration_s=options.warmup_s,
                    connections=s.connections,
                    cpu=generator_cpu,
                )
            runs: dict[str, list[dict[str, Any]]] = {s.name: [] for s in scenarios}
            floors: list[float] = []
            total = options.repeat * len(scenarios)
            done = 0
            for round_no in range(options.repeat):
                for s in scenarios:
                    done += 1
                    _say(f"  [{done}/{total}] round {round_no + 1}: {s.name}")
                    result = _run_once(
                        server, client, s, scripts[s.name], options.duration_s, generator_cpu
                    )
                    runs[s.name].append(result)
                    if s.name == FLOOR_FASTAPI:
                        floors.append(result["rps"])
            results = [_summarise(s, runs[s.name], floors) for s in scenarios]
            locust = (
                [_locust(server, token, options, generator_cpu, u) for u in USER_SCENARIOS]
                if options.locust
                else None
            )
            profile = None
            if options.profile:
                from bench.profile import profile_scenario

                target = next(s for s in scenarios if s.name == options.profile)
                profile = profile_scenario(
                    server, target, scripts[target.name], options, generator_cpu
                )
    finally:
        server.stop()
    sync = None
    if sync_wanted:
        from bench import sync_throughput

        _say(f"Sync throughput for {options.sync_duration_s:g} s…")
        sync = asyncio.run(sync_throughput.measure(url, env, options.sync_duration_s, server_cpu))
    data = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": _git_commit(),
        "mode": mode,
        "redis": bool(redis_url),
        "pinning": pin_note,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "duration_s": options.duration_s,
            "warmup_s": options.warmup_s,
            "repeat": options.repeat,
        },
        "floor_fastapi_rps": statistics.median(floors) if floors else None,
        "scenarios": results,
        "locust": locust,
        "sync": sync,
        "profile": profile,
    }
    report.write(data, options.out_dir)
    return data


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
