"""The grading service's database (SQLAlchemy; SQLite by default, PostgreSQL alike): students, their tokens, and
the submissions with their notebooks and results.

The schema is alembic's (migrations/): opening a store brings its database to the newest revision.

A token is a random secret shown once, when it is issued; the database keeps only its SHA-256 (a token
holds 256 random bits, so a fast hash is enough and a stolen database gives no token away). A student has
at most one live token: issuing one revokes the one before. Instructor tokens have the role "instructor"
and a name of their own; they are checked apart from students' tokens.
"""
import csv
import hashlib
import hmac
import importlib
import json
import os
import re
import secrets
import uuid
from datetime import datetime, timezone

from sqlalchemy import (DateTime, ForeignKey, Integer, LargeBinary, Sequence, String, Text, create_engine, event, func,
                        inspect, select, text, update)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

DEFAULT_DB_FILE = "grading-service.db"          # in the course folder
STUDENT_ID = re.compile(r"[^\x00-\x1f\x7f/\\]{1,128}")   # printable, no path separators, at most 128 characters
ROLES = ("student", "instructor")
MIGRATIONS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "migrations")   # versions/NNNN_*.py
FIRST_REVISION = "0001"                         # the schema of the stores made before migrations
MIGRATION_LOCK = 0x6772616465                   # PostgreSQL advisory lock key: one process migrates at a time
ARRIVALS = Sequence("submission_arrivals")      # arrival numbers where the database has sequences (PostgreSQL)
WAITING = ("queued", "grading")                 # a submission in flight


class StoreError(ValueError):
    """Bad input to the store (an odd student id, an unknown student): the message says what to do."""


class Base(DeclarativeBase):
    pass


class Student(Base):
    """A student of the course, by nbgrader's student id."""

    __tablename__ = "students"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    added: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Token(Base):
    """One issued token: its hash, whose it is, and whether it was revoked."""

    __tablename__ = "tokens"
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)     # SHA-256 of the token, hex
    role: Mapped[str] = mapped_column(String(16))
    student_id: Mapped[str | None] = mapped_column(ForeignKey("students.id"), nullable=True, index=True)
    name: Mapped[str] = mapped_column(String(128))                       # the student id, or the instructor's name
    issued: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Notebook(Base):
    """A submitted notebook's bytes, once per content (many submissions may share one)."""

    __tablename__ = "notebooks"
    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class Submission(Base):
    """One accepted submission: stored before the student is answered, graded exactly once."""

    __tablename__ = "submissions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, ARRIVALS, unique=True, index=True)   # arrival order
    student_id: Mapped[str] = mapped_column(ForeignKey("students.id"), index=True)
    assignment: Mapped[str] = mapped_column(String(64), index=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("notebooks.sha256"))
    key: Mapped[str] = mapped_column(String(64), index=True)                  # the result cache's key
    status: Mapped[str] = mapped_column(String(16), index=True)               # queued, grading, done, failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    results: Mapped[str | None] = mapped_column(Text, nullable=True)          # results.json, as the CLI writes it
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)           # why it failed (the machine's fault)


def now():
    return datetime.now(timezone.utc)


def database_url(course_dir, url=None):
    """``url`` as given, else the SQLite file of the course folder."""
    return url or "sqlite:///" + os.path.abspath(os.path.join(course_dir, DEFAULT_DB_FILE))


def open_store(url):
    """An engine on ``url``, its database migrated to the newest revision; SQLite in WAL mode with foreign keys
    enforced, PostgreSQL speaking UTC."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_settings)
    elif engine.dialect.name == "postgresql":
        event.listen(engine, "connect", _utc)
    migrate(engine)
    return engine


def _sqlite_settings(connection, _):
    """WAL (readers never wait for the writer), foreign keys checked, a writer waits up to 10 s for the lock."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _utc(connection, _):
    """Times come back in UTC, as SQLite keeps them (not in the server's time zone)."""
    autocommit, connection.autocommit = connection.autocommit, True
    cursor = connection.cursor()
    cursor.execute("SET TIME ZONE 'UTC'")
    cursor.close()
    connection.autocommit = autocommit


def migrations(connection):
    """alembic's configuration of the service's migrations, on ``connection`` (built here: no alembic.ini)."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    config.attributes["connection"] = connection
    return config


def newest_revision():
    """The newest migration's revision: the highest number NNNN of migrations/versions/NNNN_*.py."""
    return max(name[:4] for name in os.listdir(os.path.join(MIGRATIONS, "versions"))
               if name[:4].isdigit() and name.endswith(".py"))


