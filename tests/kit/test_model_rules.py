"""Rules every table and repository follows; these fail when a new one forgets.

The table rules are functions over a registry, run on the real one and, to show that they can
fail, on throwaway registries of deliberately broken models.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping

import pytest
from sqlalchemy import (
    Column,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry, relationship

from tenantry.kit.models import NAMING_CONVENTION, IdMixin, TenantOwned, TenantScoped
from tenantry.models import Base

# Indexes and unique constraints of tenant-scoped tables that serve platform-wide lookups, made
# before any tenant is known or across all of them; every other one starts with tenant_id.
PLATFORM_WIDE = {
    "ix_users_internal_created_at": "the internal staff list spans tenants",
    "uq_users_email": "a login is found by its email; logins are global",
    "uq_api_keys_key_hash": "a presented key is found by its hash before its tenant is known",
    "ix_audit_events_id": "platform administrators read every company's events, newest first",
}
# Platform tables that name a tenant without being owned by one (they exist before it).
NAMES_A_TENANT = {
    "onboarding_completions": "keyed on the onboarding session; names the tenant it created",
}


def _key(columns: object) -> str:
    return "(" + ", ".join(c.name for c in columns) + ")"  # type: ignore[attr-defined]


def tenancy_violations(
    reg: registry,
    *,
    platform_wide: Mapping[str, str] = PLATFORM_WIDE,
) -> list[str]:
    """What in `reg` breaks the tenancy rules of `kit.models` (empty when nothing does)."""
    models = {m.local_table: m.class_ for m in reg.mappers if m.inherits is None}
    scoped = {t for t, cls in models.items() if issubclass(cls, TenantScoped)}
    problems: list[str] = []
    for table in reg.metadata.sorted_tables:
        name = table.name
        if table not in scoped:
            if "tenant_id" in table.c and name not in NAMES_A_TENANT:
                problems.append(f"{name}: has tenant_id but is not a TenantScoped model")
            continue
        tenant_id = table.c.tenant_id
        if tenant_id.nullable:
            problems.append(f"{name}: tenant_id must be NOT NULL")
        if not any(
            fk.column.table.name == "tenants"
            and fk.column.name == "id"
            and fk.ondelete == "CASCADE"
            for fk in tenant_id.foreign_keys
        ):
            problems.append(f"{name}: tenant_id must reference tenants.id ON DELETE CASCADE")
        if issubclass(models[table], TenantOwned):
            pk = [c.name for c in table.primary_key.columns]
            if pk != ["tenant_id", "id"]:
                problems.append(
                    f"{name}: primary key is {_key(table.primary_key.columns)},"
                    " must be (tenant_id, id)"
                )
        for fk in table.foreign_key_constraints:
            if fk.referred_table not in scoped:
                continue
            pairs = {(e.parent.name, e.column.name) for e in fk.elements}
            if ("tenant_id", "tenant_id") not in pairs:
                problems.append(
                    f"{name}: foreign key {_key(fk.columns)} -> {fk.referred_table.name}"
                    f"{_key(e.column for e in fk.elements)} must carry tenant_id on both sides"
                )
        indexes: list[tuple[str | None, list[object]]] = [
            (i.name, list(i.expressions)) for i in table.indexes
        ]
        indexes += [
            (c.name, list(c.columns))  # type: ignore[misc]
            for c in table.constraints
            if isinstance(c, UniqueConstraint)
        ]
        for index_name, columns in indexes:
            if index_name in platform_wide:
                continue
            first = columns[0]
            if not (isinstance(first, Column) and first.name == "tenant_id"):
                problems.append(f"{name}: {index_name} must start with tenant_id")
    return problems


def lazy_violations(reg: registry) -> list[str]:
    """Relationships that would load on attribute access (an implicit query, or N+1)."""
    return [
        f"{rel} must be lazy='raise'; load explicitly"
        for mapper in reg.mappers
        for rel in mapper.relationships
        if rel.lazy != "raise"
    ]


def test_the_models_follow_the_tenancy_rules() -> None:
    assert tenancy_violations(Base.registry) == []


def test_every_relationship_is_lazy_raise() -> None:
    assert lazy_violations(Base.registry) == []


# --- the rules can fail: throwaway registries of broken models ----------------------------


def _throwaway() -> tuple[type[DeclarativeBase], list[type]]:
    """A base of its own, with the tenants and users tables as the real ones are keyed; and
    the classes, which the caller keeps (a registry holds its classes only weakly)."""

    class Throwaway(DeclarativeBase):
        metadata = MetaData(naming_convention=NAMING_CONVENTION)

    class Tenant(IdMixin, Throwaway):
        __tablename__ = "tenants"

    class User(IdMixin, TenantScoped, Throwaway):
        __tablename__ = "users"
        __table_args__ = (UniqueConstraint("tenant_id", "id"),)

    return Throwaway, [Tenant, User]


def _keyed_on_id_alone(base: type[DeclarativeBase]) -> list[type]:
    class Note(TenantOwned, base):  # type: ignore[valid-type,misc]
        __tablename__ = "notes"
        tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))

    return [Note]


def _keyed_id_first(base: type[DeclarativeBase]) -> list[type]:
    class Note(TenantOwned, base):  # type: ignore[valid-type,misc]
        __tablename__ = "notes"
        __table_args__ = (PrimaryKeyConstraint("id", "tenant_id"),)

    return [Note]


def _fk_to_users_id_alone(base: type[DeclarativeBase]) -> list[type]:
    class Note(TenantOwned, base):  # type: ignore[valid-type,misc]
        __tablename__ = "notes"
        author_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))

    return [Note]


def _fk_to_owned_id_alone(base: type[DeclarativeBase]) -> list[type]:
    class Note(TenantOwned, base):  # type: ignore[valid-type,misc]
        __tablename__ = "notes"

    class Comment(TenantOwned, base):  # type: ignore[valid-type,misc]
        __tablename__ = "comments"
        __table_args__ = (ForeignKeyConstraint(["note_id"], ["notes.id"]),)
        note_id: Mapped[uuid.UUID] = mapped_column()

    return [Note, Comment]


def _fk_with_tenant_id_mispaired(base: type[DeclarativeBase]) -> list[type]:
    class Note(TenantOwned, base):  # type: ignore[valid-type,misc]
        __tablename__ = "notes"
        __table_args__ = (
            ForeignKeyConstraint(["author_id", "tenant_id"], ["users.tenant_id", "users.id"]),
        )
        author_id: Mapped[uuid.UUID] = mapped_column()

    return [Note]


def _index_without_tenant_id_first(base: type[DeclarativeBase]) -> list[type]:
    class Note(TenantOwned, base):  # type: ignore[valid-type,misc]
        __tablename__ = "notes"
        __table_args__ = (Index(None, "title", "tenant_id"),)
        title: Mapped[str] = mapped_column()

    return [Note]


def _unique_without_tenant_id_first(base: type[DeclarativeBase]) -> list[type]:
    class Note(TenantOwned, base):  # type: ignore[valid-type,misc]
        __tablename__ = "notes"
        __table_args__ = (UniqueConstraint("title", "tenant_id"),)
        title: Mapped[str] = mapped_column()

    return [Note]


def _tenant_id_not_scoped(base: type[DeclarativeBase]) -> list[type]:
    class Note(IdMixin, base):  # type: ignore[valid-type,misc]
        __tablename__ = "notes"
        tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id"))

    return [Note]


def _tenant_id_on_a_plain_table(base: type[DeclarativeBase]) -> list[type]:
    Table("audit", base.metadata, Column("tenant_id", ForeignKey("tenants.id")))
    return []


def _nullable_tenant_id(base: type[DeclarativeBase]) -> list[type]:
    class Note(IdMixin, TenantScoped, base):  # type: ignore[valid-type,misc]
        __tablename__ = "notes"
        tenant_id: Mapped[uuid.UUID | None] = mapped_column(  # type: ignore[assignment]
            ForeignKey("tenants.id", ondelete="CASCADE")
        )

    return [Note]


BROKEN: dict[str, tuple[Callable[[type[DeclarativeBase]], list[type]], str]] = {
    "keyed on id alone": (
        _keyed_on_id_alone,
        "notes: primary key is (id), must be (tenant_id, id)",
    ),
    "keyed id first": (_keyed_id_first, "notes: primary key is (id, tenant_id), must be"),
    "fk to users.id alone": (
        _fk_to_users_id_alone,
        "notes: foreign key (author_id) -> users(id) must carry tenant_id",
    ),
    "fk to a tenant-owned id alone": (
        _fk_to_owned_id_alone,
        "comments: foreign key (note_id) -> notes(id) must carry tenant_id",
    ),
    "fk with tenant_id paired to another column": (
        _fk_with_tenant_id_mispaired,
        "notes: foreign key (author_id, tenant_id) -> users(tenant_id, id) must carry tenant_id",
    ),
    "index without tenant_id first": (
        _index_without_tenant_id_first,
        "notes: ix_notes_title_tenant_id must start with tenant_id",
    ),
    "unique without tenant_id first": (
        _unique_without_tenant_id_first,
        "notes: uq_notes_title_tenant_id must start with tenant_id",
    ),
    "tenant_id on a model that is not TenantScoped": (
        _tenant_id_not_scoped,
        "notes: has tenant_id but is not a TenantScoped model",
    ),
    "tenant_id on an unmapped table": (
        _tenant_id_on_a_plain_table,
        "audit: has tenant_id but is not a TenantScoped model",
    ),
    "nullable tenant_id": (_nullable_tenant_id, "notes: tenant_id must be NOT NULL"),
}


def test_the_throwaway_base_is_sound() -> None:
    base, _models = _throwaway()
    assert tenancy_violations(base.registry) == []


@pytest.mark.parametrize("case", list(BROKEN))
def test_the_tenancy_rules_catch(case: str) -> None:
    declare, expected = BROKEN[case]
    base, models = _throwaway()
    models += declare(base)
    problems = tenancy_violations(base.registry)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_tenant_owned_declares_its_own_key() -> None:
    with pytest.raises(TypeError, match="drop IdMixin"):

        class Note(IdMixin, TenantOwned, _throwaway()[0]):  # type: ignore[misc]
            __tablename__ = "notes"


def test_the_lazy_rule_catches_a_default_lazy_relationship() -> None:
    base, _models = _throwaway()

    class Parent(IdMixin, base):  # type: ignore[valid-type,misc]
        __tablename__ = "parents"
        children: Mapped[list[Child]] = relationship(back_populates="parent")

    class Child(IdMixin, base):  # type: ignore[valid-type,misc]
        __tablename__ = "children"
        parent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("parents.id"))
        parent: Mapped[Parent] = relationship(back_populates="children", lazy="raise")

    problems = lazy_violations(base.registry)
    assert problems == ["Parent.children must be lazy='raise'; load explicitly"]


# --- repositories -------------------------------------------------------------------------
