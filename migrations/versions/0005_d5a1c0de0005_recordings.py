"""recordings: the Recording table (pipeline states, encrypted store)

Revision ID: d5a1c0de0005
Revises: c8f1d2e3a4b5
Create Date: 2026-11-27 00:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'd5a1c0de0005'
down_revision: Union[str, Sequence[str], None] = 'c8f1d2e3a4b5'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('recording',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('recording_sid', sa.String(length=64), nullable=False),
    sa.Column('interaction_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('failure_reason', sa.String(length=32), nullable=True),
    sa.Column('last_error', sa.String(length=255), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('carrier_duration_s', sa.Integer(), nullable=True),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('waveform', sa.LargeBinary(), nullable=True),
    sa.Column('content_type', sa.String(length=64), nullable=True),
    sa.Column('size_bytes', sa.Integer(), nullable=True),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('storage_key', sa.String(length=128), nullable=True),
    sa.Column('file_id', sa.String(length=32), nullable=True),
    sa.Column('stored_size', sa.Integer(), nullable=True),
    sa.Column('key_id', sa.String(length=32), nullable=True),
    sa.Column('wrapped_key', sa.LargeBinary(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('fetched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('stored_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('carrier_deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("kind IN ('message', 'conversation')", name=op.f('ck_recording_kind')),
    sa.CheckConstraint("state IN ('pending', 'fetched', 'stored', 'carrier_deleted', 'failed', 'deleted')", name=op.f('ck_recording_state')),
    sa.ForeignKeyConstraint(['interaction_id'], ['interaction.id'], name=op.f('fk_recording_interaction_id_interaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recording')),
    sa.UniqueConstraint('recording_sid', name=op.f('uq_recording_recording_sid'))
    )
    op.create_index(op.f('ix_recording_created_at'), 'recording', ['created_at'], unique=False)
    op.create_index(op.f('ix_recording_interaction_id'), 'recording', ['interaction_id'], unique=False)
    op.create_index(op.f('ix_recording_state'), 'recording', ['state'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_recording_state'), table_name='recording')
    op.drop_index(op.f('ix_recording_interaction_id'), table_name='recording')
    op.drop_index(op.f('ix_recording_created_at'), table_name='recording')
    op.drop_table('recording')
