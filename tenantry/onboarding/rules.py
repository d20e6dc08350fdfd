"""Which suites to recommend for a company profile, and why: a small deterministic rules
engine whose weights and thresholds are catalog data (`catalog.json`, `rules`).

Each suite scores, out of `max_score`:
- `challenge` points for each of the company's challenges the suite addresses;
- `goal` points for each of its goals the suite serves;
- `industry` points when the suite is built for its industry;
- `tool` points for each tool it uses that the suite replaces or works with;
- `size` points when the suite fits its size.
Suites scoring at least `min_score` are recommended, best first (ties in catalog order), at
most `max_recommended`; when none does, the catalog's `default_suite` is. Every point comes
with its reason, so the answer explains itself. The same profile always gets the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenantry.onboarding.catalog import CATALOG, Catalog, Suite


@dataclass(frozen=True, slots=True)
class Profile:
    industry: str
    company_size: str
    challenges: tuple[str, ...]
    tools: tuple[str, ...]
    goals: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Recommendation:
    suite_id: str
    name: str
    score: int
    reasons: tuple[str, ...]


def score(suite: Suite, profile: Profile, catalog: Catalog = CATALOG) -> Recommendation:
    w = catalog.rules.weights
    points = 0
    reasons: list[str] = []
    for challenge in profile.challenges:
        if challenge in suite.fit.challenges:
            points += w.challenge
            reasons.append(f"Addresses your challenge: {catalog.challenges[challenge]}")
    for goal in profile.goals:
        if goal in suite.fit.goals:
            points += w.goal
            reasons.append(f"Serves your goal: {catalog.goals[goal]}")
    if profile.industry in suite.fit.industries:
        points += w.industry
        reasons.append(f"Fits your industry: {catalog.industries[profile.industry]}")
    for tool in profile.tools:
        if tool in suite.fit.tools:
            points += w.tool
            reasons.append(f"Works with or replaces {catalog.tools[tool]}")
    if profile.company_size in suite.fit.sizes and points:
        # Size alone recommends nothing: it only ranks suites that fit otherwise.
        points += w.size
        reasons.append(f"Fits your size: {catalog.company_sizes[profile.company_size].label}")
    return Recommendation(
        suite.id, suite.name, min(points, catalog.rules.max_score), tuple(reasons)
    )


def recommend(profile: Profile, catalog: Catalog = CATALOG) -> list[Recommendation]:
    rules = catalog.rules
    scored = [score(suite, profile, catalog) for suite in catalog.suites]
    # sorted() is stable: equal scores keep the catalog's order.
    ranked = sorted((r for r in scored if r.score >= rules.min_score), key=lambda r: -r.score)
    if ranked:
        return ranked[: rules.max_recommended]
    fallback = next(r for r in scored if r.suite_id == rules.default_suite)
    why = "Where most companies start when no suite matches their answers directly"
    return [Recommendation(fallback.suite_id, fallback.name, fallback.score, (why,))]
