"""messaging: conversations (message threads), messages and their media

Revision ID: c0f2c0de0015
Revises: c0e1c0de0013
Create Date: 2026-12-08 02:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'c0f2c0de0015'
down_revision: Union[str, Sequence[str], None] = 'c0e1c0de0013'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('conversation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('interaction_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('open_key', sa.String(length=96), nullable=True),
    sa.Column('contact_hash', sa.String(length=64), nullable=False),
    sa.Column('address_ciphertext', sa.LargeBinary(), nullable=True),
    sa.Column('address_key_id', sa.String(length=32), nullable=True),
    sa.Column('name_ciphertext', sa.LargeBinary(), nullable=True),
    sa.Column('name_key_id', sa.String(length=32), nullable=True),
    sa.Column('menu_node', sa.String(length=32), nullable=True),
    sa.Column('menu_attempt', sa.Integer(), nullable=False),
    sa.Column('last_inbound_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('blocked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['interaction_id'], ['interaction.id'], name=op.f('fk_conversation_interaction_id_interaction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversation')),
    sa.UniqueConstraint('interaction_id', name=op.f('uq_conversation_interaction_id')),
    sa.UniqueConstraint('open_key', name=op.f('uq_conversation_open_key'))
    )
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversation_contact_hash'), ['contact_hash'], unique=False)

    op.create_table('message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('interaction_id', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('direction', sa.String(length=4), nullable=False),
    sa.Column('carrier_key', sa.String(length=96), nullable=True),
    sa.Column('chat_message_id', sa.Integer(), nullable=True),
    sa.Column('text_ciphertext', sa.LargeBinary(), nullable=True),
    sa.Column('text_key_id', sa.String(length=32), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error_code', sa.String(length=16), nullable=True),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('menu_node', sa.String(length=32), nullable=True),
    sa.Column('num_media', sa.Integer(), nullable=False),
    sa.Column('send_attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('erased_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['interaction_id'], ['interaction.id'], name=op.f('fk_message_interaction_id_interaction')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff_user.id'], name=op.f('fk_message_staff_id_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message')),
    sa.UniqueConstraint('carrier_key', name=op.f('uq_message_carrier_key'))
    )
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_message_interaction_id'), ['interaction_id'], unique=False)

    op.create_table('message_media',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('content_type', sa.String(length=128), nullable=False),
    sa.Column('size', sa.Integer(), nullable=True),
    sa.Column('source_ciphertext', sa.LargeBinary(), nullable=True),
    sa.Column('source_key_id', sa.String(length=32), nullable=True),
    sa.Column('storage_key', sa.String(length=128), nullable=True),
    sa.Column('file_key_ciphertext', sa.LargeBinary(), nullable=True),
    sa.Column('file_key_id', sa.String(length=32), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('failure', sa.String(length=32), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['message.id'], name=op.f('fk_message_media_message_id_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_media'))
    )
    with op.batch_alter_table('message_media', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_message_media_message_id'), ['message_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('message_media', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_media_message_id'))
    op.drop_table('message_media')
    with op.batch_alter_table('message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_message_interaction_id'))
        batch_op.drop_index(batch_op.f('ix_message_created_at'))
    op.drop_table('message')
    with op.batch_alter_table('conversation', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversation_contact_hash'))
    op.drop_table('conversation')