def revision(connection):
    """The database's revision (alembic_version), or None where there is none."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def migrate(engine):
    """Bring the database to the newest revision, one process at a time. A store made before migrations (its
    tables there, no alembic_version) is first marked as being at the first revision."""
    with engine.connect() as connection:
        if revision(connection) == newest_revision():
            return                                        # as it should be: alembic is not even loaded
    from alembic import command

    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(select(func.pg_advisory_xact_lock(MIGRATION_LOCK)))
        else:
            _write_lock(connection)
        config = migrations(connection)
        tables = set(inspect(connection).get_table_names())
        if "submissions" in tables and "alembic_version" not in tables:
            command.stamp(config, FIRST_REVISION)
        command.upgrade(config, "head")


def _write_lock(connection):
    """SQLite: no other writer until the transaction ends (BEGIN IMMEDIATE, the transaction's first statement)."""
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def check_student_id(student_id):
    """``student_id`` if it is a usable id (1-128 printable characters, no / or \\), else StoreError."""
    if not isinstance(student_id, str) or not STUDENT_ID.fullmatch(student_id) or student_id.strip() != student_id \
            or student_id in (".", ".."):
        raise StoreError(f"not a usable student id: {student_id!r} (1-128 printable characters, no / or \\, no "
                         "spaces around it)")
    return student_id


def add_students(engine, ids):
    """Add the students of ``ids`` (those already there are left as they are); returns the ids added."""
    ids = [check_student_id(i) for i in ids]
    added = []
    with Session(engine) as session, session.begin():
        known = set(session.scalars(select(Student.id).where(Student.id.in_(ids))))
        for student_id in dict.fromkeys(ids):
            if student_id not in known:
                session.add(Student(id=student_id, added=now()))
                added.append(student_id)
    return added


def roster_ids(path):
    """Student ids of a roster CSV: the column ``id`` or ``student_id``, else the first column."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    if not rows:
        return []
    header = [cell.strip().lower() for cell in rows[0]]
    for column in ("id", "student_id"):
        if column in header:
            index = header.index(column)
            return [row[index].strip() for row in rows[1:] if len(row) > index and row[index].strip()]
    return [row[0].strip() for row in rows if row and row[0].strip()]


def gradebook_ids(course_dir):
    """Student ids in nbgrader's gradebook of ``course_dir`` (none where it has no gradebook.db)."""
    path = os.path.join(course_dir, "gradebook.db")
    if not os.path.exists(path):
        return []
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + os.path.abspath(path)) as gradebook:
        return [student.id for student in gradebook.students]


def students(engine):
    """Every student id, sorted."""
    with Session(engine) as session:
        return list(session.scalars(select(Student.id).order_by(Student.id)))


def digest(token):
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def issue_token(engine, name, role="student"):
    """A new token for the student ``name`` (or the instructor ``name``): the one before is revoked. Returns it;
    only its hash is stored."""
    if role not in ROLES:
        raise StoreError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    check_student_id(name)
    token = secrets.token_urlsafe(32)
    with Session(engine) as session, session.begin():
        if role == "student" and session.get(Student, name) is None:
            raise StoreError(f"no student {name!r}: add them first (python -m autograder students add ID)")
        for live in _live_tokens(session, name, role):
            live.revoked = now()
        session.add(Token(digest=digest(token), role=role, student_id=name if role == "student" else None,
                          name=name, issued=now()))
    return token


def revoke_tokens(engine, name, role="student"):
    """Revoke every live token of ``name``; returns how many."""
    with Session(engine) as session, session.begin():
        live = _live_tokens(session, name, role)
        for token in live:
            token.revoked = now()
    return len(live)


def _live_tokens(session, name, role):
    """The tokens of ``name`` in ``role`` that are not revoked."""
    return list(session.scalars(select(Token).where(Token.role == role, Token.name == name, Token.revoked.is_(None))))


def who(engine, token, role="student"):
    """The name whose live ``role`` token ``token`` is, or None (compared in constant time)."""
    if not isinstance(token, str) or not token or len(token) > 256:
        return None
    wanted = digest(token)
    with Session(engine) as session:
        found = session.get(Token, wanted)
        if found is None or found.revoked is not None or found.role != role:
            return None
        return found.name if hmac.compare_digest(found.digest, wanted) else None


# ------------------------------------------------------------------------------------------- submissions
def accept(engine, student_id, assignment, data, key):
    """Store a submission (its row and its notebook's bytes) durably; returns (id, position in the queue)."""
    sha = hashlib.sha256(data).hexdigest()
    with Session(engine) as session, session.begin():
        seq = _next_arrival(session)
        if session.get(Notebook, sha) is None:
            _keep_notebook(session, sha, data)
        submission = Submission(id=uuid.uuid4().hex, seq=seq, student_id=student_id, assignment=assignment,
                                sha256=sha, key=key, status="queued", attempts=0, received=now())
        session.add(submission)
        return submission.id, _position(session, seq)


def _position(session, seq):
    """The place in the queue of the submission that arrived as ``seq`` (those in flight before it, and itself)."""
    return session.scalar(select(func.count()).select_from(Submission).where(Submission.status.in_(WAITING),
                                                                             Submission.seq <= seq))


