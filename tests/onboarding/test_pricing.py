"""Pricing (`onboarding.pricing`, `POST /onboarding/pricing`): a quote's arithmetic holds for
any choice of suites, size, cycle and currency (money in the currency's minor unit, the total
the lines minus the discounts, never negative, never lowered by adding a suite, annual never
dearer than twelve months); a few quotes worked by hand from `catalog.json` pin the numbers;
through the API a quote is stored unchanged, priced for a session's company, not billed for a
bypass domain, and every bad field is a 422 naming it."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from tenantry.onboarding import catalog, pricing
from tenantry.onboarding.catalog import CATALOG, SIZES
from tests.onboarding.test_profile import SEED_PROFILE
from tests.support.asserts import assert_problem
from tests.support.world import World

ONBOARDING = "/api/v1/onboarding"
PRICING = f"{ONBOARDING}/pricing"
PROFILE = SEED_PROFILE
BYPASS = "partner.example"

IDS = [s.id for s in CATALOG.suites]
suites = st.lists(st.sampled_from(IDS), min_size=1, unique=True)
sizes = st.sampled_from(SIZES)
cycles = st.sampled_from(["monthly", "annual"])
currencies = st.sampled_from(sorted(CATALOG.currencies))
reasons = st.none() | st.just(f"{BYPASS} is not billed (BILLING_BYPASS_DOMAINS)")
examples = hsettings(max_examples=200, deadline=None)


def amounts(quote: pricing.Priced) -> list[Decimal]:
    return [
        *(line.amount for line in quote.lines),
        *(d.amount for d in quote.discounts),
        quote.subtotal,
        quote.total,
    ]


# --- properties -----------------------------------------------------------------------------


@examples
@given(suites, sizes, cycles, currencies, reasons)
def test_the_total_is_the_lines_minus_the_discounts_and_never_negative(
    chosen: list[str], size: str, cycle: Any, currency: str, reason: str | None
) -> None:
    quote = pricing.price(chosen, size, cycle, currency, bypass_reason=reason)
    assert quote.subtotal == sum((line.amount for line in quote.lines), Decimal(0))
    assert quote.total == quote.subtotal - sum((d.amount for d in quote.discounts), Decimal(0))
    assert quote.total >= 0
    assert all(d.amount >= 0 for d in quote.discounts)
    assert sorted(line.suite_id for line in quote.lines) == sorted(chosen)


@examples
@given(suites, sizes, cycles, currencies, reasons)
def test_every_amount_is_in_the_currencys_minor_unit(
    chosen: list[str], size: str, cycle: Any, currency: str, reason: str | None
) -> None:
    quote = pricing.price(chosen, size, cycle, currency, bypass_reason=reason)
    places = CATALOG.currencies[currency].minor_unit
    for amount in [*amounts(quote), *(line.monthly_price for line in quote.lines)]:
        assert amount.as_tuple().exponent == -places, (amount, quote)


@examples
@given(suites, sizes, currencies)
def test_annual_never_costs_more_than_twelve_months(
    chosen: list[str], size: str, currency: str
) -> None:
    annual = pricing.price(chosen, size, "annual", currency)
    monthly = pricing.price(chosen, size, "monthly", currency)
    assert annual.total <= 12 * monthly.total
    assert annual.discounts[-1].kind == "annual"
    assert all(line.months == 12 for line in annual.lines)
    assert all(line.months == 1 for line in monthly.lines)


@examples
@given(st.lists(st.sampled_from(IDS), min_size=2, unique=True), sizes, cycles, currencies)
def test_adding_a_suite_never_lowers_the_total(
    chosen: list[str], size: str, cycle: Any, currency: str
) -> None:
    *before, added = chosen
    fewer = pricing.price(before, size, cycle, currency)
    more = pricing.price([*before, added], size, cycle, currency)
    assert more.total >= fewer.total, (before, added)


@examples
@given(suites, sizes, cycles, currencies)
def test_a_bypass_zeroes_the_total_with_a_last_discount_of_what_was_left(
    chosen: list[str], size: str, cycle: Any, currency: str
) -> None:
    billed = pricing.price(chosen, size, cycle, currency)
    bypassed = pricing.price(chosen, size, cycle, currency, bypass_reason="a partner")
    assert bypassed.total == 0
    *before, last = bypassed.discounts
    assert last.kind == "billing_bypass" and "a partner" in last.label
    assert last.amount == billed.total
    assert tuple(before) == billed.discounts and bypassed.lines == billed.lines


@examples
@given(
    suites.flatmap(lambda c: st.tuples(st.just(c), st.permutations(c))),
    sizes,
    cycles,
    currencies,
    reasons,
)
def test_the_same_choice_gives_the_same_quote(
    pair: tuple[list[str], list[str]], size: str, cycle: Any, currency: str, reason: str | None
) -> None:
    chosen, shuffled = pair
    first = pricing.price(chosen, size, cycle, currency, bypass_reason=reason)
    assert pricing.price(chosen, size, cycle, currency, bypass_reason=reason) == first
    # Within a size every suite's price differs, so the order chosen in does not matter.
    assert pricing.price(shuffled, size, cycle, currency, bypass_reason=reason) == first
    assert first.catalog_version == catalog.VERSION


# --- worked by hand from catalog.json -------------------------------------------------------


def test_one_suite_monthly_is_its_price() -> None:
    quote = pricing.price(["marketing_optimization"], "startup", "monthly", "EUR")
    assert [(line.suite_id, line.amount) for line in quote.lines] == [
        ("marketing_optimization", Decimal("49.00"))
    ]
    assert quote.discounts == () and quote.total == Decimal("49.00")
    assert str(quote.total) == "49.00"


def test_of_two_suites_the_cheaper_gets_ten_percent_off() -> None:
    quote = pricing.price(
        ["marketing_optimization", "sales_intelligence"], "startup", "monthly", "EUR"
    )
    # Dearest first: Sales Intelligence 59, then Marketing Optimisation 49 (10% off: 4.90).
    assert [line.suite_id for line in quote.lines] == [
        "sales_intelligence",
        "marketing_optimization",
    ]
    assert [(d.kind, d.amount) for d in quote.discounts] == [("bundle", Decimal("4.90"))]
    assert (quote.subtotal, quote.total) == (Decimal("108.00"), Decimal("103.10"))


def test_annual_is_twelve_months_less_the_bundle_less_fifteen_percent() -> None:
    quote = pricing.price(
        ["analytics", "marketing_optimization", "sales_intelligence"], "small", "annual", "EUR"
    )
    # 12 x (179, 149, 99) = 2148, 1788, 1188; bundle 10% of 1788 and 15% of 1188;
    # annual 15% of 5124 - 178.80 - 178.20 = 4767.00, i.e. 715.05.
    assert [line.amount for line in quote.lines] == [
        Decimal("2148.00"),
        Decimal("1788.00"),
        Decimal("1188.00"),
    ]
    assert [(d.kind, d.amount) for d in quote.discounts] == [
        ("bundle", Decimal("178.80")),
        ("bundle", Decimal("178.20")),
        ("annual", Decimal("715.05")),
    ]
    assert (quote.subtotal, quote.total) == (Decimal("5124.00"), Decimal("4051.95"))


def test_usd_is_converted_at_the_catalogs_rate() -> None:
    quote = pricing.price(["marketing_optimization", "communications"], "startup", "monthly", "USD")
    # 49 x 1.08 = 52.92, 29 x 1.08 = 31.32; 10% of 31.32 = 3.132, rounded to 3.13.
    assert [line.monthly_price for line in quote.lines] == [Decimal("52.92"), Decimal("31.32")]
    assert quote.discounts[0].amount == Decimal("3.13")
    assert quote.total == Decimal("81.11")


def test_yen_have_no_decimals_and_halves_round_to_even() -> None:
    quote = pricing.price(
        ["analytics", "marketing_optimization", "sales_intelligence"], "startup", "monthly", "JPY"
    )
    # 59, 49, 35 x 162 = 9558, 7938, 5670 yen; 10% of 7938 = 793.8 -> 794;
    # 15% of 5670 = 850.5 -> 850 (half-even; half-up would make it 851).
    assert [line.amount for line in quote.lines] == [Decimal(9558), Decimal(7938), Decimal(5670)]
    assert [d.amount for d in quote.discounts] == [Decimal(794), Decimal(850)]
    assert quote.total == Decimal(21522)
    assert all(a.as_tuple().exponent == 0 for a in amounts(quote))


# --- through the API ------------------------------------------------------------------------


def expected_body(quote: pricing.Priced) -> dict[str, Any]:
    """The money part of a quote's JSON, as `pricing.price` makes it."""
    return {
        "catalog_version": quote.catalog_version,
        "company_size": quote.company_size,
        "billing_cycle": quote.billing_cycle,
        "currency": quote.currency,
        "lines": [
            {
                "suite_id": line.suite_id,
                "name": line.name,
                "monthly_price": str(line.monthly_price),
                "months": line.months,
                "amount": str(line.amount),
            }
            for line in quote.lines
        ],
        "subtotal": str(quote.subtotal),
        "discounts": [
            {"kind": d.kind, "label": d.label, "amount": str(d.amount)} for d in quote.discounts
        ],
        "total": str(quote.total),
    }


