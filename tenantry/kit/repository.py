"""The data-access contract: every query of the application runs in a repository, of one of
two kinds.

- `TenantRepository` (the default): built with a `TenantScope`, and every statement starts
  from its helpers (`select`, `update`, `delete`, `lean`), which add `tenant_id = :scope`. A
  row of another tenant is therefore simply not found: the API answers 404, never 403 and
  never the data. Its model must be tenant-scoped (`kit.models.TenantScoped`).
- `PlatformRepository`: deliberately unscoped, for what must run before a tenant is known or
  across tenants (a login by email, provisioning, platform staff, a flush over every tenant's
  keys). Each one says why in its `unscoped_because`; they are few, and a test lists them.

Both run writes and rich reads through the ORM session (`self.session`) and hot reads on the
lean path (`LeanQuery` statements built once at import, run with `read_one`/`read_all`
straight on the driver). A repository is built on the request's `AsyncSession`, or on the
database's `Reader` when it only reads committed data for a cache loader (no session, no
transaction). `page_of` is the one paging helper: the page and its total in one round trip.

`tests/kit/test_data_access.py` walks the package and fails when code outside a repository
queries a tenant-scoped model, when a repository of one is neither kind, or when a tenant
repository builds a statement without its scope.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import (
    Delete,
    Select,
    Table,
    Update,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from tenantry.kit.db import LeanQuery, Reader, reader_of
from tenantry.kit.models import TenantScoped


@dataclass(frozen=True, slots=True)
class TenantScope:
    """Whose data a tenant repository may see: the caller's tenant, from the principal."""

    tenant_id: uuid.UUID


M = TypeVar("M")


class _Repository(Generic[M]):
    """What both kinds share: the session or reader they run on, the lean path, paging."""

    model: ClassVar[Any]

    def __init__(self, source: AsyncSession | Reader) -> None:
        if isinstance(source, AsyncSession):
            self._session: AsyncSession | None = source
            self._reader = reader_of(source)
        else:
            self._session = None
            self._reader = source

    @property
    def session(self) -> AsyncSession:
        """The unit of work; a repository built on a `Reader` has none (it reads committed
        data for a cache)."""
        if self._session is None:
            raise TypeError(
                f"{type(self).__name__} was built on a Reader: it can only run lean reads"
            )
        return self._session

    def _params(self, query: LeanQuery, params: dict[str, Any]) -> dict[str, Any]:
        return params

    async def read_one(self, query: LeanQuery, **params: Any) -> Any | None:
        """One row of a lean query (an asyncpg Record), or None."""
        args = self._params(query, params)
        if self._session is None:
            return await self._reader.one(query, **args)
        return await self._reader.one_in(self._session, query, **args)

    async def read_all(self, query: LeanQuery, **params: Any) -> list[Any]:
        args = self._params(query, params)
        if self._session is None:
            return await self._reader.all(query, **args)
        return await self._reader.all_in(self._session, query, **args)

    async def page_of(
        self, query: LeanQuery, count: LeanQuery, *, offset: int, limit: int, **params: Any
    ) -> tuple[list[Any], int]:
        """A numbered page: `query` selects the rows with a `total` window count
        (`func.count().over().label("total")`) and takes `offset` and `limit` parameters;
        `count` counts the same filter (`n`), run only past the last page, where the window has
        no row to ride on. One round trip for every page but an empty one."""
        rows = await self.read_all(query, offset=offset, limit=limit, **params)
        if rows:
            return rows, int(rows[0]["total"])
        total = await self.read_one(count, **params)
        return [], int(total["n"]) if total is not None else 0


def tenant_column(model: Any) -> Any:
    """The `tenant_id` column of a mapped class or a Table (a read model over a view)."""
    return model.c.tenant_id if isinstance(model, Table) else model.tenant_id


