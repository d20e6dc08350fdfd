"""Benchmark output: JSON under bench/results/, a Markdown table, and a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.scenarios import Target


def verdict(target: Target, s: dict[str, Any]) -> str:
    if s["failed"]:
        return "FAILED (errors)"
    missed = []
    if target.min_ratio is not None and (s["ratio"] or 0) < target.min_ratio:
        missed.append("ratio")
    if (
        target.max_queries is not None
        and s["queries_per_request"] is not None
        # at the precision the table shows: a warm scenario pays one load per round after
        # the cold scenario emptied the caches (about one query in 10,000 requests)
        and round(s["queries_per_request"], 2) > target.max_queries
    ):
        missed.append("queries")
    if target.max_p95_ms is not None and (s["p95_ms"] or 0) >= target.max_p95_ms:
        missed.append("p95")
    if target.min_rps is not None and s["rps"] <= target.min_rps:
        missed.append("req/s")
    if target == Target():
        return "-"
    return "met" if not missed else "missed: " + ", ".join(missed)


def _f(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _per_request(users: list[dict[str, Any]]) -> list[str]:
    """Each request of the user scenarios, from their last round: which one makes the p95."""
    parts = []
    for loc in users:
        last = (loc.get("runs") or [{}])[-1].get("endpoints")
        for request, e in (last or {}).items():
            parts.append(f"{loc['name']} `{request}` p95 {e.get('95%', 0):.0f} ms")
    return ["", "Per request (last round): " + "; ".join(parts) + "."] if parts else []


def markdown(data: dict[str, Any]) -> str:
    lines = [
        f"Run {data['when']} at {data.get('git') or '?'}: {data['mode']}"
        f"{', Redis' if data['redis'] else ''}; {data['pinning']}; "
        f"{data['settings']['repeat']}× {data['settings']['duration_s']:g} s per scenario, "
        "interleaved; medians with [min–max].",
        "",
        "| scenario | req/s | × FastAPI floor | p50 ms | p95 ms | p99 ms | errors | queries/req "
        "| server CPU | CPU µs/req | wrk CPU | target | verdict |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for s in data["scenarios"]:
        ratio = (
            "-"
            if s["ratio"] is None
            else f"{s['ratio']:.2f} [{s['ratio_min']:.2f}–{s['ratio_max']:.2f}]"
        )
        wrk_cpu = _f(s["generator_cpu"] * 100, "{:.0f}%") + (
            " (saturated)" if s["generator_saturated"] else ""
        )
        latency = " | ".join(_f(s[k], "{:.2f}") for k in ("p50_ms", "p95_ms", "p99_ms"))
        server_cpu = _f(s["server_cpu"] * 100, "{:.0f}%")
        lines.append(
            f"| {s['name']} | {s['rps']:,.0f} [{s['rps_min']:,.0f}–{s['rps_max']:,.0f}] | {ratio} "
            f"| {latency} | {s['error_rate']:.2%} | {_f(s['queries_per_request'], '{:.2f}')} "
            f"| {server_cpu} | {_f(s.get('server_cpu_us_per_request'), '{:.0f}')} | {wrk_cpu} "
            f"| {s['target']} | {s['verdict']} |"
        )
    users = data.get("locust")
    if isinstance(users, dict):  # results from before there were several user scenarios
        users = [users]
    if users:
        lines += [
            "",
            "| user scenario | req/s | p50 ms | p95 ms [min–max] | p99 ms | errors | locust CPU "
            "| target | verdict |",
            "|---|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        lines += [
            f"| {loc['name']} | {loc['rps']:,.1f} | {loc['p50_ms']:.0f} | {loc['p95_ms']:.0f} "
            f"[{loc['p95_min']:.0f}–{loc['p95_max']:.0f}] | {loc['p99_ms']:.0f} "
            f"| {loc['error_rate']:.2%} | {loc['generator_cpu']:.0%} | {loc['target']} "
            f"| {loc['verdict']} |"
            for loc in users
        ]
        lines += _per_request(users)
    sync = data.get("sync")
    if sync:
        lines += [
            "",
            "| sync scenario | syncs | syncs/min | p50 s | p95 s | succeeded | source calls "
            "(faults) | target | verdict |",
            "|---|---:|---:|---:|---:|---:|---:|---|---|",
            f"| {sync['name']} | {sync['syncs']} | {sync['syncs_per_minute']:.0f} "
            f"| {sync['p50_s']:.2f} | {sync['p95_s']:.2f} | {sync['success_rate']:.2%} "
            f"| {sync['source_calls']:,} ({sync['source_faults']}) | {sync['target']} "
            f"| {sync['verdict']} |",
            "",
            f"({sync['note']}.)",
        ]
    if data.get("profile"):
        p = data["profile"]
        lines += ["", f"Profile of `{p['scenario']}` ({p['samples']} samples, {p['file']}):", ""]
        lines += [f"- {row['share']:.1%} {row['frame']}" for row in p["top"][:12]]
    return "\n".join(lines)


def chart(data: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [s for s in data["scenarios"] if s["ratio"] is not None]
    names = [s["name"] for s in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 0.5 * len(rows) + 1.5), sharey=True)
    colors = [
        "#c0392b" if s["verdict"].startswith(("missed", "FAILED")) else "#2e86c1" for s in rows
    ]
    left.barh(names, [s["ratio"] for s in rows], color=colors)
    left.set_xlabel("throughput ÷ bare FastAPI floor (same round)")
    left.axvline(1.0, color="grey", linewidth=0.8)
    right.barh(names, [s["p95_ms"] or 0 for s in rows], color=colors)
    right.set_xlabel("p95 latency, ms")
    left.invert_yaxis()
    fig.suptitle(f"Tenantry bench {data['when']} ({data['mode']})", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(data: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = data["when"].replace(":", "").replace("-", "")[:15]
    tag = "redis" if data["redis"] else ("server" if "DATABASE_URL" in data["mode"] else "embedded")
    paths = {
        "json": out_dir / f"{stamp}-{tag}.json",
        "latest_json": out_dir / f"latest-{tag}.json",
        "markdown": out_dir / f"latest-{tag}.md",
        "png": out_dir / f"latest-{tag}.png",
    }
    text = json.dumps(data, indent=2, default=str)
    paths["json"].write_text(text)
    paths["latest_json"].write_text(text)
    table = markdown(data)
    paths["markdown"].write_text(table + "\n")
    chart(data, paths["png"])
    print(table)
    print(f"\nwrote {', '.join(str(p) for p in paths.values())}")
    return paths
