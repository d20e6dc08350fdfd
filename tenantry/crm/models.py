"""A tenant's customers and their leads. Rows imported by a sync keep the source's id for
them (`source_id`, `external_id`), so a second import updates instead of duplicating."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.kit.models import Base, CreatedAtMixin, TenantOwned

# What a customer search matches (`CustomerRepository.search_text` builds the same expression).
SEARCH = "lower(name || ' ' || coalesce(email, '') || ' ' || coalesce(phone, ''))"


class Customer(TenantOwned, CreatedAtMixin, Base):
    __tablename__ = "customers"
    __table_args__ = (
        # The upsert's conflict target; NULLs are distinct, so customers made by hand never
        # conflict with each other.
        UniqueConstraint("tenant_id", "source_id", "external_id"),
        # `?q=`: trigrams of name, email and phone within the tenant (migration 0011)
        Index(
            "ix_customers_search",
            "tenant_id",
            text(SEARCH + " gin_trgm_ops"),
            postgresql_using="gin",
        ),
    )

    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(50))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    zone_id: Mapped[uuid.UUID | None] = mapped_column()
    source_id: Mapped[uuid.UUID | None] = mapped_column()
    external_id: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class Lead(TenantOwned, CreatedAtMixin, Base):
    __tablename__ = "leads"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            ondelete="CASCADE",
        ),
        # NO ACTION: checked at the end of the statement, so a tenant's deletion (cascading
        # to its users and its leads alike) goes through; users are deactivated, not deleted.
        ForeignKeyConstraint(["tenant_id", "assigned_user_id"], ["users.tenant_id", "users.id"]),
        UniqueConstraint("tenant_id", "source_id", "external_id"),
        # By status, newest first (DESIGN.md; PostgreSQL reads the index backwards for DESC).
        Index("ix_leads_tenant_id_status_created_at", "tenant_id", "status", "created_at"),
        Index("ix_leads_tenant_id_customer_id", "tenant_id", "customer_id"),
        # The list's filters, each in the list's order (its cursor is the id), so a page of a
        # rare status, a small team or one person's leads is a range, not a walk of them all.
        Index("ix_leads_tenant_id_status_id", "tenant_id", "status", "id"),
        Index("ix_leads_tenant_id_team_id_id", "tenant_id", "team_id", "id"),
        Index("ix_leads_tenant_id_assigned_user_id_id", "tenant_id", "assigned_user_id", "id"),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))  # how it came: "manual", "sync", "api"
    team_id: Mapped[uuid.UUID | None] = mapped_column()
    assigned_user_id: Mapped[uuid.UUID | None] = mapped_column()
    value: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    source_id: Mapped[uuid.UUID | None] = mapped_column()
    external_id: Mapped[str | None] = mapped_column(String(200))
    # How a new lead found its team and assignee (zone, rule), as decided when it was made.
    routing: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class LeadStatusHistory(TenantOwned, CreatedAtMixin, Base):
    """Each status a lead was given, by whom, in the transaction that changed it."""

    __tablename__ = "lead_status_history"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "lead_id"], ["leads.tenant_id", "leads.id"], ondelete="CASCADE"
        ),
        # A lead's timeline, newest first.
        Index(
            "ix_lead_status_history_tenant_id_lead_id_created_at",
            "tenant_id",
            "lead_id",
            "created_at",
        ),
    )

    lead_id: Mapped[uuid.UUID] = mapped_column()
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    changed_by: Mapped[uuid.UUID | None] = mapped_column()  # a user; None: a sync or the system


class Call(TenantOwned, CreatedAtMixin, Base):
    """A phone call with a customer (and the lead it was about, if any)."""

    __tablename__ = "call_log"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            ondelete="CASCADE",
        ),
        # NO ACTION: checked at the end of the statement, so a customer's deletion (cascading
        # to its leads and its calls alike) goes through.
        ForeignKeyConstraint(["tenant_id", "lead_id"], ["leads.tenant_id", "leads.id"]),
        # By status (DESIGN.md; and in the list's id order); a customer's calls, newest first
        # (intelligence).
        Index("ix_call_log_tenant_id_status_created_at", "tenant_id", "status", "created_at"),
        Index("ix_call_log_tenant_id_status_id", "tenant_id", "status", "id"),
        Index(
            "ix_call_log_tenant_id_customer_id_created_at", "tenant_id", "customer_id", "created_at"
        ),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column()
    lead_id: Mapped[uuid.UUID | None] = mapped_column()
    direction: Mapped[str] = mapped_column(String(16))  # inbound | outbound
    status: Mapped[str] = mapped_column(String(16))  # completed | missed | voicemail | failed
    duration_s: Mapped[int] = mapped_column(Integer, default=0)


class Message(TenantOwned, CreatedAtMixin, Base):
    """A message to or from a customer on one channel."""

    __tablename__ = "messages"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            ondelete="CASCADE",
        ),
        # A number's thread (DESIGN); a customer's conversation, newest first.
        Index("ix_messages_tenant_id_to_number_created_at", "tenant_id", "to_number", "created_at"),
        Index(
            "ix_messages_tenant_id_customer_id_created_at", "tenant_id", "customer_id", "created_at"
        ),
    )

    customer_id: Mapped[uuid.UUID] = mapped_column()
    channel: Mapped[str] = mapped_column(String(16))  # whatsapp | sms | email
    to_number: Mapped[str | None] = mapped_column(String(320))  # a number, or an address
    direction: Mapped[str] = mapped_column(String(16))  # inbound | outbound
    body: Mapped[str] = mapped_column(Text)
