"""The grading service's database: students and their tokens (SQLAlchemy; SQLite by default, PostgreSQL alike).

A token is a random secret shown once, when it is issued; the database keeps only its SHA-256 (a token
holds 256 random bits, so a fast hash is enough and a stolen database gives no token away). A student has
at most one live token: issuing one revokes the one before. Instructor tokens have the role "instructor"
and a name of their own; they are checked apart from students' tokens.
"""
import csv
import hashlib
import hmac
import os
import re
import secrets
from datetime import datetime, timezone

from sqlalchemy import DateTime, ForeignKey, String, create_engine, event, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

DEFAULT_DB_FILE = "grading-service.db"          # in the course folder
STUDENT_ID = re.compile(r"[^\x00-\x1f\x7f/\\]{1,128}")   # printable, no path separators, at most 128 characters
ROLES = ("student", "instructor")


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


def now():
    return datetime.now(timezone.utc)


def database_url(course_dir, url=None):
    """``url`` as given, else the SQLite file of the course folder."""
    return url or "sqlite:///" + os.path.abspath(os.path.join(course_dir, DEFAULT_DB_FILE))


def open_store(url):
    """An engine on ``url`` with every table created; SQLite in WAL mode with foreign keys enforced."""
    engine = create_engine(url)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _sqlite_settings(connection, _):
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()
    Base.metadata.create_all(engine)
    return engine


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
        for live in session.scalars(select(Token).where(Token.role == role, Token.name == name,
                                                        Token.revoked.is_(None))):
            live.revoked = now()
        session.add(Token(digest=digest(token), role=role, student_id=name if role == "student" else None,
                          name=name, issued=now()))
    return token


def revoke_tokens(engine, name, role="student"):
    """Revoke every live token of ``name``; returns how many."""
    with Session(engine) as session, session.begin():
        live = list(session.scalars(select(Token).where(Token.role == role, Token.name == name,
                                                        Token.revoked.is_(None))))
        for token in live:
            token.revoked = now()
    return len(live)


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
