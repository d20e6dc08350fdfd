"""tenant_settings.default_team_id references the company's own teams

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 00:30:00+00:00

Until now any id was accepted, another company's team included. References to no team of the
company are cleared first; the constraint is added NOT VALID and then validated, so the table
is locked only for the moment of adding it (one row per company).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "UPDATE tenant_settings AS s SET default_team_id = NULL"
        " WHERE default_team_id IS NOT NULL AND NOT EXISTS"
        " (SELECT 1 FROM teams AS t WHERE t.tenant_id = s.tenant_id AND t.id = s.default_team_id)"
    )
    op.execute(
        "ALTER TABLE tenant_settings ADD CONSTRAINT tenant_settings_default_team_fkey"
        " FOREIGN KEY (tenant_id, default_team_id) REFERENCES teams (tenant_id, id)"
        " ON DELETE SET NULL (default_team_id) NOT VALID"
    )
    op.execute("ALTER TABLE tenant_settings VALIDATE CONSTRAINT tenant_settings_default_team_fkey")


def downgrade() -> None:
    op.drop_constraint("tenant_settings_default_team_fkey", "tenant_settings", type_="foreignkey")
