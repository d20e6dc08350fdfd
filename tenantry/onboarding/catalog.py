"""The suite catalog: product suites, their modules and features, a monthly price for each
company-size tier, the vocabulary a company profile is answered in, and the rules that
recommend and price suites. All of it is data (`catalog.json`), read and checked once at
import; its content hash is the catalog's version, named by every quote priced from it.

The catalog is the same for every visitor and changes only with a release, so its response
is rendered once, here, and served as bytes with a strong ETag.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tenantry.kit.cache import Rendered

SIZES = ("startup", "small", "medium", "enterprise")
PUBLIC = "public, max-age=300"  # the same bytes for everyone; revalidated with the ETag

Money = Annotated[Decimal, Field(ge=0, decimal_places=4)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Currency(_Strict):
    rate: Annotated[Decimal, Field(gt=0, description="Units of this currency per base unit")]
    minor_unit: Annotated[int, Field(ge=0, le=3, description="Decimal places of an amount")]
    symbol: str


class Size(_Strict):
    label: str


class Module(_Strict):
    id: str
    name: str
    features: list[str]


class Fit(_Strict):
    """What a suite is for: the rules engine matches a profile's answers against these."""

    challenges: list[str]
    goals: list[str]
    industries: list[str]
    tools: list[str]
    sizes: list[str]


class Suite(_Strict):
    id: str
    name: str
    summary: str
    modules: list[Module]
    prices: dict[str, Money] = Field(description="Monthly price in the base currency, by size")
    fit: Fit


class Weights(_Strict):
    challenge: int
    goal: int
    industry: int
    tool: int
    size: int


class Rules(_Strict):
    weights: Weights
    max_score: int
    min_score: int
    max_recommended: int
    default_suite: str


class BundleStep(_Strict):
    position: Annotated[
        int, Field(ge=2, description="From this suite on (by price, dearest first)")
    ]
    percent: Annotated[Decimal, Field(ge=0, lt=100)]
    label: str


class Pricing(_Strict):
    bundle: list[BundleStep]
    annual_percent: Annotated[Decimal, Field(ge=0, lt=100)]
    annual_label: str


class _Offer(_Strict):
    """What a visitor is shown: the suites, their prices and the profile's vocabulary."""

    base_currency: str
    currencies: dict[str, Currency]
    company_sizes: dict[str, Size]
    industries: dict[str, str]
    challenges: dict[str, str]
    goals: dict[str, str]
    tools: dict[str, str]
    pricing: Pricing
    suites: list[Suite]


class Catalog(_Offer):
    version_note: str = ""
    rules: Rules

    @model_validator(mode="after")
    def _consistent(self) -> Catalog:
        """Every name the catalog uses is one it defines: a typo fails at start, not in a
        visitor's request."""
        if tuple(self.company_sizes) != SIZES:
            raise ValueError(f"company_sizes must be {SIZES}")
        if self.base_currency not in self.currencies:
            raise ValueError("the base currency has no entry in currencies")
        ids = [s.id for s in self.suites]
        if len(set(ids)) != len(ids) or len(ids) < 6:
            raise ValueError("at least six suites, each id once")
        if self.rules.default_suite not in ids:
            raise ValueError("rules.default_suite is not a suite")
        positions = [b.position for b in self.pricing.bundle]
        percents = [b.percent for b in self.pricing.bundle]
        if positions != sorted(set(positions)) or percents != sorted(percents):
            raise ValueError("bundle steps go up in position and in percent")
        vocabularies: dict[str, Mapping[str, object]] = {
            "challenges": self.challenges,
            "goals": self.goals,
            "industries": self.industries,
            "tools": self.tools,
            "sizes": self.company_sizes,
        }
        for suite in self.suites:
            if set(suite.prices) != set(SIZES):
                raise ValueError(f"{suite.id}: a price for each size, {SIZES}")
            for field, known in vocabularies.items():
                unknown = set(getattr(suite.fit, field)) - set(known)
                if unknown:
                    raise ValueError(f"{suite.id}: unknown {field} {sorted(unknown)}")
        return self

    @cached_property
    def by_id(self) -> dict[str, Suite]:
        return {s.id: s for s in self.suites}


_RAW = (Path(__file__).with_name("catalog.json")).read_bytes()
CATALOG = Catalog.model_validate_json(_RAW)
VERSION = hashlib.sha256(_RAW).hexdigest()[:16]


class CatalogOut(_Offer):
    """The catalog as `GET /onboarding/suite-catalog` answers it."""

    version: str = Field(description="Names the catalog a quote was priced from")


def _render() -> Rendered:
    out = CatalogOut.model_validate(
        {**CATALOG.model_dump(exclude={"version_note", "rules"}), "version": VERSION}
    )
    return Rendered.of(out.__pydantic_serializer__.to_json(out))


RENDERED = _render()
