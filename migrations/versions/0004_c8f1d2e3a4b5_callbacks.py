"""routing: call-back requests keep their place (queue_entry callback columns)

Revision ID: c8f1d2e3a4b5
Revises: b5e2c7d9a1f4
Create Date: 2026-11-27 00:10:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'c8f1d2e3a4b5'
down_revision: Union[str, Sequence[str], None] = 'b5e2c7d9a1f4'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('queue_entry') as batch:
        batch.add_column(sa.Column('callback_requested_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('callback_attempts', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('callback_sid', sa.String(length=64), nullable=True))
        batch.add_column(sa.Column('callback_due_at', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('queue_entry') as batch:
        batch.drop_column('callback_due_at')
        batch.drop_column('callback_sid')
        batch.drop_column('callback_attempts')
        batch.drop_column('callback_requested_at')
