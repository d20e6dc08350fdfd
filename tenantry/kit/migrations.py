"""Run Alembic from code: `tenantry migrate`, embedded start-up and the tests use this.

Alembic's env runs its own event loop, so these are plain blocking functions: call them
before the server's loop starts, or in a thread.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from tenantry.config import Settings, get_settings

ROOT = Path(__file__).resolve().parents[2]


def resolve_database_url(settings: Settings | None = None) -> str:
    """The URL the app would use: DATABASE_URL, else the embedded server (started if needed)."""
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url
    if settings.embedded_database_url:
        return settings.embedded_database_url
    from tenantry.kit import embedded

    return embedded.start(settings.embedded_pgdata)


def alembic_config(database_url: str) -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    cfg.attributes["database_url"] = database_url
    cfg.attributes["configure_logging"] = False
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
