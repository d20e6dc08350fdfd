"""api_keys.creator_version: a key lives while its creator's access is unchanged

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 01:10:00+00:00

A key acted for its creator whenever the creator was active, so deactivating a user and
reactivating them brought their keys back. Each key now records the creator's
`token_version` at creation (existing keys: the current one, so none stops working today);
any change of the creator's access moves that version on and ends the key.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("creator_version", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    op.execute(
        "UPDATE api_keys AS k SET creator_version = u.token_version FROM users AS u"
        " WHERE u.tenant_id = k.tenant_id AND u.id = k.created_by"
    )


def downgrade() -> None:
    op.drop_column("api_keys", "creator_version")
