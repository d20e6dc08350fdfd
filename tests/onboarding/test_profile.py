"""The suite catalog (from memory, with its ETag), a company profile and its recommendations,
the visitor's session in the state store (expiry on a clock the test controls), and the
funnel's events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.db import Database
from tenantry.kit.errors import NotFound
from tenantry.kit.platform import Platform
from tenantry.kit.state import PostgresStateStore
from tenantry.onboarding import catalog, rules
from tenantry.onboarding.models import OnboardingEvent
from tenantry.onboarding.schemas import ProfileCreate
from tenantry.onboarding.service import OnboardingService
from tests.support.asserts import assert_problem, queries
from tests.support.world import World

CATALOG_URL = "/api/v1/onboarding/suite-catalog"
PROFILE = "/api/v1/onboarding/company-profile"
SESSIONS = "/api/v1/onboarding/sessions"
SEED_PROFILE: dict[str, Any] = {  # seed 000's load test posts exactly this
    "company_name": "Test Corp",
    "industry": "technology",
    "company_size": "startup",
    "primary_challenges": ["marketing_optimization"],
    "current_tools": [],
    "goals": ["increase_roi"],
}


@pytest.mark.usefixtures("both_lanes")
async def test_the_catalog_is_served_from_memory_with_its_etag(world: World) -> None:
    r = await world.client.get(CATALOG_URL)
    assert r.status_code == 200 and queries(r) == 0
    assert r.headers["cache-control"] == "public, max-age=300"
    body = r.json()
    assert body["version"] == catalog.VERSION and len(body["suites"]) >= 6
    for suite in body["suites"]:
        assert set(suite["prices"]) == {"startup", "small", "medium", "enterprise"}
        assert suite["modules"] and all(m["features"] for m in suite["modules"])
    again = await world.client.get(CATALOG_URL, headers={"If-None-Match": r.headers["etag"]})
    assert (again.status_code, again.content) == (304, b"")
    stale = await world.client.get(CATALOG_URL, headers={"If-None-Match": '"other"'})
    assert stale.status_code == 200


async def test_a_profile_gets_its_recommendations_and_a_session(
    world: World, session: AsyncSession
) -> None:
    r = await world.client.post(PROFILE, json={**SEED_PROFILE, "user_email": "ada@corp.example"})
    assert r.status_code == 201, r.text
    created = r.json()
    expires = datetime.fromisoformat(created["expires_at"])
    assert timedelta(hours=23, minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=24)
    best = created["recommended_suites"][0]
    assert best["suite_id"] == "marketing_optimization" and 0 < best["score"] <= 100
    assert "Addresses your challenge: Marketing optimisation" in best["reasons"]

    r = await world.client.get(f"{SESSIONS}/{created['session_id']}")
    assert r.status_code == 200, r.text
    state = r.json()
    assert (state["step"], state["demo_mode"], state["email"]) == (
        "profile",
        True,
        "ada@corp.example",
    )
    assert state["profile"]["company_name"] == "Test Corp"
    assert state["recommended_suites"] == created["recommended_suites"]

    [event] = (
        await session.execute(
            select(OnboardingEvent).where(OnboardingEvent.session_id == created["session_id"])
        )
    ).scalars()
    assert (event.step, event.properties["industry"]) == ("profile", "technology")


async def test_an_unknown_session_is_not_found_and_a_malformed_id_is_named(world: World) -> None:
    r = await world.client.get(f"{SESSIONS}/{'x' * 32}")
    assert assert_problem(r, 404)["detail"] == "Session expired or not found"
    r = await world.client.get(f"{SESSIONS}/short")
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["path", "session_id"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"industry": "bogus"}, "industry"),
        ({"company_size": "huge"}, "company_size"),
        ({"primary_challenges": []}, "primary_challenges"),
        ({"primary_challenges": ["nope"]}, "primary_challenges"),
        ({"primary_challenges": ["reporting", "reporting"]}, "primary_challenges"),
        ({"current_tools": ["abacus"]}, "current_tools"),
        ({"goals": []}, "goals"),
        ({"goals": ["world_domination"]}, "goals"),
        ({"company_name": ""}, "company_name"),
        ({"company_name": "x" * 201}, "company_name"),
        ({"company_name": "nul\x00byte"}, "company_name"),
        ({"company_name": "lone \ud800"}, "company_name"),
        ({"user_email": "not-an-email"}, "user_email"),
        ({"surprise": 1}, "surprise"),
        ({"industry": None}, "industry"),
    ],
)
async def test_every_bad_field_is_named_and_nothing_is_kept(
    world: World, session: AsyncSession, change: dict[str, Any], field: str
) -> None:
    before = len((await session.execute(select(OnboardingEvent.id))).all())
    body = {**SEED_PROFILE, **change}
    # As JSON text with \u escapes: a lone surrogate cannot be encoded as UTF-8 otherwise.
    raw = json.dumps(body)
    r = await world.client.post(PROFILE, content=raw, headers={"content-type": "application/json"})
    problem = assert_problem(r, 422)
    assert field in {str(part) for e in problem["errors"] for part in e["loc"]}, problem
    assert len((await session.execute(select(OnboardingEvent.id))).all()) == before


async def test_a_session_expires_after_its_ttl_on_the_store_clock(
    database: Database, settings: Any, session: AsyncSession
) -> None:
    now = [datetime.now(UTC)]
    platform = Platform.build(settings, database)
    platform.state = PostgresStateStore(database, clock=lambda: now[0])
    onboarding = OnboardingService(platform)
    created = await onboarding.create_profile(session, ProfileCreate.model_validate(SEED_PROFILE))
    now[0] += timedelta(seconds=settings.onboarding_session_ttl_s - 1)
    assert (await onboarding.session_view(created.session_id)).step == "profile"
    now[0] += timedelta(seconds=2)
    with pytest.raises(NotFound, match="Session expired or not found"):
        await onboarding.read(created.session_id)


_profiles = st.builds(
    rules.Profile,
    industry=st.sampled_from(list(catalog.CATALOG.industries)),
    company_size=st.sampled_from(catalog.SIZES),
    challenges=st.lists(st.sampled_from(list(catalog.CATALOG.challenges)), unique=True).map(tuple),
    tools=st.lists(st.sampled_from(list(catalog.CATALOG.tools)), unique=True).map(tuple),
    goals=st.lists(st.sampled_from(list(catalog.CATALOG.goals)), unique=True).map(tuple),
)


@hsettings(max_examples=300, deadline=None)
@given(_profiles)
def test_recommendations_are_deterministic_bounded_and_explained(profile: rules.Profile) -> None:
    found = rules.recommend(profile)
    assert found == rules.recommend(profile)
    assert 1 <= len(found) <= catalog.CATALOG.rules.max_recommended
    assert [r.score for r in found] == sorted((r.score for r in found), reverse=True)
    for r in found:
        assert 0 <= r.score <= 100 and r.reasons
    rules_ = catalog.CATALOG.rules
    chosen = {r.suite_id for r in found}
    left_out = [rules.score(s, profile).score for s in catalog.CATALOG.suites if s.id not in chosen]
    if found[0].score < rules_.min_score:  # nothing matched: the default suite, explained
        assert [r.suite_id for r in found] == [rules_.default_suite]
        assert all(score < rules_.min_score for score in left_out)
    elif len(found) < rules_.max_recommended:  # every suite good enough is in
        assert all(score < rules_.min_score for score in left_out)
    else:  # the best ones are in
        assert min(r.score for r in found) >= max(left_out, default=0)