async def _session_id(world: World, **profile: Any) -> str:
    r = await world.client.post(f"{ONBOARDING}/company-profile", json={**PROFILE, **profile})
    assert r.status_code == 201, r.text
    return r.json()["session_id"]  # type: ignore[no-any-return]


@pytest.fixture
def bypass_domain(world: World, monkeypatch: pytest.MonkeyPatch) -> str:
    """BILLING_BYPASS_DOMAINS set to one domain for this test (restored after)."""
    monkeypatch.setattr(world.platform.settings, "billing_bypass_domains", [BYPASS])
    return BYPASS


async def test_a_quote_is_priced_stored_and_read_back_unchanged(world: World) -> None:
    chosen = ["analytics", "sales_intelligence", "customer_support"]
    r = await world.client.post(
        PRICING,
        json={
            "company_size": "medium",
            "suites": chosen,
            "billing_cycle": "annual",
            "currency": "USD",
        },
    )
    assert r.status_code == 201, r.text
    quote = r.json()
    priced = pricing.price(chosen, "medium", "annual", "USD")
    assert {k: quote[k] for k in expected_body(priced)} == expected_body(priced)
    assert quote["catalog_version"] == catalog.VERSION
    assert quote["session_id"] is None and quote["billing_bypass_reason"] is None
    uuid.UUID(quote["id"])

    stored = await world.client.get(f"{ONBOARDING}/quotes/{quote['id']}")
    assert stored.status_code == 200, stored.text
    assert stored.json() == quote


