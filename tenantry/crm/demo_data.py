"""CRM demo data at scale: `tenantry seed --customers N [--tenant acme]` adds N realistic
customers to a company, each with leads (and their status histories), calls and messages,
spread over its territories: each customer's postal code is in one of its zones, and the
customer's leads go to that zone's team and one of the team's members. A company without
zones gets a demo set first (`TerritoriesService.demo_zones`).

Rows go in with PostgreSQL's COPY (asyncpg's `copy_records_to_table`), in batches of
`BATCH` customers, each batch one transaction: 100,000 customers with their leads, calls and
messages take well under a minute. Written by hand: the generator is ours, and COPY is the
one way to load this much this fast. Deterministic for a seed (`random.Random(seed)`), ids
are time-ordered as everywhere else.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tenantry.crm.repository import DemoLoader
from tenantry.kit.db import session_scope
from tenantry.kit.ids import new_id
from tenantry.kit.platform import Platform
from tenantry.kit.repository import TenantScope
from tenantry.territories.schemas import DemoZone
from tenantry.territories.service import TerritoriesService

BATCH = 5_000
FIRST = ("Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Tim")
LAST = ("Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie")
CHANNELS = ("whatsapp", "sms", "email")
CALL_STATUSES = ("completed", "completed", "completed", "missed", "voicemail", "failed")

_COLUMNS = {
    "customers": ("tenant_id", "id", "name", "email", "phone", "postal_code", "created_at"),
    "leads": (
        "tenant_id",
        "id",
        "customer_id",
        "status",
        "source",
        "value",
        "team_id",
        "assigned_user_id",
        "created_at",
        "updated_at",
    ),
    "lead_status_history": (
        "tenant_id",
        "id",
        "lead_id",
        "from_status",
        "to_status",
        "created_at",
    ),
    "call_log": (
        "tenant_id",
        "id",
        "customer_id",
        "lead_id",
        "direction",
        "status",
        "duration_s",
        "created_at",
    ),
    "messages": (
        "tenant_id",
        "id",
        "customer_id",
        "channel",
        "to_number",
        "direction",
        "body",
        "created_at",
    ),
}


@dataclass
class Batch:
    rows: dict[str, list[tuple[Any, ...]]] = field(
        default_factory=lambda: {table: [] for table in _COLUMNS}
    )


def _batch(
    rng: random.Random,
    tenant_id: uuid.UUID,
    n: int,
    statuses: list[str],
    zones: list[DemoZone],
    start: int,
) -> Batch:
    out = Batch()
    now = datetime.now(UTC)
    for i in range(start, start + n):
        first, last = rng.choice(FIRST), rng.choice(LAST)
        created = now - timedelta(minutes=rng.randrange(0, 525_600))
        customer_id = new_id()
        zone = rng.choice(zones) if zones else None
        prefix = rng.choice(zone.prefixes) if zone else ""
        postal = (
            (prefix + f"{rng.randrange(100_000):05d}")[:5]
            if prefix
            else f"{rng.randrange(100_000):05d}"
        )
        phone = f"+34 6{rng.randrange(10**8):08d}"
        out.rows["customers"].append(
            (
                tenant_id,
                customer_id,
                f"{first} {last} {i}",
                f"{first}.{last}.{i}@example.com".lower(),
                phone,
                postal,
                created,
            )
        )
        for _ in range(rng.randrange(1, 4)):
            lead_id = new_id()
            path = statuses[: rng.randrange(1, len(statuses) + 1)]
            at = created + timedelta(hours=rng.randrange(1, 48))
            value = Decimal(rng.randrange(100, 100_000)) / 100
            team = zone.team_id if zone else None
            assignee = rng.choice(zone.members) if zone and zone.members else None
            out.rows["leads"].append(
                (tenant_id, lead_id, customer_id, path[-1], "manual", value, team, assignee, at, at)
            )
            before = None
            for step in path:
                out.rows["lead_status_history"].append(
                    (tenant_id, new_id(), lead_id, before, step, at)
                )
                before, at = step, at + timedelta(hours=rng.randrange(1, 72))
        for _ in range(rng.randrange(0, 4)):
            out.rows["call_log"].append(
                (
                    tenant_id,
                    new_id(),
                    customer_id,
                    None,
                    rng.choice(("inbound", "outbound")),
                    rng.choice(CALL_STATUSES),
                    rng.randrange(0, 900),
                    created + timedelta(days=rng.randrange(0, 30)),
                )
            )
        for _ in range(rng.randrange(0, 4)):
            channel = rng.choice(CHANNELS)
            out.rows["messages"].append(
                (
                    tenant_id,
                    new_id(),
                    customer_id,
                    channel,
                    f"{first}.{last}@example.com".lower() if channel == "email" else phone,
                    rng.choice(("inbound", "outbound")),
                    f"Hello {first}, about your order {i}",
                    created + timedelta(days=rng.randrange(0, 30)),
                )
            )
    return out


def batches(total: int) -> Iterator[tuple[int, int]]:
    for start in range(0, total, BATCH):
        yield start, min(BATCH, total - start)


async def seed_customers(
    platform: Platform,
    tenant_slug: str,
    customers: int,
    *,
    seed: int = 7,
    advance: Callable[[int], None] = lambda n: None,
) -> dict[str, int]:
    """Add `customers` customers with their activity to the company `tenant_slug`; rows
    written per table. Raises LookupError when there is no such company."""
    sessionmaker = platform.db.sessionmaker
    async with session_scope(sessionmaker) as session:
        found = await DemoLoader(session).company(tenant_slug)
        if found is None:
            raise LookupError(f"No company has the slug {tenant_slug!r}.")
        tenant_id, statuses = found
        territories = platform.service(TerritoriesService)
        zones = await territories.demo_zones(session, TenantScope(tenant_id))
    rng = random.Random(seed)  # noqa: S311 - demo data, repeatable on purpose
    written = dict.fromkeys(_COLUMNS, 0)
    for start, n in batches(customers):
        batch = _batch(rng, tenant_id, n, statuses or ["new"], zones, start)
        async with session_scope(sessionmaker) as session:
            loader = DemoLoader(session)
            for table, columns in _COLUMNS.items():
                await loader.copy(table, columns, batch.rows[table])
                written[table] += len(batch.rows[table])
        advance(n)
    async with session_scope(sessionmaker) as session:
        await DemoLoader(session).analyze(list(_COLUMNS))
    return written


async def seed_at_scale(url: str, tenant_slug: str, customers: int, console: Any) -> dict[str, int]:
    """`seed_customers` with a progress bar, on its own engine (the command line's)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from tenantry.config import get_settings
    from tenantry.kit.db import Database

    settings = get_settings()
    db = Database(url, settings)
    columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("customers", total=customers)
            return await seed_customers(
                Platform.build(settings, db),
                tenant_slug,
                customers,
                advance=lambda n: progress.update(task, advance=n),
            )
    finally:
        await db.dispose()
