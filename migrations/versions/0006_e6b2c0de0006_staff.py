"""staff: accounts, sessions, the audit log

Revision ID: e6b2c0de0006
Revises: d5a1c0de0005
Create Date: 2026-11-27 00:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'e6b2c0de0006'
down_revision: Union[str, Sequence[str], None] = 'd5a1c0de0005'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
