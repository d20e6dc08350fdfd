"""Every query of the CRM domain."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Label,
    String,
    bindparam,
    func,
    literal_column,
    text,
    true,
)

from tenantry.crm.models import Call, Customer, Lead, LeadStatusHistory, Message
from tenantry.kit.db import LeanQuery
from tenantry.kit.ids import new_id
from tenantry.kit.repository import PlatformRepository, TenantRepository

# `xmax` is 0 on a row version no transaction has touched before: the row the upsert has
# just inserted, not one it updated (PostgreSQL's own bookkeeping; no extra read).
_INSERTED: Label[bool] = literal_column("xmax = 0", Boolean).label("inserted")


def _like(q: str) -> str:
    """`q` as a substring pattern, its own `%`, `_` and `\\` taken literally."""
    escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class CustomerRepository(TenantRepository[Customer]):
    model = Customer

    @staticmethod
    def search_text() -> ColumnElement[str]:
        """What `?q=` searches: name, email and phone, lowercased; the GIN trigram index
        `ix_customers_search` (`crm.models.SEARCH`, migration 0011) is on exactly this."""
        return func.lower(
            Customer.name
            + " "
            + func.coalesce(Customer.email, "")
            + " "
            + func.coalesce(Customer.phone, "")
        )

    async def newest(self, *, q: str | None, after: uuid.UUID | None, limit: int) -> list[Any]:
        """Up to `limit` customers, newest first, older than `after`, matching `q`: one
        statement (an index range on the key, or the trigram index for `q`)."""
        stmt = self.select().order_by(Customer.id.desc()).limit(limit)
        if after is not None:
            stmt = stmt.where(Customer.id < after)
        if q:
            stmt = stmt.where(self.search_text().like(_like(q), escape="\\"))
        return list((await self.session.execute(stmt)).scalars())

    async def lean_by_id(self, customer_id: uuid.UUID) -> Any | None:
        """The customer's columns on the lean path (no transaction, no ORM entity)."""
        return await self.read_one(_CUSTOMER_BY_ID, id=customer_id)

    async def remove(self, customer_id: uuid.UUID) -> bool:
        stmt = self.delete().where(Customer.id == customer_id)
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]

    async def upsert_imported(self, source_id: uuid.UUID, rows: list[dict[str, Any]]) -> list[Any]:
        """Insert or update the source's customers in one statement, keyed on the source's
        ids: for each, its row (`external_id`, `id`, the fields) and whether it is new
        (`inserted`)."""
        if not rows:
            return []
        stmt = self.insert([{**row, "id": new_id(), "source_id": source_id} for row in rows])
        upsert = stmt.on_conflict_do_update(
            index_elements=[Customer.tenant_id, Customer.source_id, Customer.external_id],
            set_={
                "name": stmt.excluded.name,
                "email": stmt.excluded.email,
                "phone": stmt.excluded.phone,
                "postal_code": stmt.excluded.postal_code,
                "updated_at": func.now(),
            },
        ).returning(
            Customer.external_id,
            Customer.id,
            Customer.name,
            Customer.email,
            Customer.phone,
            Customer.postal_code,
            _INSERTED,
        )
        return list((await self.session.execute(upsert)).all())


_CUSTOMER_BY_ID = LeanQuery.of(
    CustomerRepository.lean(
        Customer.id,
        Customer.name,
        Customer.email,
        Customer.phone,
        Customer.postal_code,
        Customer.zone_id,
        Customer.source_id,
        Customer.external_id,
        Customer.created_at,
        Customer.updated_at,
    ).where(Customer.id == bindparam("id"))
)


