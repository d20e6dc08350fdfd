"""A company's territories: regions made of zones (each a set of postal-code prefixes), and
the teams that own zones and so the leads whose customers live in them."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKeyConstraint, Index, Integer, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.kit.models import Base, CreatedAtMixin, TenantOwned


class Region(TenantOwned, CreatedAtMixin, Base):
    __tablename__ = "regions"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(100))


class Team(TenantOwned, CreatedAtMixin, Base):
    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(100))


class TeamMember(TenantOwned, CreatedAtMixin, Base):
    """A user in a team; `slot` orders the members of a team."""

    __tablename__ = "team_members"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "team_id"], ["teams.tenant_id", "teams.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["tenant_id", "user_id"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
        UniqueConstraint("tenant_id", "team_id", "user_id"),
        # A user's teams (their context).
        Index("ix_team_members_tenant_id_user_id", "tenant_id", "user_id"),
    )

    team_id: Mapped[uuid.UUID] = mapped_column()
    user_id: Mapped[uuid.UUID] = mapped_column()
    slot: Mapped[int] = mapped_column(Integer, default=0)


class Zone(TenantOwned, CreatedAtMixin, Base):
    """Postal codes starting with any of `postal_prefixes`, in a region, owned by a team."""

    __tablename__ = "zones"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "region_id"], ["regions.tenant_id", "regions.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(["tenant_id", "team_id"], ["teams.tenant_id", "teams.id"]),
        UniqueConstraint("tenant_id", "code"),
    )

    region_id: Mapped[uuid.UUID] = mapped_column()
    code: Mapped[str] = mapped_column(String(32))
    postal_prefixes: Mapped[list[str]] = mapped_column(ARRAY(String(20)))
    team_id: Mapped[uuid.UUID | None] = mapped_column()
