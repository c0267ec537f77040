"""routing: waiting callers (queue_entry) and offers to handlers (routing_offer)

Revision ID: b5e2c7d9a1f4
Revises: a7d4e1f0b2c3
Create Date: 2026-11-26 16:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'b5e2c7d9a1f4'
down_revision: Union[str, Sequence[str], None] = 'a7d4e1f0b2c3'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('queue_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('interaction_id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('priority', sa.Integer(), nullable=False),
    sa.Column('enqueued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('handler_id', sa.Integer(), nullable=True),
    sa.Column('connected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['handler_id'], ['handler.id'], name=op.f('fk_queue_entry_handler_id_handler')),
    sa.ForeignKeyConstraint(['interaction_id'], ['interaction.id'], name=op.f('fk_queue_entry_interaction_id_interaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_queue_entry')),
    sa.UniqueConstraint('interaction_id', name=op.f('uq_queue_entry_interaction_id'))
    )
    op.create_index(op.f('ix_queue_entry_state'), 'queue_entry', ['state'], unique=False)
    op.create_table('routing_offer',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('interaction_id', sa.Integer(), nullable=False),
    sa.Column('handler_id', sa.Integer(), nullable=False),
    sa.Column('call_sid', sa.String(length=64), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('offered_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['handler_id'], ['handler.id'], name=op.f('fk_routing_offer_handler_id_handler')),
    sa.ForeignKeyConstraint(['interaction_id'], ['interaction.id'], name=op.f('fk_routing_offer_interaction_id_interaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_routing_offer')),
    sa.UniqueConstraint('call_sid', name=op.f('uq_routing_offer_call_sid'))
    )
    op.create_index(op.f('ix_routing_offer_handler_id'), 'routing_offer', ['handler_id'], unique=False)
    op.create_index(op.f('ix_routing_offer_interaction_id'), 'routing_offer', ['interaction_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_routing_offer_interaction_id'), table_name='routing_offer')
    op.drop_index(op.f('ix_routing_offer_handler_id'), table_name='routing_offer')
    op.drop_table('routing_offer')
    op.drop_index(op.f('ix_queue_entry_state'), table_name='queue_entry')
    op.drop_table('queue_entry')
