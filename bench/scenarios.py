"""The benchmark's scenarios. Adding one is a few lines: a name, the request(s), a target.

`auth` names a seeded login whose bearer token the requests carry. A path may name a
placeholder (`{customer}`: ids of acme's customers; `{insights_page}`: the query strings of
intelligence pages past the first), filled in after the seed by `runner._placeholders`; the
request is then sent once for each value in turn, so the server sees many rows, not one.

Targets come from DESIGN.md: `min_ratio` is throughput as a fraction of the bare-FastAPI
floor measured in the same round; `max_queries` is database statements per request;
`max_p95_ms` a latency bound.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Request:
    path: str
    method: str = "GET"
    body: dict[str, object] | None = None
    weight: int = 1


@dataclass(frozen=True)
class Target:
    min_ratio: float | None = None
    max_queries: float | None = None
    max_p95_ms: float | None = None
    min_rps: float | None = None

    def describe(self) -> str:
        parts = []
        if self.min_ratio is not None:
            parts.append(f"≥{self.min_ratio:.2f}× floor")
        if self.max_queries is not None:
            parts.append(f"≤{self.max_queries:g} q/req")
        if self.max_p95_ms is not None:
            parts.append(f"p95<{self.max_p95_ms:g} ms")
        if self.min_rps is not None:
            parts.append(f">{self.min_rps:g} req/s")
        return ", ".join(parts) or "-"


@dataclass(frozen=True)
class Scenario:
    name: str
    requests: tuple[Request, ...]
    target: Target = field(default_factory=Target)
    auth: str | None = None
    connections: int = 50
    floor: bool = False
    note: str = ""

    def placeholders(self) -> set[str]:
        return {name for req in self.requests for name in _PLACEHOLDER.findall(req.path)}

    def lua(
        self, token: str | None, password: str, values: dict[str, list[str]] | None = None
    ) -> str:
        """A wrk script: rotate through the weighted requests (each placeholder filled with
        each of its `values`), report JSON when done."""
        entries = []
        for req in _expanded(self.requests, values or {}):
            headers = {"Accept": "application/json"}
            if token:
                headers["Authorization"] = f"Bearer {token}"
            body = "nil"
            if req.body is not None:
                headers["Content-Type"] = "application/json"
                body = _lua_string(json.dumps(req.body).replace("{password}", password))
            hdrs = ", ".join(f"[{_lua_string(k)}] = {_lua_string(v)}" for k, v in headers.items())
            for _ in range(req.weight):
                entries.append(
                    f"wrk.format({_lua_string(req.method)}, {_lua_string(req.path)}, "
                    f"{{{hdrs}}}, {body})"
                )
        requests = ",\n  ".join(entries)
        return LUA_TEMPLATE.replace("__REQUESTS__", requests)


_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


def _expanded(requests: tuple[Request, ...], values: dict[str, list[str]]) -> list[Request]:
    out = []
    for req in requests:
        names = _PLACEHOLDER.findall(req.path)
        if not names:
            out.append(req)
            continue
        (name,) = set(names)  # one placeholder per path is all the scenarios need
        if not values.get(name):
            raise SystemExit(f"no values for {{{name}}}: was the CRM demo data seeded?")
        out.extend(replace(req, path=req.path.replace(f"{{{name}}}", v)) for v in values[name])
    return out


def _lua_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


LUA_TEMPLATE = """
local requests = {}
local counter = 0
init = function(args)
  requests = {
  __REQUESTS__
  }
