"""The data-access contract (`kit/repository.py`): tenant data is queried only in
repositories; a repository of tenant-scoped data is a `TenantRepository` (every statement
from its scoped helpers) or a deliberately unscoped `PlatformRepository`.

In the spirit of Polar's org-scope linter: the package's source is read as syntax trees. The
check is a function, run on the real package and on made-up modules that break each rule.
"""

from __future__ import annotations

import ast
import re
import uuid

import pytest
from sqlalchemy import Table

import tenantry.app  # noqa: F401 - imports every repository, for the registry checks
from tenantry.authz.models import VIEWS
from tenantry.kit.models import TenantScoped
from tenantry.kit.repository import PlatformRepository, TenantRepository, TenantScope
from tenantry.models import Base
from tenantry.users.repository import UserRepository
from tests.support.source import (
    Module,
    base_names,
    called_attributes,
    called_names,
    names_used,
    package_modules,
    parse,
)

BUILDERS = {"select", "insert", "update", "delete", "text", "exists", "union", "union_all"}
RUNS = {"execute", "scalar", "scalars", "stream", "stream_scalars"}
SCOPED_BASES = {"TenantRepository", "PlatformRepository"}


def scoped_models() -> tuple[set[str], set[str]]:
    """(Python names of tenant-scoped models and read models, their SQL table names)."""
    classes = {m.class_ for m in Base.registry.mappers if issubclass(m.class_, TenantScoped)}
    views = {t for t in VIEWS.tables.values() if "tenant_id" in t.c}
    names = {c.__name__ for c in classes} | {t.name for t in views}
    tables = {c.__tablename__ for c in classes} | {t.name for t in views}
    return names, tables


def _sql_mentions(node: ast.AST, tables: set[str]) -> bool:
    pattern = re.compile(
        r"\b(SELECT|UPDATE|DELETE|INSERT)\b.*\b(" + "|".join(sorted(tables)) + r")\b",
        re.IGNORECASE | re.DOTALL,
    )
    return any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and pattern.search(n.value)
        for n in ast.walk(node)
    )


def _runs_queries(node: ast.AST, scoped: set[str]) -> bool:
    if called_names(node) & BUILDERS or called_attributes(node) & RUNS:
        return True
    return any(  # session.get(User, ...)
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Attribute)
        and n.func.attr in ("get", "get_one")
        and n.args
        and isinstance(n.args[0], ast.Name)
        and n.args[0].id in scoped
        for n in ast.walk(node)
    )


def access_violations(modules: list[Module], scoped: set[str], tables: set[str]) -> list[str]:
    problems = []
    for module in modules:
        parts = module.parts
        if "kit" in parts[:2] or module.leaf == "models" or module.name == "tenantry.models":
            continue  # the machinery itself, and the declarations
        if module.leaf != "repository":
            touches = names_used(module.tree) & scoped
            if (touches and _runs_queries(module.tree, scoped)) or _sql_mentions(
                module.tree, tables
            ):
                problems.append(
                    f"{module.name} queries tenant-scoped data ({', '.join(sorted(touches))})"
                    " outside a repository"
                )
            continue
        problems.extend(_repository_violations(module, scoped, tables))
    return problems


def _repository_violations(module: Module, scoped: set[str], tables: set[str]) -> list[str]:
    problems = []
    body = module.tree.body
    classes = {n.name: n for n in body if isinstance(n, ast.ClassDef)}
    tenant_repos = {n for n, c in classes.items() if "TenantRepository" in base_names(c)}
    # Module-level names (statements built once at import) and what they read.
    constants: dict[str, ast.AST] = {}
    for node in body:
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and node.value is not None:
                    constants[target.id] = node.value
    # A statement is built by a call (select, text, LeanQuery.of ...); a tuple of columns or a
    # condition is a part of one, checked where it is used.
    tainted = {
        name
        for name, value in constants.items()
        if any(isinstance(n, ast.Call) for n in ast.walk(value))
        and (names_used(value) & scoped or _sql_mentions(value, tables))
    }
    users_of: dict[str, set[str]] = {name: set() for name in tainted}
    for cls in classes.values():
        refs = names_used(cls) & scoped
        for name in names_used(cls) & tainted:
            users_of[name].add(cls.name)
            refs.add(name)
        if refs and not base_names(cls) & SCOPED_BASES:
            problems.append(
                f"{module.name}.{cls.name} reads tenant-scoped data but is neither a"
                " TenantRepository nor a PlatformRepository"
            )
        if cls.name in tenant_repos and called_names(cls) & BUILDERS:
            problems.append(
                f"{module.name}.{cls.name} builds a statement without its scope (use"
                " self.select / self.update / self.delete / lean)"
            )
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (
            names_used(node) & (scoped | tainted)
        ):
            problems.append(
                f"{module.name}.{node.name} queries tenant-scoped data outside a repository class"
            )
    for name in sorted(tainted):
        value = constants[name]
        scoped_start = any(
            isinstance(n, ast.Call)
            and isinstance(n.func, ast.Attribute)
            and n.func.attr in ("lean", "lean_count")
            and isinstance(n.func.value, ast.Name)
            and n.func.value.id in tenant_repos
            for n in ast.walk(value)
        )
        platform_only = bool(users_of[name]) and all(
            "PlatformRepository" in base_names(classes[c]) for c in users_of[name]
        )
        if not (scoped_start or platform_only):
            problems.append(
                f"{module.name}.{name} is a statement on tenant-scoped data that neither starts"
                " from a tenant repository's lean() nor serves only a PlatformRepository"
            )
    return problems


