"""The grading service: students submit while they work and get the hidden graders' verdict in seconds.

``store`` keeps the service's state in a database (SQLite in the course folder by default, PostgreSQL through
the same code): the students, their tokens (as hashes only) and, next, the submissions. The service grades
through the same engine, sandbox and result cache as ``python -m autograder autograde``.
"""
