"""The onboarding funnel for platform staff: sessions per step and per day, conversion
rates, in two queries; bad ranges named; nobody else may read it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.onboarding.models import OnboardingEvent
from tests.support.asserts import assert_problem, queries
from tests.support.world import World

FUNNEL = "/api/v1/admin/onboarding/funnel"
DAY = datetime(2026, 3, 10, 12, tzinfo=UTC)


async def _staff(world: World) -> dict[str, str]:
    operator = await world.tenant()
    return (await world.user(operator, "admin", account_type="internal_employee")).headers


def _event(session_id: str, step: str, at: datetime) -> OnboardingEvent:
    return OnboardingEvent(session_id=session_id.ljust(32, "x"), step=step, created_at=at)


async def test_sessions_are_counted_per_step_and_per_day(
    world: World, session: AsyncSession
) -> None:
    await session.execute(delete(OnboardingEvent))  # this test's transaction only
    next_day = DAY + timedelta(days=1)
    session.add_all(
        [
            *(_event(f"s{i}", "profile", DAY) for i in range(4)),
            _event("s0", "pricing_viewed", DAY),
            _event("s0", "pricing_viewed", DAY + timedelta(hours=1)),  # twice: one session
            _event("s1", "pricing_viewed", next_day),
            _event("s0", "completed", next_day),
            _event("old", "profile", DAY - timedelta(days=40)),  # out of range
        ]
    )
    await session.flush()
    staff = await _staff(world)
    await world.client.get(FUNNEL, headers=staff)  # who they are is cached after this
    r = await world.client.get(f"{FUNNEL}?from=2026-03-01&to=2026-03-31", headers=staff)
    assert r.status_code == 200, r.text
    assert queries(r) == 2
    body = r.json()
    steps = {s["step"]: s for s in body["steps"]}
    assert [s["sessions"] for s in body["steps"]] == [4, 2, 1]
    assert (
        steps["pricing_viewed"]["rate_from_start"],
        steps["completed"]["rate_from_previous"],
    ) == (
        0.5,
        0.5,
    )
    assert steps["completed"]["rate_from_start"] == 0.25
    assert body["days"] == [
        {"date": "2026-03-10", "profile": 4, "pricing_viewed": 1, "completed": 0},
        {"date": "2026-03-11", "profile": 0, "pricing_viewed": 1, "completed": 1},
    ]


async def test_an_empty_range_has_no_rates_to_divide_by(world: World) -> None:
    r = await world.client.get(
        f"{FUNNEL}?from=2001-01-01&to=2001-01-02", headers=await _staff(world)
    )
    assert [(s["sessions"], s["rate_from_start"]) for s in r.json()["steps"]] == [(0, 0.0)] * 3


async def test_the_default_range_is_the_last_thirty_days(world: World) -> None:
    body = (await world.client.get(FUNNEL, headers=await _staff(world))).json()
    today = datetime.now(UTC).date()
    assert (body["from_date"], body["to_date"]) == (str(today - timedelta(days=29)), str(today))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-03-10&to=2026-03-01", "to"),
        ("from=2024-01-01&to=2026-01-01", "to"),
        ("from=yesterday", "from"),
        ("to=2026-02-30", "to"),
    ],
)
async def test_bad_ranges_are_named(world: World, query: str, field: str) -> None:
    r = await world.client.get(f"{FUNNEL}?{query}", headers=await _staff(world))
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["query", field]


async def test_only_platform_staff_read_the_funnel(world: World) -> None:
    assert_problem(await world.client.get(FUNNEL), 401)
    owner = await world.user(await world.tenant(), "owner")
    assert_problem(await world.client.get(FUNNEL, headers=owner.headers), 403)
