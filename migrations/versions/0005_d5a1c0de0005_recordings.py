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
    pass


def downgrade() -> None:
    pass
