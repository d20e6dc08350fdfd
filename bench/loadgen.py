"""Load generators: wrk for throughput, locust for the seeds' user scenarios.

Each runs pinned to its own core, away from the server's, and reports its own CPU time (from
the child's rusage) so a saturated generator is visible instead of silently capping results.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class LoadGenError(RuntimeError):
    pass


def ensure_tool(command: str) -> str:
    """A Debian tool whose package has its name (wrk, valgrind); installed with apt-get when
    missing (the harness runs as root in CI)."""
    found = shutil.which(command)
    if found:
        return found
    if shutil.which("apt-get") and os.geteuid() == 0:
        print(f"{command} is missing; installing Debian's package…", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", command],
            check=True,
            capture_output=True,
            env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        )
        found = shutil.which(command)
    if not found:
        raise LoadGenError(
            f"{command} is not installed and could not be installed: apt-get install {command}"
        )
    return found


def ensure_wrk() -> str:
    return ensure_tool("wrk")


def _pin(cpu: int | None) -> Any:
    if cpu is None:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, {cpu})

    return pin


@dataclass
class Measured:
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: int
    non_2xx: int
    generator_cpu: float  # fraction of one core
    raw: dict[str, Any]

    @property
    def error_rate(self) -> float:
        total = max(self.requests, 1)
        return (self.errors + self.non_2xx) / total


def _run_child(
    cmd: list[str],
    cpu: int | None,
    timeout: float,
    env: dict[str, str] | None = None,
    *,
    check: bool = True,
) -> tuple[str, str, float, float]:
    """Run `cmd`; returns stdout, stderr, wall seconds and CPU seconds of the child."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=err, preexec_fn=_pin(cpu), env={**os.environ, **(env or {})}
        )
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                raise LoadGenError(f"{cmd[0]} did not finish within {timeout:.0f}s")
            time.sleep(0.05)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if check and proc.returncode != 0:
        raise LoadGenError(f"{cmd[0]} exited {proc.returncode}: {stderr.strip()[-500:]}")
    return stdout, stderr, wall, usage.ru_utime + usage.ru_stime


def run_wrk(
    url: str, lua: str, *, duration_s: float, connections: int, cpu: int | None, timeout_s: int = 10
) -> Measured:
    wrk = ensure_wrk()
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    try:
        cmd = [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{max(duration_s, 1):.0f}s",
            f"--timeout={timeout_s}s",
            "-s",
            script.name,
            url,
        ]
        stdout, _, wall, cpu_s = _run_child(cmd, cpu, duration_s + 60)
    finally:
        os.unlink(script.name)
    line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise LoadGenError(f"wrk printed no report:\n{stdout[-1000:]}")
    raw = json.loads(line.removeprefix("BENCH_JSON "))
    duration = raw["duration_us"] / 1e6
    errors = raw["errors"]
    lat = raw["latency_us"]
    return Measured(
        requests=raw["requests"],
        duration_s=duration,
        rps=raw["requests"] / duration if duration else 0.0,
        p50_ms=lat["p50"] / 1000,
        p95_ms=lat["p95"] / 1000,
        p99_ms=lat["p99"] / 1000,
        errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        non_2xx=errors["status"],
        generator_cpu=cpu_s / wall if wall else 0.0,
        raw=raw,
    )


LOCUSTFILE = Path(__file__).with_name("locustfile.py")
# Users started a second, as seed 000's load test (`--spawn-rate 10`).
SPAWN_RATE = 10


def run_locust(
    host: str,
    user_class: str,
    *,
    users: int,
    duration_s: float,
    cpu: int | None,
    env: dict[str, str],
) -> Measured:
    locust = Path(sys.executable).with_name("locust")
    ramp_s = math.ceil(users / SPAWN_RATE)
    with tempfile.TemporaryDirectory() as tmp:
        prefix = str(Path(tmp) / "run")
        cmd = [
            str(locust),
            "-f",
            str(LOCUSTFILE),
            "--headless",
            "--only-summary",
            "-u",
            str(users),
            "-r",
            str(SPAWN_RATE),
            # measured at full strength: the ramp is added to the run and left out of the stats
            "--reset-stats",
            "-t",
            f"{max(duration_s, 1) + ramp_s:.0f}s",
            "--host",
            host,
            "--csv",
            prefix,
            "--stop-timeout",
            "2",
            user_class,
        ]
        # locust exits 1 when any request failed; the failures are in its CSV, which we read.
        _, stderr, wall, cpu_s = _run_child(cmd, cpu, duration_s + ramp_s + 90, env, check=False)
        if not Path(f"{prefix}_stats.csv").exists():
            raise LoadGenError(f"locust wrote no statistics: {stderr.strip()[-500:]}")
        with open(f"{prefix}_stats.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    requests = int(total["Request Count"])
    failures = int(total["Failure Count"])

    def pct(key: str) -> float:
        value = total.get(key) or "0"
        return float(value) if value != "N/A" else 0.0

    return Measured(
        requests=requests,
        duration_s=duration_s,
        rps=float(total["Requests/s"]),
        p50_ms=pct("50%"),
        p95_ms=pct("95%"),
        p99_ms=pct("99%"),
        errors=failures,
        non_2xx=0,
        generator_cpu=cpu_s / wall if wall else 0.0,
        raw={"rows": rows},
    )
