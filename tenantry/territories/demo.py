"""Demo territories: when a company has no zones yet, demo data (`tenantry seed --customers`)
gives it four Spanish ones, in three regions, each owned by a team of the company's active
users (dealt round-robin), so demo leads can be spread over territories, teams and people."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.repository import TenantScope
from tenantry.territories.schemas import DemoZone, RegionCreate, TeamCreate, ZoneCreate
from tenantry.users.service import UsersService

if TYPE_CHECKING:
    from tenantry.territories.service import TerritoriesService

# (region, team, zone code, postal-code prefixes)
DEMO = (
    ("Madrid", "Madrid Centro", "MAD-C", ["280", "281"]),
    ("Madrid", "Madrid Norte", "MAD-N", ["282", "283", "284", "285", "286", "287", "288"]),
    ("Cataluña", "Barcelona", "BCN", ["080", "081", "082", "083", "084"]),
    ("Valencia", "Valencia", "VLC", ["460", "461", "462", "463", "464", "465", "466"]),
)
MAX_MEMBERS = 100  # a team's limit (`TeamCreate.members`)


async def demo_zones(
    territories: TerritoriesService, session: AsyncSession, scope: TenantScope
) -> list[DemoZone]:
    zones = await territories.zones(session, scope)
    if not zones:
        users = await territories.platform.service(UsersService).page(
            session, scope, page=1, per_page=len(DEMO) * MAX_MEMBERS
        )
        active = [u.id for u in users.items if u.is_active]
        regions = {r.name: r.id for r in await territories.regions(session, scope)}
        teams = {t.name: t.id for t in await territories.teams(session, scope)}
        for i, (region, team, code, prefixes) in enumerate(DEMO):
            if region not in regions:
                made = await territories.create_region(session, scope, RegionCreate(name=region))
                regions[region] = made.id
            if team not in teams:
                body = TeamCreate(name=team, members=active[i :: len(DEMO)][:MAX_MEMBERS])
                teams[team] = (await territories.create_team(session, scope, body)).id
            zone = ZoneCreate(
                region_id=regions[region], code=code, postal_prefixes=prefixes, team_id=teams[team]
            )
            await territories.create_zone(session, scope, zone)
        zones = await territories.zones(session, scope)
    teams_now = await territories.teams(session, scope)
    by_team = {t.id: [m.user_id for m in t.members] for t in teams_now}
    return [
        DemoZone(
            prefixes=z.postal_prefixes,
            team_id=z.team_id,
            members=by_team.get(z.team_id, []) if z.team_id else [],
        )
        for z in zones
    ]
