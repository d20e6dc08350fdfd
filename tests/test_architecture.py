"""The layers: `kit` <- `authz` <- domains <- the app, imports pointing down only, and a
domain reaching another only through its service (or the schemas it answers with).

The checks are functions, run on the real package and, to show they can fail, on small
made-up modules that break each rule once.
"""

from __future__ import annotations

import ast

import pytest

from tests.support.source import Module, imports, package_modules, parse

# Beneath everything: the package root (its version) and the settings.
_BOTTOM = {"tenantry", "config"}
# Above every domain: what assembles or drives them.
_TOP = {"app", "cli", "cluster", "console", "demo", "models", "worker"}
# What a domain may import of another domain.
_PUBLIC = {"service", "schemas"}


def layer_of(name: str) -> tuple[int, str]:
    """(rank, the part of the package it belongs to); any other package is a domain."""
    parts = name.split(".")
    part = parts[1] if len(parts) > 1 else parts[0]
    if part in _BOTTOM:
        return 0, part
    if part == "kit":
        return 1, part
    if part == "authz":
        return 2, part
    if part in _TOP:
        return 4, part
    return 3, part


def layer_violations(modules: list[Module]) -> list[str]:
    problems = []
    domain_edges: dict[str, set[str]] = {}
    for module in modules:
        rank, part = layer_of(module.name)
        for target in sorted(imports(module)):
            if not target.startswith("tenantry"):
                continue
            target_rank, target_part = layer_of(target)
            if target_rank > rank:
                problems.append(f"{module.name} imports {target}: a lower layer imports a higher")
            if rank == target_rank == 3 and target_part != part:
                domain_edges.setdefault(part, set()).add(target_part)
                leaf = target.split(".")
                if len(leaf) > 2 and leaf[2] not in _PUBLIC:
                    problems.append(
                        f"{module.name} imports {target}: another domain is reached only"
                        " through its service (or schemas)"
                    )
    problems.extend(_cycles(domain_edges))
    return problems


def _cycles(edges: dict[str, set[str]]) -> list[str]:
    found = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt in path:
                found.append("domains import each other: " + " -> ".join([*path, nxt]))
            elif len(path) < len(edges) + 1:
                visit(nxt, [*path, nxt])

    for start in sorted(edges):
        visit(start, [start])
    return sorted(set(found))


def test_the_package_keeps_its_layers() -> None:
    modules = package_modules()
    assert len(modules) > 40
    assert layer_violations(modules) == []


def _m(name: str, source: str) -> Module:
    return parse(name, source)


@pytest.mark.parametrize(
    ("modules", "expected"),
    [
        ([_m("tenantry.kit.cache", "from tenantry.authz.principal import Principal")], "higher"),
        ([_m("tenantry.kit.db", "import tenantry.users.service")], "higher"),
        ([_m("tenantry.authz.service", "from tenantry.users import service")], "higher"),
        ([_m("tenantry.users.service", "from tenantry.app import create_app")], "higher"),
        (
            [_m("tenantry.auth.service", "from tenantry.users.repository import UserDirectory")],
            "only through its service",
        ),
        (
            [_m("tenantry.crm.service", "from tenantry.users.models import User")],
            "only through its service",
        ),
        (
            [_m("tenantry.admin.router", "from ..users.models import User")],
            "only through its service",
        ),
        (
            [
                _m("tenantry.users.service", "from tenantry.auth import service"),
                _m("tenantry.auth.service", "from tenantry.users.service import UsersService"),
            ],
            "import each other",
        ),
    ],
)
def test_each_rule_fails_when_broken(modules: list[Module], expected: str) -> None:
    problems = layer_violations(modules)
    assert any(expected in p for p in problems), problems


def test_a_domain_may_use_another_through_its_service() -> None:
    ok = [
        _m("tenantry.admin.service", "from tenantry.users.service import UsersService"),
        _m("tenantry.users.schemas", "from tenantry.tenants.schemas import TenantSummary"),
        _m("tenantry.users.service", "from tenantry.authz import service as principals"),
    ]
    assert layer_violations(ok) == []


def console_violations(modules: list[Module]) -> list[str]:
    """The console sits above the domains, but reads them as the API does: through their
    services (a module defining a `Service`) and schemas, never a repository or a model."""
    by_name = {m.name: m for m in modules}

    def is_service(module: Module) -> bool:
        return any(
            isinstance(node, ast.ClassDef)
            and any(isinstance(b, ast.Name) and b.id == "Service" for b in node.bases)
            for node in ast.walk(module.tree)
        )

    problems = []
    for module in modules:
        if not module.name.startswith("tenantry.console"):
            continue
        for target in sorted(imports(module)):
            rank, part = layer_of(target)
            if rank != 3 or part == "console" or target not in by_name:
                continue
            if target.split(".")[-1] != "schemas" and not is_service(by_name[target]):
                problems.append(f"{module.name} imports {target}: not a service or schemas")
    return problems


def test_the_console_reads_the_domains_through_their_services() -> None:
    assert console_violations(package_modules()) == []
    crafted = parse("tenantry.console.crm", "from tenantry.crm.repository import LeadRepository\n")
    repository = parse("tenantry.crm.repository", "class LeadRepository: ...\n")
    assert console_violations([crafted, repository]) == [
        "tenantry.console.crm imports tenantry.crm.repository: not a service or schemas"
    ]
