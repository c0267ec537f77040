"""caller: an erased caller's lookup hash is erased too

Retention used to erase a caller's encrypted number and keep their keyed hash, so that a
returning caller found their cases again. With the HMAC key, a database dump then still
confirmed that a given number had called. From now on retention replaces the hash with
``erased:<id>`` (``dataprotection.erased_hash``); this migration does the same for the callers
erased before (not withheld callers: they never had a number; their hash is of a CallSid).
No schema change. The old hashes cannot be restored: downgrade changes nothing.

Revision ID: c0f1c0de0014
Revises: c0d1c0de0012
Create Date: 2026-11-28 10:00:00.000000

"""
from typing import Sequence, Union

from alembic import op


revision: str = 'c0f1c0de0014'
down_revision: Union[str, Sequence[str], None] = 'c0d1c0de0012'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    op.execute(
        "UPDATE caller SET number_hash = 'erased:' || CAST(id AS VARCHAR(20)) "
        "WHERE number_ciphertext IS NULL AND NOT withheld AND number_hash NOT LIKE 'erased:%'"
    )


def downgrade() -> None:
    pass  # an erased hash stays erased