class TenantRepository(_Repository[M]):
    """Queries of one tenant's data. Subclasses set `model` to a `TenantScoped` class (or, for
    a read model, a Table with a `tenant_id` column) and build every statement with the helpers
    below."""

    scope: TenantScope

    def __init__(self, source: AsyncSession | Reader, scope: TenantScope) -> None:
        if not isinstance(scope, TenantScope):
            raise TypeError("a tenant repository needs a TenantScope")
        model = self.model
        if not (isinstance(model, Table) and "tenant_id" in model.c) and not (
            isinstance(model, type) and issubclass(model, TenantScoped)
        ):
            raise TypeError(f"{model!r} is not tenant-scoped")
        super().__init__(source)
        self.scope = scope

    # --- statements, all scoped ---------------------------------------------------------------

    def tenant_filter(self, model: Any = None) -> ColumnElement[bool]:
        """`<model>.tenant_id = :scope`, for a joined tenant-scoped table too."""
        column: ColumnElement[Any] = tenant_column(model if model is not None else self.model)
        return column == self.scope.tenant_id

    def select(self, *columns: Any) -> Select[Any]:
        """`SELECT ... FROM <model> WHERE tenant_id = :scope`; columns default to the entity."""
        stmt = select(*columns) if columns else select(self.model)
        return stmt.where(self.tenant_filter())

    def update(self) -> Update:
        return update(self.model).where(self.tenant_filter())

    def insert(self, rows: list[dict[str, Any]]) -> PgInsert:
        """`INSERT INTO <model>` of `rows`, each with the scope's `tenant_id` (whatever it
        said): PostgreSQL's insert, so `on_conflict_do_update` is at hand for upserts."""
        tenant_id = self.scope.tenant_id
        return pg_insert(self.model).values([{**row, "tenant_id": tenant_id} for row in rows])

    async def insert_many(self, rows: list[dict[str, Any]]) -> None:
        """Insert `rows`, each with the scope's `tenant_id`, however many: SQLAlchemy sends
        them as multi-row INSERTs kept under the driver's parameter limit."""
        if rows:
            tenant_id = self.scope.tenant_id
            await self.session.execute(
                insert(self.model), [{**row, "tenant_id": tenant_id} for row in rows]
            )

    def delete(self) -> Delete:
        return delete(self.model).where(self.tenant_filter())

    @classmethod
    def lean(cls, *columns: Any) -> Select[Any]:
        """A statement for the lean path (`LeanQuery.of(...)`, built once at import), scoped by
        a `tenant_id` parameter that `read_one`/`read_all` always fill in from the scope."""
        return select(*columns).where(tenant_column(cls.model) == bindparam("tenant_id"))

    @classmethod
    def lean_count(cls) -> Select[Any]:
        """`count(*)` as `n` over the tenant's rows: `page_of`'s companion; add the same filters."""
        return cls.lean(func.count().label("n")).select_from(cls.model)

    def _params(self, query: LeanQuery, params: dict[str, Any]) -> dict[str, Any]:
        if "tenant_id" not in query.names:
            raise ValueError("a tenant repository's lean query must filter by tenant_id")
        return {**params, "tenant_id": self.scope.tenant_id}

    # --- entities -----------------------------------------------------------------------------

    async def get(self, id_: uuid.UUID) -> M | None:
        """The tenant's entity with this id, or None (also when it is another tenant's)."""
        result = await self.session.execute(self.select().where(self.model.id == id_))
        entity: M | None = result.scalar_one_or_none()
        return entity

    async def count_for_adding(self) -> int:
        """How many rows the tenant has, counted under a per-tenant lock on this table held
        until the transaction ends: a limit checked on this count holds against concurrent
        additions (each waits for the one before it to commit)."""
        key = f"{self.model.__tablename__}:{self.scope.tenant_id}"
        await self.session.execute(
            select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0)))
        )
        stmt = self.select(func.count()).select_from(self.model)
        return int((await self.session.execute(stmt)).scalar_one())

    async def newest_after(
        self, after: uuid.UUID | None, limit: int, *where: ColumnElement[bool]
    ) -> list[M]:
        """Up to `limit` of the tenant's entities matching `where`, newest first (by id, a
        UUIDv7), older than `after`: a cursor page (`kit.cursor`) in one statement, an index
        range on the key."""
        stmt = self.select().where(*where).order_by(self.model.id.desc()).limit(limit)
        if after is not None:
            stmt = stmt.where(self.model.id < after)
        return list((await self.session.execute(stmt)).scalars())

    async def entity_page(
        self,
        *,
        offset: int,
        limit: int,
        where: tuple[ColumnElement[bool], ...] = (),
        order_by: tuple[Any, ...] = (),
    ) -> tuple[list[M], int]:
        """A page of the tenant's entities matching `where`, in `order_by` (default: id, a
        UUIDv7, so creation order), with the total, in one statement (a window count); a
        count runs only past the last page."""
        stmt = (
            self.select(self.model, func.count().over().label("total"))
            .where(*where)
            .order_by(*(order_by or (self.model.id,)))
            .offset(offset)
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        if rows:
            return [r[0] for r in rows], int(rows[0].total)
        total = (await self.session.execute(self.select(func.count()).where(*where))).scalar_one()
        return [], int(total)

    def add(self, entity: M) -> M:
        """Stage a new entity in the tenant (its `tenant_id` is set from the scope)."""
        setattr(entity, "tenant_id", self.scope.tenant_id)  # noqa: B010
        self.session.add(entity)
        return entity


class PlatformRepository(_Repository[M]):
    """Deliberately unscoped queries. Subclasses say why in `unscoped_because` (checked by the
    data-access test), and build their statements themselves."""

    unscoped_because: ClassVar[str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not getattr(cls, "unscoped_because", "").strip():
            raise TypeError(f"{cls.__name__} must say why it is unscoped (unscoped_because)")
