"""How every part of the project opens the store: one connection discipline, two backends.

``connect(target)`` opens a SQLite file (``Connection``, plain ``sqlite3``) or a PostgreSQL
database named by a ``postgresql://`` URL (``PostgresConnection``, psycopg 3, same interface:
the table families run SQLite's SQL, translated by ``dialect``). What follows is SQLite's side;
``PostgresConnection`` says what stands for each part on PostgreSQL.

A ``Connection`` is one process's (one server worker's) connection: WAL, a 30 s busy
timeout, foreign keys on, ``synchronous=FULL`` unless told otherwise. Every write is one
``transaction()``, begun ``BEGIN IMMEDIATE``: a deferred transaction takes a read snapshot at
its first read and tries to become a writer only at its first write; if another connection (a
serving worker) committed in between, SQLite refuses the upgrade with ``database is locked`` at
once, without waiting for the busy timeout. ``BEGIN IMMEDIATE`` takes the write lock up front,
so a writer waits its turn instead. Threads of one process share the connection under its lock.

Opening checks the schema version (``PRAGMA user_version``): an older store is upgraded in one
writer transaction (``upgrade``: a process killed half-way leaves the old version, and the next
open finishes it); a newer one is refused with ``StoreVersionError``.
"""

from __future__ import annotations

import datetime as _dt
import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Self

from ..errors import StoreError, StoreVersionError
from . import dialect
from .dialect import describe, is_postgres, store_target
from .schema import BUSY_TIMEOUT_MS, MIGRATIONS, PRAGMAS, SCHEMA_VERSION, Migration

#: What a write function gets inside the caller's transaction (``Connection.transaction``).
Transaction = sqlite3.Connection

#: Seconds to sleep after each migration step, inside the upgrade's transaction: lets a test
#: kill an upgrade half-way (a test hook; unset, no pause).
SLOW_UPGRADE_ENV = "LABELING_STORE_UPGRADE_STEP_SLEEP"


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat()


