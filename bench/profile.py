"""Profile the server under one scenario with py-spy (sampling, from outside the process), so
"why is it slow" is answered by a profile rather than a guess."""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from bench import loadgen


def profile_scenario(
    server: Any, scenario: Any, lua: str, options: Any, generator_cpu: int | None
) -> dict[str, Any]:
    out_dir: Path = options.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    raw = out_dir / f"profile-{scenario.name}.txt"
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    duration = max(int(options.duration_s), 3)
    print(f"  profiling {scenario.name} with py-spy for {duration}s…", file=sys.stderr)

    def load() -> None:
        loadgen.run_wrk(
            server.url,
            lua,
            duration_s=duration + 1,
            connections=scenario.connections,
            cpu=generator_cpu,
        )

    worker = threading.Thread(target=load)
    worker.start()
    subprocess.run(
        [
            py_spy,
            "record",
            "--pid",
            str(server.proc.pid),
            "--duration",
            str(duration),
            "--rate",
            "250",
            "--format",
            "raw",
            "--output",
            str(raw),
            "--nonblocking",
        ],
        check=True,
        capture_output=True,
    )
    worker.join()
    return {"scenario": scenario.name, "file": str(raw), **summarise(raw)}


def summarise(raw: Path) -> dict[str, Any]:
    """Self time per frame (the leaf of each collapsed stack), and inclusive time of our code."""
    leaf: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = stack.split(";")
        leaf[frames[-1]] += count
        for frame in set(frames):
            if "tenantry/" in frame and "site-packages" not in frame:
                ours[frame] += count
    top = [{"frame": f, "share": c / total} for f, c in leaf.most_common(25)] if total else []
    inclusive = [{"frame": f, "share": c / total} for f, c in ours.most_common(15)] if total else []
    return {"samples": total, "top": top, "ours_inclusive": inclusive}
