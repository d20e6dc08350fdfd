"""Do the list endpoints' queries use an index at scale? Each list of the CRM is requested
through the real app (in process), every statement it runs is kept with its parameters
(`kit.context.count_queries`), and each is run again under `EXPLAIN (ANALYZE, FORMAT JSON)`
on the same database. A sequential scan of a big table (customers, leads, their history,
calls, messages) fails the check.

    python -m bench.explain                      # 100,000 customers in acme, then explain
    python -m bench.explain --customers 20000    # a smaller set
    python -m bench.explain --database-url postgresql://…/tenantry_bench

The database is the bench's (DATABASE_URL, else the embedded server in var/bench-pgdata),
seeded like the bench (`bench/seed.py`); a table of plans goes to stdout and to
`bench/results/explain-<mode>.md`; the exit status is 1 when a list scans a big table.
`tests/bench/test_explain.py` runs the same check on a small set with sequential scans
priced out, which shows that an index exists for every list (at a small size the planner
rightly prefers to read a table whole, so only the seeded run judges the plans themselves).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tenantry.kit.context import count_queries

BIG_TABLES = {"customers", "leads", "lead_status_history", "call_log", "messages"}
OWNER = "owner@acme.example"
RESULTS = Path(__file__).resolve().parent / "results"

# (name, path): `{customer}`, `{lead}`, `{team}`, `{user}` and `{cursor:<list path>}` are
# filled in from the data (`_fill`).
LISTS = (
    ("customers", "/api/v1/customers?limit=20"),
    ("customers, next page", "/api/v1/customers?limit=20&cursor={cursor:/api/v1/customers}"),
    ("customers, search", "/api/v1/customers?q=hopp&limit=20"),
    ("leads", "/api/v1/leads?limit=20"),
    ("leads by status", "/api/v1/leads?status=won&limit=20"),
    (
        "leads by status, next page",
        "/api/v1/leads?status=won&limit=20&cursor={cursor:/api/v1/leads?status=won}",
    ),
    ("leads by team", "/api/v1/leads?team={team}&limit=20"),
    ("leads by assignee", "/api/v1/leads?assignee={user}&limit=20"),
    ("leads, search", "/api/v1/leads?q=hopp&limit=20"),
    ("lead timeline", "/api/v1/leads/{lead}/timeline"),
    ("calls", "/api/v1/calls?limit=20"),
    ("calls by status", "/api/v1/calls?status=missed&limit=20"),
    ("a customer's messages", "/api/v1/customers/{customer}/messages?limit=20"),
    ("a customer's messages by channel", "/api/v1/customers/{customer}/messages?channel=sms"),
    ("intelligence", "/api/v1/intelligence/customers?limit=50"),
    (
        "intelligence, next page",
        "/api/v1/intelligence/customers?limit=50&cursor={cursor:/api/v1/intelligence/customers}",
    ),
)


@dataclass
class Explained:
    name: str
    path: str
    statements: int = 0
    indexes: set[str] = field(default_factory=set)
    scans: set[str] = field(default_factory=set)  # big tables read whole
    ms: float = 0.0  # execution time of the statements, by EXPLAIN ANALYZE

    @property
    def ok(self) -> bool:
        return not self.scans


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def _explain(conn: asyncpg.Connection, sql: str, args: Any, into: Explained) -> None:
    if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")):
        return  # the lists only read; a write (none today) is not theirs to explain
    raw = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
    (result,) = json.loads(raw) if isinstance(raw, str) else raw
    into.statements += 1
    into.ms += float(result["Execution Time"])
    for node in _nodes(result["Plan"]):
        if "Index Name" in node:
            into.indexes.add(node["Index Name"])
        if node["Node Type"] == "Seq Scan" and node.get("Relation Name") in BIG_TABLES:
            into.scans.add(node["Relation Name"])


async def _fill(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> str:
    async def first(url: str, key: str = "id") -> str:
        r = await client.get(url, headers=headers)
        r.raise_for_status()
        items = r.json()
        items = items["items"] if isinstance(items, dict) else items
        if not items:
            raise SystemExit(f"nothing at {url} to explain a list with: was acme seeded?")
        return str(items[0][key])

    if "{cursor:" in path:
        start = path.index("{cursor:")
        end = path.index("}", start)
        listed = path[start + len("{cursor:") : end]
        sep = "&" if "?" in listed else "?"
        r = await client.get(f"{listed}{sep}limit=20", headers=headers)
        cursor = r.json()["next_cursor"] or ""
        path = path[:start] + cursor + path[end + 1 :]
    if "{customer}" in path:
        path = path.replace("{customer}", await first("/api/v1/customers?limit=1"))
    if "{lead}" in path:
        path = path.replace("{lead}", await first("/api/v1/leads?limit=1"))
    if "{team}" in path:
        path = path.replace("{team}", await first("/api/v1/teams"))
    if "{user}" in path:  # a member of a team: demo leads are assigned to them
        teams = (await client.get("/api/v1/teams", headers=headers)).json()["items"]
        users = [m["user_id"] for t in teams for m in t["members"]]
        if not users:
            raise SystemExit("no team has members to explain the assignee filter with")
        path = path.replace("{user}", users[0])
    return path.replace("cursor=&", "").removesuffix("&cursor=")


async def explain_lists(
    app: Any, dsn: str, *, password: str, price_out_seqscan: bool
) -> list[Explained]:
    """Each list requested of `app` (its lifespan running) as acme's owner, with its caches
    emptied first, and every statement it ran explained on `dsn`."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://explain") as client:
        r = await client.post("/api/v1/auth/login", json={"email": OWNER, "password": password})
        r.raise_for_status()
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        return await _each(app, client, dsn, headers, price_out_seqscan)


