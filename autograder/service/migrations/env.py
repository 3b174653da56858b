"""Runs the grading service's migrations on the connection that store.migrate hands over (alembic's Python API,
no alembic.ini, no `alembic` program).

A new revision, after changing the models in store.py (then read and tidy what alembic wrote):

    from alembic import command
    from autograder.service import store
    with store.open_store(URL).begin() as connection:
        command.revision(store.migrations(connection), "what changes", rev_id="0003", autogenerate=True)
"""
from alembic import context

from autograder.service.store import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("the grading service's migrations run from autograder.service.store.migrate (open_store), "
                       "which hands them a connection")
context.configure(connection=connection, target_metadata=Base.metadata)
with context.begin_transaction():
    context.run_migrations()
