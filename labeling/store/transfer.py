"""Copy a whole store to another backend: SQLite -> PostgreSQL to serve from several hosts, or back.

``copy_store(source, target)`` opens both (each upgraded to ``SCHEMA_VERSION`` first, so their
tables match), refuses a target that holds any row, then copies every table in one transaction
on the target, reading the source from one consistent snapshot, and checks each table's row
count before it commits: a copy that fails leaves the target as empty as it found it.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import StoreError
from .connection import Connection, connect, insert_rows
from .dialect import ROWID_TABLES, describe, store_target
from .schema import V1_TABLES, V2_STATEMENTS

#: Bookkeeping every store writes for itself when it is created: not copied, not counted.
OWN_TABLES = ("schema_migrations",)
#: Rows read and written per batch.
BATCH_ROWS = 5000


def _tables(conn: Connection) -> list[str]:
    """The store's tables, parents before the tables that reference them (schema order; tables
    added by later migrations after them, by name)."""
    names = set(conn.tables()) - set(OWN_TABLES)
    order = re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", V1_TABLES + V2_STATEMENTS)
    return sorted(names, key=lambda t: (order.index(t), "") if t in order else (len(order), t))


def _columns(conn: Connection, table: str) -> list[str]:
    return [c for c in conn.columns(table) if c != "rowid"]  # PostgreSQL's stand-in for SQLite's rowid


def _count(conn, table: str) -> int:
    return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])


def copy_store(source: str | Path, target: str | Path) -> dict[str, int]:
    """Copy every row of the store ``source`` into the empty store ``target`` (each a SQLite file
    path or a ``postgresql://`` URL); returns ``{table: rows copied}``.

    Raises ``StoreError`` when the target holds any row (naming the table), when a count
    differs after the copy, or when either store cannot be opened or written.
    """
    source, target = store_target(source), store_target(target)
    if str(source) == str(target):
        raise StoreError(f"cannot copy store {describe(source)} onto itself")
    with connect(source) as src, connect(target) as dst:
        tables = _tables(src)
        missing = sorted(set(tables) - set(dst.tables()))
        if missing:
            raise StoreError(f"target {dst.where} lacks table(s) {', '.join(missing)} of {src.where}")
        copied: dict[str, int] = {}
        with src.snapshot() as read, dst.writing(f"copy {src.where} into it") as write:
            for table in _tables(dst):
                rows = _count(write, table)
                if rows:
                    raise StoreError(f"target store {dst.where} is not empty: table {table} has {rows} row(s);"
                                     " copy into a new store")
            for table in tables:
                columns = [c for c in _columns(src, table) if c in set(_columns(dst, table))]
                # A trigger may have filled this table while earlier ones were copied (the alias
                # history, from model_aliases): the source's rows replace what it wrote.
                write.execute(f'DELETE FROM "{table}"')
                names = ", ".join(f'"{c}"' for c in columns)
                # in insertion order: the target numbers rows (its rowid) in the source's order
                order = " ORDER BY rowid" if table in ROWID_TABLES or src.has_rowid else ""
                cursor = read.execute(f'SELECT {names} FROM "{table}"{order}')
                while batch := cursor.fetchmany(BATCH_ROWS):
                    insert_rows(write, table, (dict(zip(columns, row)) for row in batch))
                dst.after_copy(write, table)
                copied[table] = _count(read, table)
            for table, expected in copied.items():
                got = _count(write, table)
                if got != expected:
                    raise StoreError(f"copy of table {table} into {dst.where} has {got} row(s), the source"
                                     f" {expected}: nothing was copied")
    return copied
