"""Cached list pages: every rendered page of one owner's list (a tenant's sync runs, say),
dropped together by one invalidation of the owner's key.

A list has many pages (page, size, filter), and a change to one row can move every one of
them, so they cannot be invalidated one by one. Instead the owner has a *generation* (a
random token in one cache) and each page is cached under `owner:generation:variant` (in a
second). Invalidating the owner's key drops its generation; the next read makes a new one,
so every page made before is unreachable at once and ages out of its bounded cache. A page
still loading when the owner was invalidated is stored under the old generation: never
served; one filled after it follows the generations' invalidation (`kit.replica.fill_after`).
Both caches are the kit's named caches (single-flight loads, bounds, TTL, counters,
invalidation on every instance through the bus), so this module holds only the two-key
scheme, which is ours.

The pages stay in process memory (they are bytes made for one response each); the TTL bounds
how long an invalidation lost with its bus could leave a page stale.

Rows that invalidate their owner's list are declared once with `invalidated_by(model, ...)`:
every ORM insert, update or delete of one marks the owner stale in its session, to be dropped
when that session commits (`kit.caches.invalidate_on_commit`). Core statements bypass the ORM
events; code that writes the model with them must invalidate by itself.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import object_session

from tenantry.kit.cache import CacheSpec, NamedCache, Rendered, declare
from tenantry.kit.caches import Caches, invalidate_on_commit
from tenantry.kit.replica import fill_after


@dataclass(frozen=True, slots=True)
class ListSpec:
    """A cached list: its pages' cache and its owners' generations."""

    pages: CacheSpec[Rendered]
    generations: CacheSpec[str]

    def invalidate(self, session: Any, owner: str) -> None:
        """Every page of `owner`'s list is stale once `session` commits."""
        invalidate_on_commit(session, self.generations.name, owner)

    def on(self, caches: Caches) -> ListCache:
        return ListCache(caches.cache(self.pages), caches.cache(self.generations))


def declare_list(name: str, *, ttl_s: float, max_pages: int, max_owners: int) -> ListSpec:
    """Declare a cached list (a module constant beside its service): the caches `name`
    (pages, at most `max_pages`) and `name_generation` (at most `max_owners`), both
    overridable by name in the settings like any cache."""
    return ListSpec(
        pages=declare(name, ttl_s=ttl_s, max_size=max_pages),
        generations=declare(f"{name}_generation", ttl_s=ttl_s, max_size=max_owners),
    )


async def _new_generation() -> str:
    return uuid.uuid4().hex


class ListCache:
    def __init__(self, pages: NamedCache[Rendered], generations: NamedCache[str]) -> None:
        self.pages = pages
        self.generations = generations

    async def page(
        self, owner: str, variant: str, render: Callable[[], Awaitable[bytes]]
    ) -> Rendered:
        """The page `variant` of `owner`'s list, rendered by `render()` when not cached."""
        generation = await self.generations.get_or_load(owner, _new_generation)

        async def load() -> Rendered:
            # The owner's invalidations reach the generations, not the pages: follow theirs.
            generations = self.generations.invalidated_at
            if generations == -math.inf:
                return Rendered.of(await render())
            return Rendered.of(await fill_after(generations, render))

        page = await self.pages.get_or_load(f"{owner}:{generation}:{variant}", load)
        assert page is not None  # `load` never answers None
        return page


def invalidated_by(model: type[Any], spec: ListSpec, owner_of: Callable[[Any], str]) -> None:
    """Every ORM insert, update or delete of a `model` row makes its owner's list stale (the
    owner is `owner_of(row)`, e.g. its tenant id)."""

    def mark(_mapper: Any, _connection: Any, row: Any) -> None:
        session = object_session(row)
        if session is not None:
            spec.invalidate(session, owner_of(row))

    for name in ("after_insert", "after_update", "after_delete"):
        event.listen(model, name, mark)
