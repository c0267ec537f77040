"""blocklist: numbers whose calls are refused, by keyed hash, with a reason and an expiry

(Chained after 0010, the head when it was merged.)

Revision ID: c0e1c0de0013
Revises: c0a1c0de0010
Create Date: 2026-12-01 04:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'c0e1c0de0013'
down_revision: Union[str, Sequence[str], None] = 'c0a1c0de0010'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('blocked_number',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number_hash', sa.String(length=64), nullable=False),
    sa.Column('hint', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff_user.id'], name=op.f('fk_blocked_number_created_by_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_blocked_number')),
    sa.UniqueConstraint('number_hash', name=op.f('uq_blocked_number_number_hash'))
    )
    with op.batch_alter_table('blocked_number', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_blocked_number_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('blocked_number', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_blocked_number_expires_at'))
    op.drop_table('blocked_number')