def _next_arrival(session):
    """The next arrival number, never handed out twice: the database's sequence (PostgreSQL), else the highest
    so far + 1 with the database locked for writing until the submission is stored (SQLite)."""
    if session.get_bind().dialect.supports_sequences:
        return session.scalar(select(ARRIVALS.next_value()))
    _write_lock(session.connection())
    return (session.scalar(select(func.max(Submission.seq))) or 0) + 1


def _keep_notebook(session, sha, data):
    """Store a notebook's bytes unless they are there (another writer may have stored the same ones just now)."""
    name = session.get_bind().dialect.name
    if name not in ("postgresql", "sqlite"):
        session.add(Notebook(sha256=sha, content=data))
        return
    insert = importlib.import_module(f"sqlalchemy.dialects.{name}").insert      # INSERT ... ON CONFLICT DO NOTHING
    session.execute(insert(Notebook).values(sha256=sha, content=data).on_conflict_do_nothing())


def in_flight(engine, student_id):
    """How many of the student's submissions are queued or being graded."""
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Submission).where(
            Submission.student_id == student_id, Submission.status.in_(WAITING)))


def queued(engine):
    """How many submissions wait to be graded."""
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Submission).where(Submission.status == "queued"))


def claim(engine):
    """The oldest queued submission, marked "grading" (attempts + 1): (id, assignment, key, bytes), or None."""
    with Session(engine) as session, session.begin():
        found = session.scalars(select(Submission).where(Submission.status == "queued")
                                .order_by(Submission.seq).limit(1)).first()
        if found is None:
            return None
        changed = session.execute(update(Submission).where(Submission.id == found.id, Submission.status == "queued")
                                  .values(status="grading", attempts=Submission.attempts + 1))
        if changed.rowcount != 1:
            return None                                   # another dispatcher took it
        return found.id, found.assignment, found.key, session.get(Notebook, found.sha256).content


def finish(engine, submission_id, results):
    """Record the results (results.json's dict) of a graded submission."""
    with Session(engine) as session, session.begin():
        submission = session.get(Submission, submission_id)
        submission.status, submission.finished = "done", now()
        submission.results = json.dumps(results)


def fail(engine, submission_id, reason):
    """Record that a submission could not be graded, and why (the machine's fault, not the student's)."""
    with Session(engine) as session, session.begin():
        submission = session.get(Submission, submission_id)
        submission.status, submission.finished, submission.reason = "failed", now(), reason


def recover(engine, max_attempts=2):
    """After a restart: submissions left "grading" are queued again, or failed once tried ``max_attempts``
    times; returns (requeued, failed) counts."""
    requeued = failed = 0
    with Session(engine) as session, session.begin():
        for submission in session.scalars(select(Submission).where(Submission.status == "grading")):
            if submission.attempts >= max_attempts:
                submission.status, submission.finished = "failed", now()
                submission.reason = (f"the grading was interrupted {submission.attempts} times (the grading machine "
                                     "stopped); this is not a fault of your notebook: submit it again")
                failed += 1
            else:
                submission.status = "queued"
                requeued += 1
    return requeued, failed


def recent_assignments(engine, most=2):
    """Up to ``most`` assignments to expect next: those of queued submissions (oldest first), then the latest
    submitted."""
    with Session(engine) as session:
        waiting = session.scalars(select(Submission.assignment).where(Submission.status == "queued")
                                  .order_by(Submission.seq).limit(500)).all()
        latest = session.scalars(select(Submission.assignment).group_by(Submission.assignment)
                                 .order_by(func.max(Submission.seq).desc()).limit(most)).all()
    return list(dict.fromkeys([*waiting, *latest]))[:most]


def submission_view(engine, submission_id):
    """{"id", "student", "assignment", "status", "received", "results"?, "reason"?} or None."""
    with Session(engine) as session:
        found = session.get(Submission, submission_id) if isinstance(submission_id, str) else None
        if found is None:
            return None
        view = {"id": found.id, "student": found.student_id, "assignment": found.assignment,
                "status": found.status, "received": found.received.isoformat()}
        if found.status == "queued":
            view["position"] = _position(session, found.seq)
        if found.results is not None:
            view["results"] = json.loads(found.results)
        if found.reason is not None:
            view["reason"] = found.reason
        return view


def submitted_since(engine, student_id, assignment, since):
    """Received times of the student's submissions of ``assignment`` since ``since``, oldest first."""
    with Session(engine) as session:
        return list(session.scalars(select(Submission.received).where(
            Submission.student_id == student_id, Submission.assignment == assignment, Submission.received >= since)
            .order_by(Submission.seq)))


def class_submissions(engine, assignment):
    """Every submission of ``assignment`` in arrival order: [{"id", "student", "status", "received", "results"}]."""
    with Session(engine) as session:
        rows = session.scalars(select(Submission).where(Submission.assignment == assignment).order_by(Submission.seq))
        return [{"id": r.id, "student": r.student_id, "status": r.status, "received": r.received.isoformat(),
                 "results": json.loads(r.results) if r.results else None} for r in rows]
