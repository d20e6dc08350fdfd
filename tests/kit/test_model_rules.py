"""Rules every table and repository follows; these fail when a new one forgets."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import inspect

from tenantry.kit.models import TenantOwned
from tenantry.kit.tenancy import TenantRepository, TenantScope
from tenantry.models import Base
from tenantry.users.repository import UserRepository


def _mappers() -> list[object]:
    return list(Base.registry.mappers)


def test_every_relationship_is_lazy_raise() -> None:
    for mapper in _mappers():
        for rel in inspect(mapper).relationships:  # type: ignore[union-attr]
            assert rel.lazy == "raise", f"{rel} must be lazy='raise'; load explicitly"


def test_tenant_owned_indexes_lead_with_tenant_id() -> None:
    # Platform-wide lookups (login by email, the internal staff list) are the exceptions.
    allowed = {"ix_users_internal_created_at"}
    for mapper in _mappers():
        cls = mapper.class_  # type: ignore[attr-defined]
        if not issubclass(cls, TenantOwned):
            continue
        table = cls.__table__
        assert table.c.tenant_id.nullable is False
        for index in table.indexes:
            if index.name in allowed:
                continue
            first = next(iter(index.columns)).name
            assert first == "tenant_id", f"{index.name} on {table.name} must start with tenant_id"


def test_a_repository_needs_a_tenant_scope() -> None:
    with pytest.raises(TypeError, match="TenantScope"):
        UserRepository(object(), uuid.uuid4())  # type: ignore[arg-type]


def test_scoped_statements_filter_by_tenant() -> None:
    tid = uuid.uuid4()
    repo = UserRepository(object(), TenantScope(tid))  # type: ignore[arg-type]
    sql = str(repo.select().compile(compile_kwargs={"literal_binds": True}))
    assert f"users.tenant_id = '{tid}'" in sql.replace(tid.hex, str(tid))


def test_every_tenant_repository_targets_a_tenant_owned_model() -> None:
    def subclasses(cls: type) -> list[type]:
        return [c for s in cls.__subclasses__() for c in (s, *subclasses(s))]

    repos = subclasses(TenantRepository)
    assert repos, "no tenant repositories found"
    for repo in repos:
        assert issubclass(repo.model, TenantOwned), repo  # type: ignore[attr-defined]
