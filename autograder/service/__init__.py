"""The grading service: students submit while they work and get the hidden graders' verdict in seconds.

``store`` keeps the service's state in a database (SQLite in the course folder by default, PostgreSQL through
the same code): the students, their tokens (as hashes only) and the submissions. ``app`` is the HTTP API and
its dispatcher, which grades through the same engine, sandbox and result cache as ``python -m autograder
autograde``; ``settings`` are its limits and due dates; ``report`` gathers a class's attempts for the report.
"""