@contextmanager
def writer_lock(store_path: str | Path) -> Iterator[None]:
    """Hold the store's run-writer lock (``<store>.lock``): one retrain records, or one sweep
    looks for orphans, at a time, so a sweep never takes a concurrent retrain's half-written
    folders for orphans. The OS releases it when its holder dies, kill -9 included. On
    PostgreSQL it is a session advisory lock, released when the holder's session ends."""
    if is_postgres(store_path):
        with _postgres_session(store_path) as session:
            session.execute("SELECT pg_advisory_lock(%s)", [dialect.RUN_WRITER_LOCK_KEY])
            yield
        return
    path = Path(store_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def create_private_file(path: Path) -> None:
    """Create ``path`` (and its missing parent folders) readable by its owner only.

    The store holds served texts and feedback: other local users must not read it.
    SQLite gives its -wal and -shm files the database file's mode, so creating the
    file 0o600 before SQLite opens it covers them too. A store created before this
    loses its group and other permissions (with its -wal and -shm files).
    """
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        for existing in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
            try:
                mode = existing.stat().st_mode
                if mode & 0o077:
                    existing.chmod(mode & 0o700)
            except (FileNotFoundError, PermissionError):
                pass  # not there, or not ours: SQLite says what it cannot open


def write_private_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, readable by its owner only, in a folder made 0o700."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)


def plain(value):
    """A value SQLite can bind: numpy scalars as Python numbers, containers as JSON."""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        return value.item()
    return value


def insert_rows(conn: sqlite3.Connection, table: str, rows: Iterable[dict], *, verb: str = "INSERT") -> int:
    """Insert dict rows (keys = column names, from our code) inside the caller's transaction."""
    groups: dict[tuple[str, ...], list[tuple]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(tuple(plain(v) for v in row.values()))
    for columns, values in groups.items():
        names = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        conn.executemany(f'{verb} INTO "{table}" ({names}) VALUES ({marks})', values)
    return sum(len(v) for v in groups.values())


class ClosesOnExit:
    """Mixin: ``with obj:`` closes ``obj`` on leaving the block (``close()`` defined by the class)."""

    def close(self) -> None:  # pragma: no cover - every user defines it
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class Connection(ClosesOnExit):
    """One connection to the SQLite store at ``path`` (created owner-only), schema at ``SCHEMA_VERSION``.

    ``connect(target)`` picks this class or ``PostgresConnection`` from the target.
    Raises ``StoreError`` when the file cannot be opened, ``StoreVersionError`` when newer code wrote it.
    """

    #: the driver's errors that mean "the database refused": ``writing``/``read`` turn them into ``StoreError``
    errors: tuple[type[BaseException], ...] = (sqlite3.DatabaseError,)
    #: appended to a claim's SELECT: SQLite's one writer already excludes other claimers
    claim_rows = dialect.SQLITE_CLAIM_ROWS

    def __init__(self, path: str | Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS, synchronous: str = "FULL"):
        self.path = Path(path)
        self.where = str(self.path)
        create_private_file(self.path)
        # Several threads of one worker (FastAPI's thread pool) share this
        # connection; the lock serialises them, SQLite serialises the processes.
        self.lock = threading.RLock()
        try:
            # isolation_level=None: no implicit deferred BEGIN; transactions are ours.
            self.raw = sqlite3.connect(str(self.path), timeout=busy_timeout_ms / 1000, isolation_level=None,
                                       check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        try:
            self.raw.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            for pragma in PRAGMAS:
                self.raw.execute(pragma)
            self.raw.execute(f"PRAGMA synchronous={synchronous}")
            self._open()
        except sqlite3.DatabaseError as exc:
            self.raw.close()
            raise StoreError(f"cannot open store {self.path}: {exc}") from exc
        except BaseException:
            self.raw.close()
            raise

    def _open(self) -> None:
        if self.version() != SCHEMA_VERSION:
            self.upgrade()

    def close(self) -> None:
        self.raw.close()

    # -- transactions and reads --------------------------------------------

    @contextmanager
    def _savepoint(self) -> Iterator[None]:
        # A transaction opened inside an open one is a savepoint of it: its failure undoes only
        # its own writes, and the outer transaction decides whether anything is kept.
        self.raw.execute("SAVEPOINT nested")
        try:
            yield
        except BaseException:
            self.raw.execute("ROLLBACK TO nested")
            self.raw.execute("RELEASE nested")
            raise
        self.raw.execute("RELEASE nested")

    @contextmanager
    def transaction(self, *, serial: bool = True) -> Iterator[sqlite3.Connection]:
        """One write transaction: the write lock is taken at BEGIN, not at the first write.
        Nested in an open one, it is a savepoint of it. ``serial=False``: the transaction only
        inserts or updates rows by key and need not exclude other writers (SQLite has one
        writer at a time anyway; PostgreSQL then skips its write lock)."""
        with self.lock:
            if self.raw.in_transaction:
                with self._savepoint():
                    yield self.raw
                return
            self.raw.execute("BEGIN IMMEDIATE")
            try:
                yield self.raw
            except BaseException:
                if self.raw.in_transaction:
                    self.raw.execute("ROLLBACK")
                raise
            self.raw.execute("COMMIT")

    @contextmanager
    def writing(self, what: str, *, serial: bool = True) -> Iterator[sqlite3.Connection]:
        """``transaction()`` whose database errors become ``StoreError("cannot <what> in <store>")``."""
        try:
            with self.transaction(serial=serial) as conn:
                yield conn
        except self.errors as exc:
            raise StoreError(f"cannot {what} in {self.where}: {exc}") from exc

    def execute(self, sql: str, args: Sequence = ()):
        """Run one statement outside a transaction of ours (its own, on either backend); a cursor."""
        return self.raw.execute(sql, tuple(args))

    def read(self, sql: str, args: Sequence = ()) -> list[dict]:
        """Rows of a query as dicts, under the connection's lock."""
        with self.lock:
            try:
                cur = self.execute(sql, args)
                cols = [d[0] for d in cur.description]
                return [dict(zip(cols, row)) for row in cur.fetchall()]
            except self.errors as exc:
                raise StoreError(f"cannot read {self.where}: {exc}") from exc

    def read_one(self, sql: str, args: Sequence = ()) -> dict | None:
        rows = self.read(sql, args)
        return rows[0] if rows else None

    # -- the catalogue (``transfer.copy_store``) ----------------------------

    #: every table has SQLite's implicit rowid, the order rows were inserted in
    has_rowid = True

    def tables(self) -> list[str]:
        return [r["name"] for r in self.read("SELECT name FROM sqlite_master WHERE type = 'table'"
                                             " AND name NOT LIKE 'sqlite_%' ORDER BY name")]

    def columns(self, table: str) -> list[str]:
        return [r["name"] for r in self.read(f'PRAGMA table_info("{table}")')]

    @contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """One consistent view of the whole store to read from (writers wait until it ends)."""
        with self.transaction() as conn:
            yield conn

    def after_copy(self, conn, table: str) -> None:
        """Set ``table``'s counters past the rows just copied in (SQLite's AUTOINCREMENT follows
        explicit ids by itself)."""

    # -- schema version ----------------------------------------------------

    def version(self) -> int:
        with self.lock:
            return int(self.raw.execute("PRAGMA user_version").fetchone()[0])

    def _set_version(self, conn, version: int) -> None:
        conn.execute(f"PRAGMA user_version={int(version)}")

    def pending(self) -> list[Migration]:
        """The migrations this store lacks (raises ``StoreVersionError`` when it is newer than the code)."""
        version = self.version()
        if version > SCHEMA_VERSION:
            raise StoreVersionError(
                f"store {self.where} has schema version {version}, newer than this code's {SCHEMA_VERSION}: "
                "upgrade labeling to open it (or open a backup made before the newer version wrote it)")
        return [m for m in MIGRATIONS if m.version > version]

    def upgrade(self) -> list[Migration]:
        """Apply the missing migrations in one writer transaction; returns those applied.

        The version is read again under the write lock: of several processes opening an old
        store at once, the first upgrades it and the others find it done. On PostgreSQL too
        the whole upgrade is one transaction (its DDL is transactional).
        """
        pause = float(os.environ.get(SLOW_UPGRADE_ENV) or 0)
        with self.transaction() as conn:
            steps = self.pending()
            for step in steps:
                step.apply(conn)
                if pause:
                    time.sleep(pause)
            if steps:
                if steps[-1].version >= 2:  # schema_migrations exists from version 2 on
                    insert_rows(conn, "schema_migrations",
                                ({"version": m.version, "description": m.description, "applied_at": utc_now()}
                                 for m in steps), verb="INSERT OR REPLACE")
                self._set_version(conn, SCHEMA_VERSION)
        return steps


def _nul_free(value):
    return value.replace("\x00", "\ufffd") if isinstance(value, str) and "\x00" in value else value


def _without_nul(args: Sequence | dict) -> tuple | dict:
    """``args`` for psycopg: PostgreSQL's text cannot hold NUL (U+0000), which SQLite and our
    API accept, so a NUL is stored as U+FFFD (a row's ``text_sha256`` keeps the original's hash)."""
    if isinstance(args, dict):
        return {k: _nul_free(v) for k, v in args.items()}
    return tuple(_nul_free(v) for v in args)


class PostgresTransaction:
    """A PostgreSQL connection as the table families use a ``sqlite3.Connection`` inside a
    transaction: ``execute``/``executemany`` with SQLite's SQL, translated (``dialect``)."""

    def __init__(self, raw, sql: dialect.PostgresSQL):
        self.raw, self.sql = raw, sql

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def execute(self, sql: str, args: Sequence | dict = ()):
        text, override = self.sql.translate(sql)
        cur = self.raw.cursor()
        if text:
            cur.execute(text, override if override is not None else _without_nul(args))
        return cur

    def executemany(self, sql: str, rows: Iterable):
        text, _ = self.sql.translate(sql)
        cur = self.raw.cursor()
        rows = [_without_nul(r) for r in rows]
        if rows:
            cur.executemany(text, rows)
        return cur


@contextmanager
def _postgres_session(url: str):
    """A plain autocommit psycopg connection to ``url``, closed after use (``StoreError`` when refused)."""
    import psycopg

    try:
        session = psycopg.connect(url, autocommit=True)
    except psycopg.Error as exc:
        raise StoreError(f"cannot open store {describe(url)}: {exc}") from exc
    try:
        yield session
    finally:
        session.close()


class PostgresConnection(Connection):
    """One connection to a PostgreSQL store (``postgresql://...``), schema at ``SCHEMA_VERSION``.

    The same discipline as SQLite's: one connection per process shared by its threads under
    ``lock``; every write one transaction. A serial transaction (the default) first takes a
    transaction-scoped advisory lock, the counterpart of SQLite's ``BEGIN IMMEDIATE``: writers
    that read then write (an idempotency key, a promotion gate, an alias move) run one at a time
    across every host, and see everything committed before them.
    """

    claim_rows = dialect.POSTGRES_CLAIM_ROWS

    def __init__(self, url: str, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS, synchronous: str = "FULL"):
        import psycopg

        self.errors = (psycopg.Error,)
        self.path = url
        self.where = describe(url)
        self.lock = threading.RLock()
        self._keys: dict[str, list[str]] = {}
        try:
            self.raw = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            raise StoreError(f"cannot open store {self.where}: {exc}") from exc
        self.tx = PostgresTransaction(self.raw, dialect.PostgresSQL(self._primary_key))
        try:
            # busy timeout: how long a statement waits for a lock before it fails
            self.raw.execute(f"SET lock_timeout = {int(busy_timeout_ms)}")
            # synchronous=OFF (a server's setting) is PostgreSQL's asynchronous commit
            self.raw.execute("SET synchronous_commit = " + ("off" if synchronous.upper() == "OFF" else "on"))
            self._open()
        except psycopg.Error as exc:
            self.raw.close()
            raise StoreError(f"cannot open store {self.where}: {exc}") from exc
        except BaseException:
            self.raw.close()
            raise

    def _primary_key(self, table: str) -> list[str]:
        if table not in self._keys:
            rows = self.raw.execute(dialect.PRIMARY_KEY_SQL, [table]).fetchall()
            self._keys[table] = [r[0] for r in rows]
        return self._keys[table]

    @contextmanager
    def transaction(self, *, serial: bool = True) -> Iterator[PostgresTransaction]:
        with self.lock:
            if self.tx.in_transaction:
                with self._savepoint():
                    yield self.tx
                return
            self.raw.execute("BEGIN")
            try:
                if serial:
                    self.raw.execute("SELECT pg_advisory_xact_lock(%s)", [dialect.WRITE_LOCK_KEY])
                yield self.tx
            except BaseException:
                if self.tx.in_transaction and not self.raw.closed:
                    self.raw.execute("ROLLBACK")
                raise
            self.raw.execute("COMMIT")

    def execute(self, sql: str, args: Sequence = ()):
        return self.tx.execute(sql, args)

    has_rowid = False  # only ROWID_TABLES have one, as a column

    def tables(self) -> list[str]:
        rows = self.raw.execute("SELECT table_name FROM information_schema.tables WHERE table_schema ="
                                " current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name").fetchall()
        return [r[0] for r in rows if r[0] != dialect.POSTGRES_VERSION_TABLE]

    def columns(self, table: str) -> list[str]:
        return [r[1] for r in self.raw.execute(dialect.TABLE_INFO_SQL, [table]).fetchall()]

    @contextmanager
    def snapshot(self) -> Iterator[PostgresTransaction]:
        with self.lock:
            self.raw.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield self.tx
            finally:
                self.raw.execute("ROLLBACK")

    def after_copy(self, conn, table: str) -> None:
        """Identity columns continue after the largest id copied in (explicit ids do not move them)."""
        for (column,) in self.raw.execute(dialect.IDENTITY_COLUMNS_SQL, [table]).fetchall():
            self.raw.execute(f'SELECT setval(pg_get_serial_sequence(%s, %s), COALESCE(max("{column}"), 0) + 1,'
                             f' false) FROM "{table}"', [table, column])

    def version(self) -> int:
        with self.lock:
            return _postgres_version(self.raw)

    def _set_version(self, conn, version: int) -> None:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {dialect.POSTGRES_VERSION_TABLE} (version INTEGER NOT NULL)")
        conn.execute(f"DELETE FROM {dialect.POSTGRES_VERSION_TABLE}")
        conn.execute(f"INSERT INTO {dialect.POSTGRES_VERSION_TABLE} (version) VALUES (?)", [int(version)])


def _postgres_version(raw) -> int:
    table = dialect.POSTGRES_VERSION_TABLE
    if raw.execute("SELECT to_regclass(%s)", [table]).fetchone()[0] is None:
        return 0
    row = raw.execute(f"SELECT max(version) FROM {table}").fetchone()
    return int(row[0] or 0)


def connect(target: str | Path, **settings) -> Connection:
    """A connection to the store ``target``: a SQLite file path, or a ``postgresql://`` URL.
    ``settings``: ``busy_timeout_ms``, ``synchronous`` (see ``Connection``)."""
    if is_postgres(target):
        return PostgresConnection(str(target), **settings)
    return Connection(target, **settings)


def store_exists(target: str | Path) -> bool:
    """Whether the store holds anything yet: the file exists, or the database has our schema."""
    if is_postgres(target):
        return store_version(target) > 0
    return Path(target).is_file()


def table_names(path: str | Path) -> set[str]:
    """The tables of the store at ``path``, read without creating or upgrading it (empty when absent)."""
    if is_postgres(path):
        with _postgres_session(path) as session:
            rows = session.execute("SELECT table_name FROM information_schema.tables"
                                   " WHERE table_schema = current_schema()").fetchall()
        return {row[0] for row in rows} - {dialect.POSTGRES_VERSION_TABLE}
    if not Path(path).is_file():
        return set()
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read store {path}: {exc}") from exc


def store_version(path: str | Path) -> int:
    """The schema version of the store at ``path``, read without upgrading it (0 when absent)."""
    if is_postgres(path):
        with _postgres_session(path) as session:
            return _postgres_version(session)
    if not Path(path).is_file():
        return 0
    conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def upgrade_store(path: str | Path, *, dry_run: bool = False) -> list[str]:
    """Upgrade the store at ``path`` (a SQLite file or a ``postgresql://`` URL) to ``SCHEMA_VERSION``;
    ``dry_run``: only say how.

    Returns one line per migration step (``"<version>: <description>"``), those applied
    (or, with ``dry_run``, those that would be). Raises ``StoreVersionError`` for a store
    newer than the code, ``StoreError`` when it cannot be opened.
    """
    path = store_target(path)
    if dry_run:
        version = store_version(path)
        if version > SCHEMA_VERSION:
            raise StoreVersionError(f"store {describe(path)} has schema version {version}, newer than this"
                                    f" code's {SCHEMA_VERSION}: upgrade labeling to open it")
        steps = [m for m in MIGRATIONS if m.version > version]
    else:
        # Opening upgrades; the connection then finds nothing left to do.
        before = store_version(path)
        with connect(path):
            pass
        steps = [m for m in MIGRATIONS if m.version > before]
    return [f"{m.version}: {m.description}" for m in steps]


class TableFamily(ClosesOnExit):
    """Base of the store's table families (runs, gold, gold spans, jobs, serving): one
    connection (``conn``) to the store at ``path`` (a SQLite path or a PostgreSQL URL), opened
    and upgraded by ``connect``; ``settings`` are ``connect``'s keyword settings."""

    def __init__(self, path: str | Path, **settings):
        self.path = store_target(path)
        self.conn = connect(self.path, **settings)

    def close(self) -> None:
        self.conn.close()
