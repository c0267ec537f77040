"""console: indexes for the call log and case notes

Revision ID: f7c3c0de0007
Revises: e6b2c0de0006
Create Date: 2026-11-27 00:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'f7c3c0de0007'
down_revision: Union[str, Sequence[str], None] = 'e6b2c0de0006'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('inquiry') as batch:
        batch.add_column(sa.Column('outcome', sa.String(length=32), nullable=True))
        batch.create_index(batch.f('ix_inquiry_outcome'), ['outcome'], unique=False)
    op.create_index('ix_interaction_started_at_id', 'interaction', ['started_at', 'id'], unique=False)
    op.create_index(op.f('ix_queue_entry_handler_id'), 'queue_entry', ['handler_id'], unique=False)
    op.create_table('case_note',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('inquiry_id', sa.Integer(), nullable=False),
    sa.Column('interaction_id', sa.Integer(), nullable=True),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('text_ciphertext', sa.LargeBinary(), nullable=True),
    sa.Column('text_key_id', sa.String(length=32), nullable=True),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['staff_user.id'], name=op.f('fk_case_note_author_id_staff_user')),
    sa.ForeignKeyConstraint(['inquiry_id'], ['inquiry.id'], name=op.f('fk_case_note_inquiry_id_inquiry')),
    sa.ForeignKeyConstraint(['interaction_id'], ['interaction.id'], name=op.f('fk_case_note_interaction_id_interaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_case_note'))
    )
    op.create_index(op.f('ix_case_note_inquiry_id'), 'case_note', ['inquiry_id'], unique=False)
    op.create_index(op.f('ix_case_note_created_at'), 'case_note', ['created_at'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_case_note_created_at'), table_name='case_note')
    op.drop_index(op.f('ix_case_note_inquiry_id'), table_name='case_note')
    op.drop_table('case_note')
    op.drop_index(op.f('ix_queue_entry_handler_id'), table_name='queue_entry')
    op.drop_index('ix_interaction_started_at_id', table_name='interaction')
    with op.batch_alter_table('inquiry') as batch:
        batch.drop_index(batch.f('ix_inquiry_outcome'))
        batch.drop_column('outcome')
