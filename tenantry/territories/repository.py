"""Every query of the territories."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import select

from tenantry.kit.repository import PlatformRepository, TenantRepository
from tenantry.territories.models import Region, Team, TeamMember, Zone


class RegionRepository(TenantRepository[Region]):
    model = Region

    async def all(self) -> list[Region]:
        return list((await self.session.execute(self.select().order_by(Region.name))).scalars())


class TeamRepository(TenantRepository[Team]):
    model = Team

    async def all(self) -> list[Team]:
        return list((await self.session.execute(self.select().order_by(Team.name))).scalars())


class MemberRepository(TenantRepository[TeamMember]):
    model = TeamMember

    async def of(self, team_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[TeamMember]]:
        """The members of many teams in one statement, by team, in slot order."""
        if not team_ids:
            return {}
        stmt = (
            self.select()
            .where(TeamMember.team_id.in_(team_ids))
            .order_by(TeamMember.team_id, TeamMember.slot)
        )
        found: dict[uuid.UUID, list[TeamMember]] = defaultdict(list)
        for member in (await self.session.execute(stmt)).scalars():
            found[member.team_id].append(member)
        return found

    async def remove(self, team_id: uuid.UUID, user_id: uuid.UUID) -> bool:
        stmt = self.delete().where(TeamMember.team_id == team_id, TeamMember.user_id == user_id)
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]


class ContextRepository(TenantRepository[TeamMember]):
    model = TeamMember

    async def of(self, user_id: uuid.UUID) -> list[Any]:
        """The user's teams with their zones and the zones' regions: one statement."""
        stmt = (
            self.select(
                Team.id.label("team_id"),
                Team.name.label("team_name"),
                Zone.id.label("zone_id"),
                Zone.code.label("zone_code"),
                Region.id.label("region_id"),
                Region.name.label("region_name"),
            )
            .select_from(TeamMember)
            .join(Team, (Team.tenant_id == TeamMember.tenant_id) & (Team.id == TeamMember.team_id))
            .outerjoin(Zone, (Zone.tenant_id == Team.tenant_id) & (Zone.team_id == Team.id))
            .outerjoin(Region, (Region.tenant_id == Zone.tenant_id) & (Region.id == Zone.region_id))
            .where(TeamMember.user_id == user_id)
            .order_by(Team.name, Zone.code)
        )
        return list((await self.session.execute(stmt)).all())


class ZoneRepository(TenantRepository[Zone]):
    model = Zone

    async def all(self) -> list[Zone]:
        return list((await self.session.execute(self.select().order_by(Zone.code))).scalars())


class ZoneDirectory(PlatformRepository[Zone]):
    unscoped_because = (
        "the zones of every tenant are loaded into their caches once at start-up, so that no"
        " request (and never a login) waits for them"
    )
    model = Zone

    async def every(self) -> dict[uuid.UUID, list[Any]]:
        stmt = select(Zone).order_by(Zone.tenant_id)
        found: dict[uuid.UUID, list[Any]] = defaultdict(list)
        for zone in (await self.session.execute(stmt)).scalars():
            found[zone.tenant_id].append(zone)
        return found
