"""call_event: one partial index for the events read by time; no index the IVR's events need not

The queue figures, reports and the duty board read call events by time, and only the queue's,
offers', presence and completion events and call-back requests (``QUEUE_EVENTS``). The two full
indexes on ``event`` and ``time`` made every IVR step's event five B-tree writes; one index on
``(event, time)`` over those events only makes it three. ``ix_interaction_started_at`` is the
first column of ``ix_interaction_started_at_id`` (0007): every query it served, that one serves.

Revision ID: b9e5c0de0009
Revises: a8d4c0de0008
Create Date: 2026-11-27 13:30:00.000000

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = 'b9e5c0de0009'
down_revision: Union[str, Sequence[str], None] = 'a8d4c0de0008'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None

# As inquiries.models.QUEUE_EVENTS was when this migration was written (a migration is frozen).
QUEUE_EVENTS = (
    "ENTERQUEUE", "OFFER", "CONNECT", "REJECT", "RINGNOANSWER", "RINGCANCELED", "ABANDON",
    "COMPLETECALLER", "COMPLETEAGENT", "CALLBACK_REQUESTED", "HANDLER_PRESENCE", "HANDLER_PAUSED",
)
WHERE = "event IN (" + ", ".join(f"'{name}'" for name in QUEUE_EVENTS) + ")"


def upgrade() -> None:
    op.create_index(
        'ix_call_event_queue', 'call_event', ['event', 'time'], unique=False,
        sqlite_where=sa.text(WHERE), postgresql_where=sa.text(WHERE),
    )
    op.drop_index('ix_call_event_event', table_name='call_event')
    op.drop_index('ix_call_event_time', table_name='call_event')
    op.drop_index('ix_interaction_started_at', table_name='interaction')


def downgrade() -> None:
    op.create_index('ix_interaction_started_at', 'interaction', ['started_at'], unique=False)
    op.create_index('ix_call_event_time', 'call_event', ['time'], unique=False)
    op.create_index('ix_call_event_event', 'call_event', ['event'], unique=False)
    op.drop_index('ix_call_event_queue', table_name='call_event')
