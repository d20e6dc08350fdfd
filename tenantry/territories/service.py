"""Territories: regions, their zones (postal-code prefixes), and the teams that own zones.

A postal code resolves to the zone with the longest matching prefix. Each tenant's zones are
cached in process for 24 h as a prefix table, loaded for every tenant in one query when the
app starts (`preload`, in the background: never on a request's path, least of all a login's)
and dropped on every instance when a zone changes.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz.principal import Principal
from tenantry.kit.cache import CacheSpec, declare
from tenantry.kit.caches import invalidate_on_commit
from tenantry.kit.cursor import decode
from tenantry.kit.db import session_scope
from tenantry.kit.errors import Conflict, Invalid, NotFound
from tenantry.kit.platform import Service
from tenantry.kit.repository import TenantScope
from tenantry.territories.models import Region, Team, TeamMember, Zone
from tenantry.territories.repository import (
    ContextRepository,
    MemberRepository,
    RegionRepository,
    TeamRepository,
    ZoneDirectory,
    ZoneRepository,
)
from tenantry.territories.schemas import (
    ContextTenant,
    ContextZone,
    DemoZone,
    MemberOut,
    Named,
    RegionCreate,
    RegionList,
    RegionOut,
    Resolved,
    TeamCreate,
    TeamList,
    TeamOut,
    UserContext,
    ZoneCreate,
    ZoneList,
    ZoneOut,
)
from tenantry.users.service import UsersService


@dataclass(frozen=True, slots=True)
class ZoneTable:
    """A tenant's prefixes, longest first: (prefix, zone)."""

    entries: tuple[tuple[str, Resolved], ...]

    @classmethod
    def of(cls, zones: list[Zone]) -> ZoneTable:
        entries = [
            (
                prefix.upper(),
                Resolved(
                    zone_id=z.id,
                    code=z.code,
                    region_id=z.region_id,
                    team_id=z.team_id,
                    matched_prefix=prefix,
                ),
            )
            for z in zones
            for prefix in z.postal_prefixes
        ]
        entries.sort(key=lambda e: -len(e[0]))
        return cls(tuple(entries))

    def resolve(self, postal_code: str) -> Resolved | None:
        code = postal_code.strip().upper()
        return next((zone for prefix, zone in self.entries if code.startswith(prefix)), None)


ZONES_CACHE: CacheSpec[ZoneTable] = declare("zones", ttl_s=86_400, max_size=10_000)
# A user's context (`/users/me/context`), by "tenant:user"; dropped when their teams change.
CONTEXT_CACHE = declare("user_context", ttl_s=900, max_size=10_000, value_type=UserContext)


