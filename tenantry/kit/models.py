"""Declarative base: naming convention, UUIDv7 keys, timestamps, and the tenant markers.

Tenancy is part of the schema, not only of the queries: a tenant-owned table is keyed on
`(tenant_id, id)` and a reference between tenant-scoped tables carries `tenant_id` (a composite
foreign key), so PostgreSQL itself refuses a row that points at another tenant's row, a scoped
lookup by id is one index probe, and the schema can be distributed by tenant (Citus, with
`tenant_id` as the distribution column) unchanged. `tests/kit/test_model_rules.py` holds every
table to this.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, ForeignKey, MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from tenantry.kit.ids import new_id

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    # Every column of the key: the composite references between tenant-scoped tables all
    # start with tenant_id, so the first column alone would name two of them alike. For a
    # one-column key this is the same name as `column_0_name`.
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdMixin:
    """`id`, a UUIDv7, as the whole primary key: platform tables (tenants, users)."""

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id)


class CreatedAtMixin:
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )


def _tenant_fk() -> ForeignKey:
    return ForeignKey("tenants.id", ondelete="CASCADE")


class TenantScoped:
    """The table's rows belong to a tenant: `tenant_id` (NOT NULL, references tenants.id,
    deleted with the tenant), and it is read through a tenant repository
    (`kit.repository.TenantRepository`), which filters every statement by the caller's tenant.

    On its own this says nothing about the primary key: it is the marker for a platform table
    whose rows still belong to a tenant, such as users (see `users.models.User`). Such a table
    must carry a UNIQUE `(tenant_id, id)` so that tenant-owned tables can reference its rows
    together with their tenant. New tables want `TenantOwned`.
    """

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:  # noqa: N805 - declared_attr receives the class
        return mapped_column(_tenant_fk(), nullable=False)


class TenantOwned(TenantScoped):
    """A tenant's data: `TenantScoped`, and the primary key is `(tenant_id, id)`, in that
    order, with `id` a UUIDv7. Derive from this alone (not also `IdMixin`): it declares both
    columns, first in the table.

    Why the tenant leads the key: a scoped lookup by id (`tenant_id = :t AND id = :id`) is one
    probe of the primary key; every row of one tenant sits together in the index; another
    table references a row with `(tenant_id, <ref>_id) -> (tenant_id, id)`, so a row can only
    point at a row of its own tenant; and `tenant_id` can be the distribution column. The
    table's other indexes start with `tenant_id` too.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if issubclass(cls, IdMixin):
            raise TypeError(
                f"{cls.__name__}: TenantOwned declares the key (tenant_id, id); drop IdMixin"
            )
        super().__init_subclass__(**kwargs)

    # sort_order puts both columns first in the table, tenant_id before id, and with them the
    # primary key, which follows the table's column order.
    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:  # noqa: N805 - declared_attr receives the class
        return mapped_column(_tenant_fk(), primary_key=True, sort_order=-2)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=new_id, sort_order=-1)
