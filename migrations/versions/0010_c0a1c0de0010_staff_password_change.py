"""staff_user.must_change_password; unconfirmed TOTP secrets dropped

The first login after ``flask staff create``/``reset`` (a password someone else chose or saw)
must set a new password before anything else. Accounts that never completed a login with a
second factor (not enrolled) or never signed in still have such a password: they must change it.

A TOTP secret that was never confirmed may have been seen by whoever held the initial password
(the enrolment page showed it before its owner came): it is dropped, and a new one is made, and
shown once, when the owner enrols.

Revision ID: c0a1c0de0010
Revises: c0c1c0de0011
Create Date: 2026-12-01 09:00:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'c0a1c0de0010'
down_revision: Union[str, Sequence[str], None] = 'c0c1c0de0011'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table('staff_user') as batch:
        batch.add_column(
            sa.Column('must_change_password', sa.Boolean(), nullable=False,
                      server_default=sa.false())
        )
    staff_user = sa.table(
        'staff_user',
        sa.column('totp_enabled', sa.Boolean()),
        sa.column('totp_ciphertext', sa.LargeBinary()),
        sa.column('totp_key_id', sa.String()),
        sa.column('totp_last_step', sa.Integer()),
        sa.column('last_login_at', sa.DateTime(timezone=True)),
        sa.column('must_change_password', sa.Boolean()),
    )
    op.execute(
        staff_user.update()
        .where(sa.or_(staff_user.c.totp_enabled == sa.false(),
                      staff_user.c.last_login_at.is_(None)))
        .values(must_change_password=True)
    )
    op.execute(
        staff_user.update()
        .where(staff_user.c.totp_enabled == sa.false())
        .values(totp_ciphertext=None, totp_key_id=None, totp_last_step=None)
    )


def downgrade() -> None:
    with op.batch_alter_table('staff_user') as batch:
        batch.drop_column('must_change_password')