def forget_context(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """The user's cached context is stale once this session commits (every instance)."""
    invalidate_on_commit(session, CONTEXT_CACHE.name, f"{tenant_id}:{user_id}")


async def _insert(session: AsyncSession, add: Callable[[], object], taken: str) -> None:
    """Add and flush in a savepoint: a unique name already used is a 409, and the request's
    transaction goes on."""
    try:
        async with session.begin_nested():
            add()
            await session.flush()
    except IntegrityError:
        raise Conflict(taken) from None


def _team_out(team: Team, members: list[TeamMember]) -> TeamOut:
    return TeamOut(
        id=team.id,
        name=team.name,
        created_at=team.created_at,
        members=[MemberOut.model_validate(m) for m in members],
    )


class TerritoriesService(Service):
    # --- regions and teams --------------------------------------------------------------

    async def regions(self, session: AsyncSession, scope: TenantScope) -> list[RegionOut]:
        return [RegionOut.model_validate(r) for r in await RegionRepository(session, scope).all()]

    async def create_region(
        self, session: AsyncSession, scope: TenantScope, body: RegionCreate
    ) -> RegionOut:
        region = Region(name=body.name.strip())
        repo = RegionRepository(session, scope)
        await _insert(session, lambda: repo.add(region), f"A region named {region.name!r} exists.")
        await session.refresh(region, ["created_at"])
        return RegionOut.model_validate(region)

    async def region_page(
        self, session: AsyncSession, scope: TenantScope, *, cursor: str | None, limit: int
    ) -> RegionList:
        rows = await RegionRepository(session, scope).newest_after(decode(cursor), limit + 1)
        return RegionList.of(rows, [RegionOut.model_validate(r) for r in rows], limit=limit)

    async def team_page(
        self, session: AsyncSession, scope: TenantScope, *, cursor: str | None, limit: int
    ) -> TeamList:
        """A page of teams with their members: two queries."""
        teams = await TeamRepository(session, scope).newest_after(decode(cursor), limit + 1)
        members = await MemberRepository(session, scope).of([t.id for t in teams[:limit]])
        items = [_team_out(t, members.get(t.id, [])) for t in teams[:limit]]
        return TeamList.of(teams, items, limit=limit)

    async def zone_page(
        self, session: AsyncSession, scope: TenantScope, *, cursor: str | None, limit: int
    ) -> ZoneList:
        rows = await ZoneRepository(session, scope).newest_after(decode(cursor), limit + 1)
        return ZoneList.of(rows, [ZoneOut.model_validate(z) for z in rows], limit=limit)

    async def teams(self, session: AsyncSession, scope: TenantScope) -> list[TeamOut]:
        """Every team with its members: two queries."""
        teams = await TeamRepository(session, scope).all()
        members = await MemberRepository(session, scope).of([t.id for t in teams])
        return [_team_out(t, members.get(t.id, [])) for t in teams]

    async def _team(self, session: AsyncSession, scope: TenantScope, team_id: uuid.UUID) -> Team:
        found = await TeamRepository(session, scope).get(team_id)
        if found is None:
            raise NotFound("No such team in your company.")
        return found

    async def team(self, session: AsyncSession, scope: TenantScope, team_id: uuid.UUID) -> TeamOut:
        """One team with its members: two queries."""
        team = await self._team(session, scope, team_id)
        members = await MemberRepository(session, scope).of([team_id])
        return _team_out(team, members.get(team_id, []))

    async def add_member(
        self, session: AsyncSession, scope: TenantScope, team_id: uuid.UUID, user_id: uuid.UUID
    ) -> TeamOut:
        """Put an active user of the company in the team, last; a member already in stays
        where they are (the call is idempotent)."""
        team = await self._team(session, scope, team_id)
        users = self.platform.service(UsersService)
        if user_id not in await users.active_among(session, scope, [user_id]):
            raise NotFound("No such active user in your company.")
        repo = MemberRepository(session, scope)
        members = (await repo.of([team_id])).get(team_id, [])
        if all(m.user_id != user_id for m in members):
            slot = max((m.slot for m in members), default=-1) + 1
            row = TeamMember(team_id=team_id, user_id=user_id, slot=slot)
            await _insert(session, lambda: repo.add(row), "That user was just added to the team.")
            forget_context(session, scope.tenant_id, user_id)
            members.append(row)
        return _team_out(team, members)

    async def remove_member(
        self, session: AsyncSession, scope: TenantScope, team_id: uuid.UUID, user_id: uuid.UUID
    ) -> None:
        await self._team(session, scope, team_id)
        if not await MemberRepository(session, scope).remove(team_id, user_id):
            raise NotFound("That user is not in this team.")
        forget_context(session, scope.tenant_id, user_id)

    async def create_team(
        self, session: AsyncSession, scope: TenantScope, body: TeamCreate
    ) -> TeamOut:
        users = self.platform.service(UsersService)
        active = await users.active_among(session, scope, body.members)  # one query for all
        for i, user_id in enumerate(body.members):
            if user_id not in active:
                why = "not an active user of your company"
                raise Invalid(("body", "members", i), why, "unknown_user")
        team = Team(name=body.name.strip())
        teams = TeamRepository(session, scope)
        await _insert(session, lambda: teams.add(team), f"A team named {team.name!r} exists.")
        members = MemberRepository(session, scope)
        rows = [TeamMember(team_id=team.id, user_id=u, slot=i) for i, u in enumerate(body.members)]
        for row in rows:
            members.add(row)
            forget_context(session, scope.tenant_id, row.user_id)
        await session.flush()
        await session.refresh(team, ["created_at"])
        return _team_out(team, rows)

    async def context(self, reader_session: AsyncSession, principal: Principal) -> UserContext:
        """The caller's tenant, role, teams, regions and zones: one query, cached 15 min."""

        async def load() -> UserContext:
            rows = await ContextRepository(reader_session, principal.scope).of(principal.id)
            teams = {r.team_id: r.team_name for r in rows}
            regions = {r.region_id: r.region_name for r in rows if r.region_id is not None}
            zones = {r.zone_id: (r.zone_code, r.region_id) for r in rows if r.zone_id is not None}
            return UserContext(
                user_id=principal.id,
                tenant=ContextTenant(
                    id=principal.tenant_id, slug=principal.tenant_slug, name=principal.tenant_name
                ),
                role=principal.role,
                teams=[Named(id=i, name=n) for i, n in teams.items()],
                regions=[Named(id=i, name=n) for i, n in regions.items()],
                zones=[ContextZone(id=i, code=c, region_id=r) for i, (c, r) in zones.items()],
            )

        cache = self.platform.caches.cache(CONTEXT_CACHE)
        found = await cache.get_or_load(f"{principal.tenant_id}:{principal.id}", load)
        assert found is not None  # `load` never answers None
        return found

    async def members(
        self, session: AsyncSession, scope: TenantScope, team_id: uuid.UUID
    ) -> list[uuid.UUID]:
        """A team's members in slot order."""
        found = await MemberRepository(session, scope).of([team_id])
        return [m.user_id for m in found.get(team_id, [])]

    async def demo_zones(self, session: AsyncSession, scope: TenantScope) -> list[DemoZone]:
        """The company's zones with their teams' members, for demo data; a demo set of
        regions, teams and zones is made first when it has none (`territories/demo.py`)."""
        from tenantry.territories.demo import demo_zones  # it builds on this service

        return await demo_zones(self, session, scope)

    # --- zones --------------------------------------------------------------------------

    async def zones(self, session: AsyncSession, scope: TenantScope) -> list[ZoneOut]:
        return [ZoneOut.model_validate(z) for z in await ZoneRepository(session, scope).all()]

    async def create_zone(
        self, session: AsyncSession, scope: TenantScope, body: ZoneCreate
    ) -> ZoneOut:
        if await RegionRepository(session, scope).get(body.region_id) is None:
            raise NotFound("No such region in your company.")
        if body.team_id and await TeamRepository(session, scope).get(body.team_id) is None:
            raise NotFound("No such team in your company.")
        zone = Zone(**body.model_dump())
        zones = ZoneRepository(session, scope)
        await _insert(session, lambda: zones.add(zone), f"A zone coded {zone.code!r} exists.")
        await session.refresh(zone, ["created_at"])
        invalidate_on_commit(session, ZONES_CACHE.name, str(scope.tenant_id))
        return ZoneOut.model_validate(zone)

    async def resolve(self, scope: TenantScope, postal_code: str) -> Resolved | None:
        """The zone of a postal code (longest prefix), from the tenant's cached table."""
        cache = self.platform.caches.cache(ZONES_CACHE)

        async def load() -> ZoneTable:
            async with session_scope(self.platform.db.sessionmaker) as session:
                return ZoneTable.of(await ZoneRepository(session, scope).all())

        table = await cache.get_or_load(str(scope.tenant_id), load)
        return table.resolve(postal_code) if table is not None else None

    async def preload(self) -> int:
        """Every tenant's zone table into the cache, in one query; how many tenants."""
        cache = self.platform.caches.cache(ZONES_CACHE)
        async with session_scope(self.platform.db.sessionmaker) as session:
            every = await ZoneDirectory(session).every()
        for tenant_id, zones in every.items():
            cache.put_local(str(tenant_id), ZoneTable.of(zones))
        return len(every)