async def _each(
    app: Any,
    client: httpx.AsyncClient,
    dsn: str,
    headers: dict[str, str],
    price_out_seqscan: bool,
) -> list[Explained]:
    conn = await asyncpg.connect(dsn)
    try:
        if price_out_seqscan:
            await conn.execute("SET enable_seqscan = off")
        found = []
        for name, template in LISTS:
            path = await _fill(client, template, headers)
            app.state.caches.clear_local()  # the list's own statements, not a cached page
            with count_queries(keep_statements=True) as ran:
                r = await client.get(path, headers=headers)
            r.raise_for_status()
            explained = Explained(name, path)
            for sql, args in zip(ran.statements, ran.parameters, strict=True):
                await _explain(conn, sql, args, explained)
            found.append(explained)
        return found
    finally:
        await conn.close()


def table(found: list[Explained], title: str) -> str:
    lines = [
        f"### {title}",
        "",
        "| list | statements | ms | indexes | big tables read whole |",
        "|---|---:|---:|---|---|",
    ]
    for e in found:
        lines.append(
            f"| {e.name} | {e.statements} | {e.ms:.2f} | {', '.join(sorted(e.indexes)) or '-'}"
            f" | {', '.join(sorted(e.scans)) or 'none'} |"
        )
    return "\n".join(lines) + "\n"


async def _main(args: argparse.Namespace) -> int:
    from bench.runner import Options, _database, _seed
    from tenantry.app import create_app
    from tenantry.config import Settings
    from tenantry.kit.db import Database
    from tenantry.kit.migrations import upgrade

    options = Options(database_url=args.database_url, crm_customers=args.customers)
    url, mode, _ = _database(options)
    print(f"explain: {mode}, {args.customers:,} customers in acme", file=sys.stderr)
    await asyncio.to_thread(upgrade, url)
    await _seed(url, options)
    settings = Settings(database_url=url)
    database = Database(url, settings)
    app = create_app(settings, database=database)
    async with app.router.lifespan_context(app):
        found = await explain_lists(
            app, _dsn(url), password=options.password, price_out_seqscan=False
        )
    report = table(found, f"EXPLAIN of the lists, {args.customers:,} customers ({mode})")
    print(report)
    RESULTS.mkdir(parents=True, exist_ok=True)
    kind = "server" if "server" in mode else "embedded"
    (RESULTS / f"explain-{kind}.md").write_text(report)
    return 0 if all(e.ok for e in found) else 1


def _dsn(url: str) -> str:
    """asyncpg's form of a SQLAlchemy URL."""
    return url.replace("postgresql+asyncpg://", "postgresql://").replace(
        "postgresql+psycopg://", "postgresql://"
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.explain", description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--customers", type=int, default=100_000)
    raise SystemExit(asyncio.run(_main(parser.parse_args())))


if __name__ == "__main__":
    main()