end
request = function()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p95":%d,"p99":%d,"max":%d,"mean":%.1f}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99), latency.max, latency.mean))
end
"""

OWNER = "owner@acme.example"
# What seed 000's load test posts.
SEED_PROFILE: dict[str, object] = {
    "company_name": "Test Corp",
    "industry": "technology",
    "company_size": "startup",
    "primary_challenges": ["marketing_optimization"],
    "current_tools": [],
    "goals": ["increase_roi"],
}
# Not a wrk scenario: whole syncs run by a worker (bench/sync_throughput.py).
SYNC_SCENARIO = "sync-throughput"
FLOOR_FASTAPI = "floor-fastapi"

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "floor-starlette",
        (Request("/__floor/starlette"),),
        floor=True,
        note="bare Starlette route: the framework's ceiling",
    ),
    Scenario(
        FLOOR_FASTAPI,
        (Request("/__floor/fastapi"),),
        floor=True,
        note="bare FastAPI route: no middleware, database or auth",
    ),
    Scenario(
        "healthz",
        (Request("/healthz"),),
        Target(min_ratio=0.90, max_queries=0),
        note="the full middleware stack around a trivial route",
    ),
    Scenario(
        "login",
        (Request("/api/v1/auth/login", "POST", {"email": OWNER, "password": "{password}"}),),
        Target(max_queries=3),
        connections=8,
        note="argon2 verify per request (CPU-bound by design); the login, its record, its audit",
    ),
    Scenario(
        "users-me-warm",
        (Request("/api/v1/users/me"),),
        Target(min_ratio=0.80, max_queries=0),
        auth=OWNER,
        note="warm auth: token and principal cached",
    ),
    Scenario(
        "users-me-cold",
        (Request("/__cold/api/v1/users/me"),),
        Target(max_queries=1),
        auth=OWNER,
        note="caches cleared before every request",
    ),
    Scenario(
        "users-list",
        (Request("/api/v1/users?per_page=20"),),
        Target(min_ratio=0.30, max_queries=1),
        auth=OWNER,
        note="page of 20 of 200 users, total by window count",
    ),
    Scenario(
        "syncs-list",
        (Request("/api/v1/syncs?page=1&per_page=20"),),
        Target(min_ratio=0.30, max_queries=2),
        auth=OWNER,
        note="seed 003's sync history: page 1 of 200 runs, newest first",
    ),
    Scenario(
        "tenant-settings",
        (Request("/api/v1/tenant/settings"),),
        Target(min_ratio=0.75, max_queries=0),
        auth=OWNER,
        note="cached per DESIGN (10 min)",
    ),
    Scenario(
        "suite-catalog",
        (Request("/api/v1/onboarding/suite-catalog"),),
        Target(min_ratio=0.80, max_queries=0),
        note="seed 000's catalog: the same bytes for every visitor, from memory",
    ),
    Scenario(
        "company-profile",
        (Request("/api/v1/onboarding/company-profile", "POST", SEED_PROFILE),),
        Target(max_p95_ms=20, max_queries=2),
        connections=10,
        note="seed 000's session creation: recommendations, state store, funnel event",
    ),
    Scenario(
        "intelligence",
        (Request("/api/v1/intelligence/customers?limit=50"),),
        Target(max_queries=1, max_p95_ms=50),
        auth=OWNER,
        connections=100,
        note="the first page of 50 of 100,000 customers with lead and call figures, 100 clients",
    ),
    Scenario(
        "intelligence-pages",
        (Request("/api/v1/intelligence/customers?{insights_page}"),),
        Target(max_queries=1),
        auth=OWNER,
        connections=100,
        note="pages 2-41 of the same, in turn, 100 clients",
    ),
    Scenario(
        "customer-by-id",
        (Request("/api/v1/customers/{customer}"),),
        Target(max_queries=1),
        auth=OWNER,
        note="one of 1,000 of acme's 100,000 customers, in turn",
    ),
    Scenario(
        "leads-filtered",
        (Request("/api/v1/leads?status=won&limit=20"),),
        Target(max_queries=1),
        auth=OWNER,
        note="won leads of acme's ~200,000, newest first, with their customers",
    ),
    Scenario(
        "mixed-100",
        (
            Request("/api/v1/users/me", weight=4),
            Request("/api/v1/tenant/settings", weight=2),
            Request("/api/v1/tenant", weight=2),
            Request("/api/v1/users?per_page=20", weight=2),
        ),
        Target(max_p95_ms=50, min_rps=1000),
        auth=OWNER,
        connections=100,
        note="100 concurrent clients over the endpoints that exist",
    ),
)


def by_name(names: list[str] | None) -> list[Scenario]:
    if not names:
        return list(SCENARIOS)
    known = {s.name: s for s in SCENARIOS}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"unknown scenario(s) {unknown}; known: {sorted(known)}")
    wanted = [known[n] for n in names]
    if FLOOR_FASTAPI not in names:  # every ratio needs the floor of its own round
        wanted.insert(0, known[FLOOR_FASTAPI])
    return wanted
