"""A modular quote: chosen suites by company-size tier by billing cycle, in one currency, from
the catalog's prices and discount rules. Pure arithmetic on `Decimal`, no I/O.

How a quote is made:
1. Each suite's line is its tier's monthly base price, converted at the catalog's rate and
   multiplied by the months billed (1, or 12 for annual), rounded once, half-even, to the
   currency's minor unit.
2. Bundle: lines are ranked by amount, dearest first; the suite in position 2 gets the first
   step's percent off, position 3 and later the second's (catalog `pricing.bundle`). Each
   line's discount is rounded once. Only the cheaper suites are discounted, and a step's
   percent applies from its position on, so adding a suite never lowers the total.
3. Annual billing: `annual_percent` off what is left after the bundle, rounded once.
4. Billing bypass (an email in BILLING_BYPASS_DOMAINS): what is left, so the total is zero.
The total is the lines minus the discounts, exactly: nothing is rounded after that.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from tenantry.onboarding.catalog import CATALOG, VERSION, Catalog

Cycle = Literal["monthly", "annual"]
HUNDRED = Decimal(100)


@dataclass(frozen=True, slots=True)
class Line:
    suite_id: str
    name: str
    monthly_price: Decimal
    months: int
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Discount:
    kind: Literal["bundle", "annual", "billing_bypass"]
    label: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Priced:
    currency: str
    company_size: str
    billing_cycle: Cycle
    lines: tuple[Line, ...]
    subtotal: Decimal
    discounts: tuple[Discount, ...]
    total: Decimal
    catalog_version: str


def _rounder(currency: str, catalog: Catalog) -> tuple[Decimal, Decimal]:
    found = catalog.currencies[currency]
    return found.rate, Decimal(1).scaleb(-found.minor_unit)


def price(
    suite_ids: Sequence[str],
    company_size: str,
    billing_cycle: Cycle,
    currency: str,
    *,
    bypass_reason: str | None = None,
    catalog: Catalog = CATALOG,
    version: str = VERSION,
) -> Priced:
    """The quote for `suite_ids` (distinct ids of the catalog, at least one)."""
    rate, unit = _rounder(currency, catalog)

    def rounded(value: Decimal) -> Decimal:
        return value.quantize(unit, rounding=ROUND_HALF_EVEN)

    months = 12 if billing_cycle == "annual" else 1
    lines = []
    for suite_id in suite_ids:
        suite = catalog.by_id[suite_id]
        monthly = suite.prices[company_size] * rate
        lines.append(
            Line(suite.id, suite.name, rounded(monthly), months, rounded(monthly * months))
        )
    # Dearest first; sorted() is stable, so equal amounts keep the order they were chosen in.
    lines.sort(key=lambda line: -line.amount)
    subtotal = sum((line.amount for line in lines), Decimal(0))

    discounts: list[Discount] = []
    for i, step in enumerate(catalog.pricing.bundle):
        upto = (
            catalog.pricing.bundle[i + 1].position if i + 1 < len(catalog.pricing.bundle) else None
        )
        ranked = lines[step.position - 1 : (upto - 1) if upto else None]
        off = sum((rounded(line.amount * step.percent / HUNDRED) for line in ranked), Decimal(0))
        if ranked:
            discounts.append(Discount("bundle", step.label, off))
    left = subtotal - sum((d.amount for d in discounts), Decimal(0))
    if billing_cycle == "annual":
        off = rounded(left * catalog.pricing.annual_percent / HUNDRED)
        discounts.append(Discount("annual", catalog.pricing.annual_label, off))
        left -= off
    if bypass_reason is not None and left > 0:
        discounts.append(Discount("billing_bypass", f"Billing bypass: {bypass_reason}", left))
        left = rounded(Decimal(0))
    return Priced(
        currency=currency,
        company_size=company_size,
        billing_cycle=billing_cycle,
        lines=tuple(lines),
        subtotal=subtotal,
        discounts=tuple(discounts),
        total=left,
        catalog_version=version,
    )
