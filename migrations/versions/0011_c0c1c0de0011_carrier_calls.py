"""carrier calls: which call resources the carrier still keeps, until the hotline deletes them

Revision ID: c0c1c0de0011
Revises: c0f1c0de0014
Create Date: 2026-12-01 00:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'c0c1c0de0011'
down_revision: Union[str, Sequence[str], None] = 'c0f1c0de0014'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('carrier_call',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('call_sid', sa.String(length=64), nullable=False),
    sa.Column('interaction_id', sa.Integer(), nullable=True),
    sa.Column('leg', sa.String(length=16), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("leg IN ('inbound', 'offer', 'callback', 'other')", name=op.f('ck_carrier_call_leg')),
    sa.ForeignKeyConstraint(['interaction_id'], ['interaction.id'], name=op.f('fk_carrier_call_interaction_id_interaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_carrier_call')),
    sa.UniqueConstraint('call_sid', name=op.f('uq_carrier_call_call_sid'))
    )
    op.create_index(op.f('ix_carrier_call_deleted_at'), 'carrier_call', ['deleted_at'], unique=False)
    op.create_index(op.f('ix_carrier_call_interaction_id'), 'carrier_call', ['interaction_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_carrier_call_interaction_id'), table_name='carrier_call')
    op.drop_index(op.f('ix_carrier_call_deleted_at'), table_name='carrier_call')
    op.drop_table('carrier_call')
