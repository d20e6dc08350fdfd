"""Tenant scoping, in one place.

Every repository of a tenant-owned table derives from `TenantRepository`, which cannot be built
without a `TenantScope`, and starts every statement from `self.select()` / `self.scoped()`,
which add `tenant_id = :scope`. A row of another tenant is therefore simply not found: the API
answers 404, never 403 and never the data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from tenantry.kit.db import LeanQuery, reader_of
from tenantry.kit.models import Base, TenantScoped


@dataclass(frozen=True, slots=True)
class TenantScope:
    tenant_id: uuid.UUID


M = TypeVar("M", bound=Base)


class TenantRepository(Generic[M]):
    model: type[M]
    session: AsyncSession
    scope: TenantScope

    def __init__(self, session: AsyncSession, scope: TenantScope) -> None:
        if not isinstance(scope, TenantScope):
            raise TypeError("a tenant repository needs a TenantScope")
        if not issubclass(self.model, TenantScoped):
            raise TypeError(f"{self.model.__name__} is not tenant-scoped")
        self.session = session
        self.scope = scope

    def tenant_filter(self, model: type[Any] | None = None) -> ColumnElement[bool]:
        column: Any = getattr(model or self.model, "tenant_id")  # noqa: B009 - typed as Any
        return column == self.scope.tenant_id  # type: ignore[no-any-return]

    @classmethod
    def lean(cls, *columns: Any) -> Select[Any]:
        """A statement for the lean read path (`LeanQuery.of(...)`, built once at import),
        scoped by a `tenant_id` parameter that `read_one`/`read_all` always fill in."""
        tenant_column: Any = getattr(cls.model, "tenant_id")  # noqa: B009
        return select(*columns).where(tenant_column == bindparam("tenant_id"))

    async def read_one(self, query: LeanQuery, **params: Any) -> Any | None:
        return await reader_of(self.session).one_in(
            self.session, query, **self._scoped(query, params)
        )

    async def read_all(self, query: LeanQuery, **params: Any) -> list[Any]:
        return await reader_of(self.session).all_in(
            self.session, query, **self._scoped(query, params)
        )

    def _scoped(self, query: LeanQuery, params: dict[str, Any]) -> dict[str, Any]:
        if "tenant_id" not in query.names:
            raise ValueError("a tenant repository's lean query must filter by tenant_id")
        return {**params, "tenant_id": self.scope.tenant_id}

    def select(self, *columns: Any) -> Select[Any]:
        """`SELECT ... FROM <model> WHERE tenant_id = :scope`; columns default to the entity."""
        stmt = select(*columns) if columns else select(self.model)
        return stmt.where(self.tenant_filter())

    async def get(self, id_: uuid.UUID) -> M | None:
        id_column: Any = getattr(self.model, "id")  # noqa: B009
        result = await self.session.execute(self.select().where(id_column == id_))
        entity: M | None = result.scalar_one_or_none()
        return entity

    def add(self, entity: M) -> M:
        setattr(entity, "tenant_id", self.scope.tenant_id)  # noqa: B010
        self.session.add(entity)
        return entity