def test_the_package_follows_the_contract() -> None:
    scoped, tables = scoped_models()
    assert {"User", "ApiKey", "TenantSettings", "accounts"} <= scoped
    assert access_violations(package_modules(), scoped, tables) == []


SCOPED, TABLES = {"User", "ApiKey"}, {"users", "api_keys"}

_BROKEN = {
    "a service querying": (
        "tenantry.crm.service",
        "from sqlalchemy import select\n"
        "async def f(session):\n"
        "    return await session.execute(select(User))\n",
        "outside a repository",
    ),
    "a router getting by id": (
        "tenantry.crm.router",
        "async def f(session, id_):\n    return await session.get(ApiKey, id_)\n",
        "outside a repository",
    ),
    "raw SQL in a service": (
        "tenantry.crm.service",
        "Q = 'DELETE FROM api_keys WHERE id = :id'\n",
        "outside a repository",
    ),
    "a repository of another shape": (
        "tenantry.crm.repository",
        "class Lookup:\n"
        "    async def f(self):\n"
        "        return await self.session.execute(select(User))\n",
        "neither a TenantRepository nor a PlatformRepository",
    ),
    "a tenant repository building its own select": (
        "tenantry.crm.repository",
        "class Repo(TenantRepository[User]):\n"
        "    model = User\n"
        "    async def f(self):\n"
        "        return await self.session.execute(select(User).where(User.id == 1))\n",
        "without its scope",
    ),
    "a module function in a repository module": (
        "tenantry.crm.repository",
        "async def read(reader):\n    return await reader.one(select(User.id))\n",
        "outside a repository class",
    ),
    "an unscoped statement used by a tenant repository": (
        "tenantry.crm.repository",
        "class Repo(TenantRepository[User]):\n"
        "    model = User\n"
        "    async def f(self):\n"
        "        return await self.read_all(_ALL)\n"
        "_ALL = LeanQuery.of(select(User.id))\n",
        "neither starts from a tenant repository's lean()",
    ),
}


@pytest.mark.parametrize("case", sorted(_BROKEN))
def test_each_rule_fails_when_broken(case: str) -> None:
    name, source, expected = _BROKEN[case]
    problems = access_violations([parse(name, source)], SCOPED, TABLES)
    assert any(expected in p for p in problems), problems


def test_the_allowed_shapes_pass() -> None:
    source = (
        "class Repo(TenantRepository[User]):\n"
        "    model = User\n"
        "    async def f(self):\n"
        "        return await self.read_all(_PAGE)\n"
        "    async def g(self):\n"
        "        return await self.session.execute(self.select().where(User.id == 1))\n"
        "_PAGE = LeanQuery.of(Repo.lean(User.id))\n"
        "class Directory(PlatformRepository[User]):\n"
        "    unscoped_because = 'logins by email'\n"
        "    async def f(self):\n"
        "        return await self.read_one(_BY_EMAIL)\n"
        "_BY_EMAIL = LeanQuery.of(select(User.id).where(User.email == bindparam('e')))\n"
    )
    service = "async def f(session, scope):\n    return User(email='a')\n"
    modules = [parse("tenantry.crm.repository", source), parse("tenantry.crm.service", service)]
    assert access_violations(modules, SCOPED, TABLES) == []


def _subclasses(cls: type) -> list[type]:
    return [c for s in cls.__subclasses__() for c in (s, *_subclasses(s))]


def test_unscoped_repositories_are_few_and_say_why() -> None:
    platform = {c.__name__: c for c in _subclasses(PlatformRepository)}
    # Adding one is a decision: add it here, with its reason in `unscoped_because`.
    assert set(platform) == {
        "TenantDirectory",
        "UserDirectory",
        "StaffDirectory",
        "ApiKeyLookup",
        "SourceDirectory",
        "OnboardingLog",
        "QuoteBook",
        "CompletionLedger",
        "ZoneDirectory",
        "DemoLoader",
        "AuditLog",
    }
    for cls in platform.values():
        assert len(cls.unscoped_because) > 20, cls  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match="unscoped_because"):
        type("Silent", (PlatformRepository,), {})


def test_every_tenant_repository_reads_tenant_scoped_data() -> None:
    repos = _subclasses(TenantRepository)
    assert len(repos) >= 4
    for repo in repos:
        model = repo.model  # type: ignore[attr-defined]
        scoped_view = isinstance(model, Table) and "tenant_id" in model.c
        assert scoped_view or issubclass(model, TenantScoped), repo


def test_a_repository_needs_a_tenant_scope() -> None:
    with pytest.raises(TypeError, match="TenantScope"):
        UserRepository(object(), uuid.uuid4())  # type: ignore[arg-type]


def test_scoped_statements_filter_by_tenant() -> None:
    tid = uuid.uuid4()
    repo = UserRepository(object(), TenantScope(tid))  # type: ignore[arg-type]
    for statement in (repo.select(), repo.update().values(full_name="x"), repo.delete()):
        sql = str(statement.compile(compile_kwargs={"literal_binds": True}))
        assert f"users.tenant_id = '{tid}'" in sql.replace(tid.hex, str(tid)), sql


async def test_a_lean_query_without_the_tenant_is_refused() -> None:
    from sqlalchemy import select

    from tenantry.kit.db import LeanQuery
    from tenantry.users.models import User

    repo = UserRepository(object(), TenantScope(uuid.uuid4()))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tenant_id"):
        await repo.read_one(LeanQuery.of(select(User.id)))