async def test_the_defaults_are_monthly_in_the_base_currency(world: World) -> None:
    r = await world.client.post(PRICING, json={"company_size": "small", "suites": ["analytics"]})
    assert r.status_code == 201, r.text
    assert (r.json()["billing_cycle"], r.json()["currency"]) == ("monthly", CATALOG.base_currency)
    assert r.json()["total"] == "99.00"


async def test_a_sessions_quote_is_for_its_companys_size(world: World) -> None:
    session_id = await _session_id(world)
    r = await world.client.post(
        PRICING, json={"session_id": session_id, "suites": ["marketing_optimization"]}
    )
    assert r.status_code == 201, r.text
    quote = r.json()
    assert (quote["session_id"], quote["company_size"]) == (session_id, "startup")
    assert quote["total"] == "49.00"

    seen = await world.client.get(f"{ONBOARDING}/sessions/{session_id}")
    assert seen.status_code == 200, seen.text
    assert (seen.json()["quote_id"], seen.json()["step"]) == (quote["id"], "pricing_viewed")


async def test_an_explicit_size_wins_over_the_sessions(world: World) -> None:
    session_id = await _session_id(world)
    r = await world.client.post(
        PRICING,
        json={"session_id": session_id, "company_size": "enterprise", "suites": ["analytics"]},
    )
    assert r.status_code == 201, r.text
    assert (r.json()["company_size"], r.json()["total"]) == ("enterprise", "999.00")