class LeadRepository(TenantRepository[Lead]):
    model = Lead

    async def newest(
        self,
        *,
        status: str | None,
        team_id: uuid.UUID | None,
        assignee: uuid.UUID | None,
        q: str | None,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[Any]:
        """Up to `limit` leads with their customer's name, newest first: one statement (the
        customer joined on the tenant's key; `q` through the customers' trigram index)."""
        stmt = (
            self.select(*_LEAD_COLUMNS, Customer.name.label("customer_name"))
            .join(
                Customer,
                (Customer.tenant_id == Lead.tenant_id) & (Customer.id == Lead.customer_id),
            )
            .order_by(Lead.id.desc())
            .limit(limit)
        )
        if after is not None:
            stmt = stmt.where(Lead.id < after)
        if status is not None:
            stmt = stmt.where(Lead.status == status)
        if team_id is not None:
            stmt = stmt.where(Lead.team_id == team_id)
        if assignee is not None:
            stmt = stmt.where(Lead.assigned_user_id == assignee)
        if q:
            stmt = stmt.where(CustomerRepository.search_text().like(_like(q), escape="\\"))
        return list((await self.session.execute(stmt)).all())

    async def open_counts(
        self, user_ids: list[uuid.UUID], closed: list[str]
    ) -> dict[uuid.UUID, int]:
        """How many leads not in a `closed` status each user is assigned: one statement."""
        stmt = (
            self.select(Lead.assigned_user_id, func.count())
            .where(Lead.assigned_user_id.in_(user_ids), Lead.status.not_in(closed))
            .group_by(Lead.assigned_user_id)
        )
        return {u: int(n) for u, n in (await self.session.execute(stmt)).all()}

    async def one(self, lead_id: uuid.UUID) -> Any | None:
        """A lead with its customer's name, or None."""
        stmt = (
            self.select(*_LEAD_COLUMNS, Customer.name.label("customer_name"))
            .join(
                Customer,
                (Customer.tenant_id == Lead.tenant_id) & (Customer.id == Lead.customer_id),
            )
            .where(Lead.id == lead_id)
        )
        return (await self.session.execute(stmt)).first()

    async def upsert_imported(self, source_id: uuid.UUID, rows: list[dict[str, Any]]) -> list[Any]:
        """Insert or update the source's leads in one statement: for each, its row (`id`,
        `external_id`, `customer_id`, `status`, `value`), whether it is new (`inserted`) and
        the status it had before (`previous_status`, None when new)."""
        if not rows:
            return []
        # The statement's snapshot is taken before its insert: this reads the old statuses.
        before = (
            self.select(Lead.external_id, Lead.status)
            .where(
                Lead.source_id == source_id,
                Lead.external_id.in_([row["external_id"] for row in rows]),
            )
            .cte("before")
        )
        # Each returned row's old status, from the scoped CTE above. Correlated by hand:
        # SQLAlchemy does not correlate a subquery in RETURNING with the table inserted into.
        previous_status = literal_column(
            "(SELECT before.status FROM before WHERE before.external_id = leads.external_id)",
            String,
        ).label("previous_status")
        stmt = self.insert(
            [{**row, "id": new_id(), "source_id": source_id, "source": "sync"} for row in rows]
        )
        upsert = (
            stmt.on_conflict_do_update(
                index_elements=[Lead.tenant_id, Lead.source_id, Lead.external_id],
                set_={
                    "customer_id": stmt.excluded.customer_id,
                    "status": stmt.excluded.status,
                    "value": stmt.excluded.value,
                    "updated_at": func.now(),
                },
            )
            .add_cte(before)
            .returning(
                Lead.id,
                Lead.external_id,
                Lead.customer_id,
                Lead.status,
                Lead.value,
                _INSERTED,
                previous_status,
            )
        )
        return list((await self.session.execute(upsert)).all())


_LEAD_COLUMNS = (
    Lead.id,
    Lead.customer_id,
    Lead.status,
    Lead.source,
    Lead.team_id,
    Lead.assigned_user_id,
    Lead.value,
    Lead.created_at,
    Lead.updated_at,
)


class HistoryRepository(TenantRepository[LeadStatusHistory]):
    model = LeadStatusHistory

    def record(self, lead_id: uuid.UUID, old: str | None, new: str, by: uuid.UUID | None) -> None:
        self.add(LeadStatusHistory(lead_id=lead_id, from_status=old, to_status=new, changed_by=by))

    async def of(self, lead_id: uuid.UUID) -> list[LeadStatusHistory]:
        stmt = (
            self.select()
            .where(LeadStatusHistory.lead_id == lead_id)
            .order_by(LeadStatusHistory.created_at.desc(), LeadStatusHistory.id.desc())
        )
        return list((await self.session.execute(stmt)).scalars())


class CallRepository(TenantRepository[Call]):
    model = Call

    async def newest(
        self, *, status: str | None, after: uuid.UUID | None, limit: int
    ) -> list[Call]:
        stmt = self.select().order_by(Call.id.desc()).limit(limit)
        if status is not None:
            stmt = stmt.where(Call.status == status)
        if after is not None:
            stmt = stmt.where(Call.id < after)
        return list((await self.session.execute(stmt)).scalars())


class InsightRepository(TenantRepository[Customer]):
    """The customer-intelligence page on the lean path."""

    model = Customer

    async def page(self, *, after: uuid.UUID | None, limit: int) -> list[Any]:
        """Up to `limit` customers, newest first, older than `after`, each with its number
        of leads and calls, its newest lead and its last call: one statement (the page by
        its key, then two lateral lookups per customer, each on a (tenant, customer) index),
        every table in it filtered by the tenant."""
        return await self.read_all(_INSIGHTS, after=after or _PAST_EVERY_ID, limit=limit)


_PAST_EVERY_ID = uuid.UUID(int=(1 << 128) - 1)  # the first page: `id <` this is every id
# Each customer's newest lead and last call, with the customer's number of each (the window
# counts before the LIMIT).
_LATEST_LEAD = (
    LeadRepository.lean(
        Lead.id, Lead.status, Lead.value, Lead.created_at, func.count().over().label("n")
    )
    .where(Lead.customer_id == Customer.id)
    .order_by(Lead.created_at.desc(), Lead.id.desc())
    .limit(1)
    .lateral()
)
_LAST_CALL = (
    CallRepository.lean(
        Call.id,
        Call.status,
        Call.direction,
        Call.duration_s,
        Call.created_at,
        func.count().over().label("n"),
    )
    .where(Call.customer_id == Customer.id)
    .order_by(Call.created_at.desc(), Call.id.desc())
    .limit(1)
    .lateral()
)
_INSIGHTS = LeanQuery.of(
    InsightRepository.lean(
        Customer.id,
        Customer.name,
        Customer.email,
        Customer.phone,
        func.coalesce(_LATEST_LEAD.c.n, 0).label("leads_count"),
        _LATEST_LEAD.c.id.label("lead_id"),
        _LATEST_LEAD.c.status.label("lead_status"),
        _LATEST_LEAD.c.value.label("lead_value"),
        _LATEST_LEAD.c.created_at.label("lead_created_at"),
        func.coalesce(_LAST_CALL.c.n, 0).label("calls_count"),
        _LAST_CALL.c.id.label("call_id"),
        _LAST_CALL.c.status.label("call_status"),
        _LAST_CALL.c.direction.label("call_direction"),
        _LAST_CALL.c.duration_s.label("call_duration_s"),
        _LAST_CALL.c.created_at.label("call_created_at"),
    )
    .select_from(Customer)
    .outerjoin(_LATEST_LEAD, true())
    .outerjoin(_LAST_CALL, true())
    .where(Customer.id < bindparam("after"))
    .order_by(Customer.id.desc())
    .limit(bindparam("limit"))
)


class MessageRepository(TenantRepository[Message]):
    model = Message

    async def conversation(
        self, customer_id: uuid.UUID, *, channel: str | None, after: uuid.UUID | None, limit: int
    ) -> list[Message]:
        stmt = (
            self.select()
            .where(Message.customer_id == customer_id)
            .order_by(Message.id.desc())
            .limit(limit)
        )
        if channel is not None:
            stmt = stmt.where(Message.channel == channel)
        if after is not None:
            stmt = stmt.where(Message.id < after)
        return list((await self.session.execute(stmt)).scalars())


class DemoLoader(PlatformRepository[Customer]):
    unscoped_because = (
        "`tenantry seed --customers` loads demo rows into one company named by its slug, from"
        " the command line, before any request or tenant scope exists"
    )
    model = Customer

    async def company(self, slug: str) -> tuple[uuid.UUID, list[str]] | None:
        """(tenant id, its lead statuses), or None."""
        row = (
            await self.session.execute(
                text(
                    "SELECT t.id, s.lead_statuses"
                    " FROM tenants t JOIN tenant_settings s ON s.tenant_id = t.id"
                    " WHERE t.slug = :slug"
                ),
                {"slug": slug},
            )
        ).first()
        return None if row is None else (row[0], list(row[1] or []))

    async def analyze(self, tables: list[str]) -> None:
        """Fresh planner statistics after a bulk load (autovacuum would get there later; until
        then the planner guesses, and guessed badly by a thousandfold at 100,000 rows)."""
        for table in tables:
            await self.session.execute(text(f'ANALYZE "{table}"'))

    async def copy(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """COPY `rows` into `table`, in this session's transaction."""
        raw = await (await self.session.connection()).get_raw_connection()
        driver: Any = raw.driver_connection  # asyncpg's, for COPY
        await driver.copy_records_to_table(table, records=rows, columns=columns)
