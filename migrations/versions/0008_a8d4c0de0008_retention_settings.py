"""retention settings: periods changed in the console, overriding the environment

Revision ID: a8d4c0de0008
Revises: f7c3c0de0007
Create Date: 2026-11-27 04:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'a8d4c0de0008'
down_revision: Union[str, Sequence[str], None] = 'f7c3c0de0007'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.create_table('retention_setting',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('days', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.Integer(), nullable=True),
    sa.CheckConstraint("name IN ('recording_retention_days_message', 'recording_retention_days_conversation', 'personal_data_retention_days')", name=op.f('ck_retention_setting_name')),
    sa.CheckConstraint('days >= 0 AND days <= 3650', name=op.f('ck_retention_setting_days')),
    sa.ForeignKeyConstraint(['updated_by'], ['staff_user.id'], name=op.f('fk_retention_setting_updated_by_staff_user')),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_retention_setting'))
    )


def downgrade() -> None:
    op.drop_table('retention_setting')