@pytest.mark.parametrize(
    ("email", "bypassed"),
    [
        ("someone@partner.example", True),
        ("x@sub.partner.example", True),
        ("Someone@PARTNER.Example", True),
        ("someone@notpartner.example", False),
        ("someone@partner.example.com", False),
    ],
)
async def test_a_bypass_domain_is_not_billed(
    world: World, bypass_domain: str, email: str, bypassed: bool
) -> None:
    chosen = ["marketing_optimization", "analytics"]
    r = await world.client.post(
        PRICING,
        json={"company_size": "small", "suites": chosen, "billing_cycle": "annual", "email": email},
    )
    assert r.status_code == 201, r.text
    quote = r.json()
    billed = pricing.price(chosen, "small", "annual", "EUR")
    if bypassed:
        assert Decimal(quote["total"]) == 0
        assert quote["discounts"][-1]["kind"] == "billing_bypass"
        assert Decimal(quote["discounts"][-1]["amount"]) == billed.total
        assert bypass_domain in quote["billing_bypass_reason"]
    else:
        assert Decimal(quote["total"]) == billed.total > 0
        assert "billing_bypass" not in [d["kind"] for d in quote["discounts"]]
        assert quote["billing_bypass_reason"] is None


async def test_the_sessions_email_is_checked_for_a_bypass(world: World, bypass_domain: str) -> None:
    session_id = await _session_id(world, user_email=f"founder@{bypass_domain}")
    r = await world.client.post(PRICING, json={"session_id": session_id, "suites": ["analytics"]})
    assert r.status_code == 201, r.text
    assert Decimal(r.json()["total"]) == 0 and r.json()["billing_bypass_reason"]


async def test_without_bypass_domains_everyone_is_billed(world: World) -> None:
    assert world.platform.settings.billing_bypass_domains == []
    r = await world.client.post(
        PRICING,
        json={"company_size": "small", "suites": ["analytics"], "email": f"x@{BYPASS}"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["total"] == "99.00" and r.json()["billing_bypass_reason"] is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"suites": []}, "suites"),
        ({"suites": ["payroll"]}, "suites"),
        ({"suites": ["analytics", "analytics"]}, "suites"),
        ({"billing_cycle": "weekly"}, "billing_cycle"),
        ({"currency": "CHF"}, "currency"),
        ({"company_size": "huge"}, "company_size"),
        ({"email": "not-an-email"}, "email"),
        ({"session_id": "too-short"}, "session_id"),
        ({"session_id": "A" * 31 + "!"}, "session_id"),
        ({"session_id": "A" * 33}, "session_id"),
        ({"discount": "100"}, "discount"),
    ],
)
async def test_a_bad_field_is_a_422_naming_it(
    world: World, change: dict[str, Any], field: str
) -> None:
    body = {"company_size": "small", "suites": ["analytics"], **change}
    r = await world.client.post(PRICING, json=body)
    problem = assert_problem(r, 422, "validation-error")
    assert [e["loc"][:2] for e in problem["errors"]] == [["body", field]], problem


async def test_neither_a_session_nor_a_size_is_a_422(world: World) -> None:
    r = await world.client.post(PRICING, json={"suites": ["analytics"]})
    problem = assert_problem(r, 422, "validation-error")
    assert [e["loc"] for e in problem["errors"]] == [["body"]], problem
    assert "session_id or a company_size" in problem["errors"][0]["message"]


async def test_an_unknown_session_is_a_404(world: World) -> None:
    unknown = "A1b2_C3-" * 4
    r = await world.client.post(PRICING, json={"session_id": unknown, "suites": ["analytics"]})
    problem = assert_problem(r, 404, "not-found")
    assert "Session expired or not found" in f"{problem['title']} {problem.get('detail')}"


async def test_an_unknown_quote_is_a_404_and_a_malformed_id_a_422(world: World) -> None:
    assert_problem(await world.client.get(f"{ONBOARDING}/quotes/{uuid.uuid4()}"), 404)
    problem = assert_problem(await world.client.get(f"{ONBOARDING}/quotes/not-a-uuid"), 422)
    assert problem["errors"][0]["loc"] == ["path", "quote_id"]
