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

#: The audit log is append-only in the database itself, not only in the app: these refuse
#: UPDATE and DELETE (and TRUNCATE on PostgreSQL) for every connection that does not own the
#: table's triggers.
SQLITE_GUARD = [
    "CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
    "CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END",
]
POSTGRESQL_GUARD = [
    "CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_event is append-only'; END $$",
    "CREATE TRIGGER audit_event_no_update_delete BEFORE UPDATE OR DELETE ON audit_event "
    "FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()",
    "CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()",
]


def upgrade() -> None:
    op.create_table('staff_user',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=64), nullable=False),
    sa.Column('display_name', sa.String(length=80), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.Column('totp_ciphertext', sa.LargeBinary(), nullable=True),
    sa.Column('totp_key_id', sa.String(length=32), nullable=True),
    sa.Column('totp_enabled', sa.Boolean(), nullable=False),
    sa.Column('totp_last_step', sa.Integer(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('language', sa.String(length=8), nullable=False),
    sa.Column('handler_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("role IN ('handler', 'supervisor', 'auditor', 'admin')", name=op.f('ck_staff_user_role')),
    sa.CheckConstraint("language IN ('uk', 'en')", name=op.f('ck_staff_user_language')),
    sa.ForeignKeyConstraint(['handler_id'], ['handler.id'], name=op.f('fk_staff_user_handler_id_handler')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_user')),
    sa.UniqueConstraint('handler_id', name=op.f('uq_staff_user_handler_id')),
    sa.UniqueConstraint('username', name=op.f('uq_staff_user_username'))
    )
    op.create_table('staff_session',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('staff_user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('end_reason', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_user.id'], name=op.f('fk_staff_session_staff_user_id_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_staff_session')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_staff_session_token_hash'))
    )
    op.create_index(op.f('ix_staff_session_staff_user_id'), 'staff_session', ['staff_user_id'], unique=False)
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('time', sa.DateTime(timezone=True), nullable=False),
    sa.Column('staff_user_id', sa.Integer(), nullable=True),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=True),
    sa.Column('object_id', sa.String(length=64), nullable=True),
    sa.Column('ip', sa.String(length=45), nullable=True),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['staff_user_id'], ['staff_user.id'], name=op.f('fk_audit_event_staff_user_id_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_event'))
    )
    op.create_index('ix_audit_event_object', 'audit_event', ['object_type', 'object_id'], unique=False)
    op.create_index(op.f('ix_audit_event_action'), 'audit_event', ['action'], unique=False)
    op.create_index(op.f('ix_audit_event_staff_user_id'), 'audit_event', ['staff_user_id'], unique=False)
    op.create_index(op.f('ix_audit_event_time'), 'audit_event', ['time'], unique=False)
    dialect = op.get_bind().dialect.name
    for statement in POSTGRESQL_GUARD if dialect == 'postgresql' else SQLITE_GUARD:
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event')
        op.execute('DROP TRIGGER IF EXISTS audit_event_no_update_delete ON audit_event')
        op.execute('DROP FUNCTION IF EXISTS audit_event_append_only()')
    else:
        op.execute('DROP TRIGGER IF EXISTS audit_event_no_update')
        op.execute('DROP TRIGGER IF EXISTS audit_event_no_delete')
    op.drop_index(op.f('ix_audit_event_time'), table_name='audit_event')
    op.drop_index(op.f('ix_audit_event_staff_user_id'), table_name='audit_event')
    op.drop_index(op.f('ix_audit_event_action'), table_name='audit_event')
    op.drop_index('ix_audit_event_object', table_name='audit_event')
    op.drop_table('audit_event')
    op.drop_index(op.f('ix_staff_session_staff_user_id'), table_name='staff_session')
    op.drop_table('staff_session')
    op.drop_table('staff_user')
