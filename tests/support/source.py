"""The package's source, read as syntax trees: what the architecture tests check."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "tenantry"


@dataclass(frozen=True)
class Module:
    name: str  # dotted: tenantry.users.service
    path: str  # relative to the package's parent, for messages
    tree: ast.Module

    @property
    def parts(self) -> list[str]:
        return self.name.split(".")

    @property
    def leaf(self) -> str:
        return self.parts[-1]


def parse(name: str, source: str, path: str | None = None) -> Module:
    return Module(name, path or name.replace(".", "/") + ".py", ast.parse(source))


def package_modules(root: Path = PACKAGE) -> list[Module]:
    modules = []
    for file in sorted(root.rglob("*.py")):
        relative = file.relative_to(root.parent)
        parts = list(relative.with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules.append(parse(".".join(parts), file.read_text(), str(relative)))
    return modules


def imports(module: Module) -> set[str]:
    """Every module this one imports, as absolute dotted names (`from a import b` counts as
    both `a` and `a.b`, since b may be a module)."""
    found: set[str] = set()
    package = module.parts[:-1] if module.leaf != "__init__" else module.parts
    for node in ast.walk(module.tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                prefix = ".".join([*base, node.module] if node.module else base)
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


def names_used(node: ast.AST) -> set[str]:
    """Bare names read anywhere under `node` (`User`, `select`, ...)."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def called_names(node: ast.AST) -> set[str]:
    """Names called as plain functions under `node` (`select(...)`, not `self.select(...)`)."""
    return {
        n.func.id
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }


def called_attributes(node: ast.AST) -> set[str]:
    """Methods called under `node` (`session.execute(...)` gives `execute`)."""
    return {
        n.func.attr
        for n in ast.walk(node)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
    }


def base_names(cls: ast.ClassDef) -> set[str]:
    """`class A(TenantRepository[User])` gives {"TenantRepository"}."""
    names = set()
    for base in cls.bases:
        target = base.value if isinstance(base, ast.Subscript) else base
        if isinstance(target, ast.Name):
            names.add(target.id)
        elif isinstance(target, ast.Attribute):
            names.add(target.attr)
    return names
