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
    pass


def downgrade() -> None:
    pass
