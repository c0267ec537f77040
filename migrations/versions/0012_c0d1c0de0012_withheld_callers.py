"""caller.withheld: a caller who withheld their number is one call, with a case of its own

Before, every call without a usable number (``anonymous``, Twilio's ``+266696687``, an empty
From, …) hashed to the same caller and joined the same open case, so whoever took one such call
saw all the others. Now each such call makes its own caller, marked ``withheld`` (no number kept,
never called back). Rows written before stay as they were: the migration has no key to tell
which caller was the shared one.

Revision ID: c0d1c0de0012
Revises: b9e5c0de0009
Create Date: 2026-12-01 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'c0d1c0de0012'
down_revision: Union[str, Sequence[str], None] = 'b9e5c0de0009'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('caller') as batch:
        batch.add_column(
            sa.Column('withheld', sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table('caller') as batch:
        batch.drop_column('withheld')
