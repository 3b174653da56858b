"""Arrival numbers from a database sequence where the database has sequences (PostgreSQL): writers on several
connections never get the same one. SQLite has none: the store numbers arrivals under its write lock.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ARRIVALS = "submission_arrivals"


def upgrade():
    """Create the sequence, continuing after the highest arrival number already stored."""
    if not op.get_bind().dialect.supports_sequences:
        return
    op.execute(sa.schema.CreateSequence(sa.Sequence(ARRIVALS), if_not_exists=True))
    op.execute(sa.text(f"SELECT setval('{ARRIVALS}', (SELECT COALESCE(MAX(seq), 0) + 1 FROM submissions), false)"))


def downgrade():
    """Drop the sequence."""
    if op.get_bind().dialect.supports_sequences:
        op.execute(sa.schema.DropSequence(sa.Sequence(ARRIVALS), if_exists=True))
