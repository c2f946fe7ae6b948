"""The store's two SQL dialects: SQLite (a file path) and PostgreSQL (a ``postgresql://`` URL).

Every difference between the two lives here; the table families write one SQL, SQLite's, and
run unchanged on both. On PostgreSQL a statement is translated before it runs:

- placeholders: ``?`` -> ``%s``, ``:name`` -> ``%(name)s`` (a literal ``%`` -> ``%%``);
- ``INSERT OR IGNORE`` -> ``INSERT ... ON CONFLICT DO NOTHING``; ``INSERT OR REPLACE`` ->
  ``INSERT ... ON CONFLICT (primary key) DO UPDATE SET`` every other column;
- DDL: ``INTEGER PRIMARY KEY AUTOINCREMENT`` -> an identity column, ``INTEGER`` -> ``BIGINT``,
  ``REAL`` -> ``DOUBLE PRECISION`` (PostgreSQL's ``REAL`` is 4 bytes), ``TEXT`` -> ``TEXT
  COLLATE "C"`` (byte order, SQLite's, whatever the database's locale); the tables whose queries
  order by SQLite's implicit ``rowid`` (``ROWID_TABLES``) get an explicit identity ``rowid``;
  triggers are spelled in PL/pgSQL (``POSTGRES_TRIGGERS``);
- ``PRAGMA table_info(t)`` -> the same columns read from ``information_schema``.

The schema version is ``PRAGMA user_version`` on SQLite and the one row of ``store_version``
on PostgreSQL.
"""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

POSTGRES_SCHEMES = ("postgresql://", "postgres://")

#: Tables read in insertion order (``ORDER BY rowid``): PostgreSQL has no implicit rowid, so
#: there they get an identity column of that name.
ROWID_TABLES = ("predictions", "feedback")

#: PostgreSQL's table for the schema version (SQLite keeps it in ``PRAGMA user_version``).
POSTGRES_VERSION_TABLE = "store_version"

#: The key of the advisory locks the store takes on PostgreSQL: the write lock every
#: serialised transaction holds (SQLite's ``BEGIN IMMEDIATE``) and the run-writer lock
#: (SQLite's ``<store>.lock`` file). Arbitrary constants, the same in every process.
WRITE_LOCK_KEY = 0x6C61_6265  # "labe"
RUN_WRITER_LOCK_KEY = 0x6C69_6E67  # "ling"

#: What a claim's ``SELECT`` (of LF vote jobs) ends with: SQLite's one writer at a time
#: already excludes other claimers; PostgreSQL locks the claimed rows and skips the rows
#: another transaction holds, so concurrent claimers on several hosts never take one job twice.
SQLITE_CLAIM_ROWS = ""
POSTGRES_CLAIM_ROWS = " FOR UPDATE SKIP LOCKED"

#: schema.py's SQLite triggers, in PL/pgSQL: the alias history is written by the database,
#: so every writer's alias moves are logged (any host's).
POSTGRES_TRIGGERS = {
    "model_aliases_history_insert": """
CREATE OR REPLACE FUNCTION model_aliases_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO model_alias_history (alias, run_id, previous_run_id, changed_at)
        VALUES (NEW.alias, NEW.run_id, NULL, NEW.updated_at);
    ELSIF NEW.run_id IS DISTINCT FROM OLD.run_id THEN
        INSERT INTO model_alias_history (alias, run_id, previous_run_id, changed_at)
        VALUES (NEW.alias, NEW.run_id, OLD.run_id, NEW.updated_at);
    END IF;
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER model_aliases_history AFTER INSERT OR UPDATE ON model_aliases
FOR EACH ROW EXECUTE FUNCTION model_aliases_history()""",
    # one PL/pgSQL function and trigger covers both SQLite triggers
    "model_aliases_history_update": "",
}


def is_postgres(target: object) -> bool:
    """Whether ``target`` (a ``project.store`` value) names a PostgreSQL database."""
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def store_target(value: str | Path) -> str | Path:
    """``value`` as a store target: a PostgreSQL URL kept as given, anything else a ``Path``."""
    return value if is_postgres(value) else Path(value)


def describe(target: object) -> str:
    """``target`` for messages: a URL without its password."""
    if not is_postgres(target):
        return str(target)
    parts = urllib.parse.urlsplit(str(target))
    if parts.password is None:
        return str(target)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


# -- statement translation (PostgreSQL) --------------------------------------

_TOKENS = re.compile(r"'(?:[^']|'')*'|\"[^\"]*\"|\?|(?<!:):[A-Za-z_]\w*|%")
_INSERT_OR = re.compile(r"^\s*INSERT\s+OR\s+(IGNORE|REPLACE)\s+INTO\s+\"?(\w+)\"?\s*(?:\(([^)]*)\))?", re.I)
_PRAGMA_TABLE_INFO = re.compile(r"^\s*PRAGMA\s+table_info\(\s*\"?(\w+)\"?\s*\)\s*$", re.I)
_CREATE_TRIGGER = re.compile(r"^\s*CREATE\s+TRIGGER\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I)
_CREATE_TABLE = re.compile(r"^(\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?(\w+)\"?\s*\()", re.I)
_DDL = re.compile(r"^\s*(CREATE\s+TABLE|ALTER\s+TABLE)", re.I)

TABLE_INFO_SQL = (
    "SELECT ordinal_position - 1 AS cid, column_name AS name, data_type AS type,"
    " (is_nullable = 'NO')::int AS notnull, column_default AS dflt_value, 0 AS pk"
    " FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = %s"
    " ORDER BY ordinal_position")

IDENTITY_COLUMNS_SQL = ("SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
                        " AND table_name = %s AND is_identity = 'YES'")

PRIMARY_KEY_SQL = (
    "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
    " WHERE i.indrelid = to_regclass(%s) AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)")


#: Column names our schema uses that PostgreSQL reserves: quoted wherever they appear unquoted.
RESERVED_COLUMNS = re.compile(r'(?<!")\b(overlaps)\b(?!")', re.I)


def reserved(sql: str) -> str:
    return RESERVED_COLUMNS.sub(r'"\1"', sql)


def placeholders(sql: str) -> str:
    """SQLite's ``?`` and ``:name`` placeholders as psycopg's ``%s`` and ``%(name)s``."""
    def swap(match: re.Match) -> str:
        token = match.group(0)
        if token == "?":
            return "%s"
        if token == "%":
            return "%%"
        if token.startswith(":"):
            return f"%({token[1:]})s"
        if token.startswith("'"):
            return token.replace("%", "%%")  # psycopg reads % in literals too
        return token  # a quoted name: kept as written
    return _TOKENS.sub(swap, sql)


def ddl(statement: str) -> str:
    """A SQLite DDL statement in PostgreSQL's types (see the module docstring)."""
    trigger = _CREATE_TRIGGER.match(statement)
    if trigger:
        return POSTGRES_TRIGGERS[trigger.group(1)]
    if not _DDL.match(statement):
        return statement
    out = reserved(statement)
    out = re.sub(r"\bINTEGER\s+PRIMARY\s+KEY\s+AUTOINCREMENT\b",
                 "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", out, flags=re.I)
    # types as schema.py writes them, upper case (a column may be called "text")
    out = re.sub(r"\bINTEGER\b", "BIGINT", out)
    out = re.sub(r"\bREAL\b", "DOUBLE PRECISION", out)
    # byte order, as SQLite compares text: ORDER BY and < on ids and ISO times agree on both
    out = re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', out)
    out = re.sub(r"\bADD\s+COLUMN\b", "ADD COLUMN IF NOT EXISTS", out, flags=re.I)
    table = _CREATE_TABLE.match(out)
    if table and table.group(2) in ROWID_TABLES:
        out = out[:table.end()] + " rowid BIGINT GENERATED BY DEFAULT AS IDENTITY UNIQUE," + out[table.end():]
    return out


class PostgresSQL:
    """Translates one connection's statements; knows its tables' primary keys (for ``INSERT OR REPLACE``)."""

    def __init__(self, primary_key):
        self.primary_key = primary_key  # table -> its primary-key columns (read from the catalogue)

    def translate(self, sql: str) -> tuple[str, list | None]:
        """``(statement, arguments)``: the statement in PostgreSQL's SQL (a trigger: its function and
        trigger; empty: nothing to run), and the arguments it takes instead of the caller's (or None)."""
        info = _PRAGMA_TABLE_INFO.match(sql)
        if info:
            return TABLE_INFO_SQL, [info.group(1)]
        if _CREATE_TRIGGER.match(sql) or _DDL.match(sql):
            return ddl(sql), None
        insert = _INSERT_OR.match(sql)
        if insert:
            mode, table, columns = insert.group(1).upper(), insert.group(2), insert.group(3)
            sql = f'INSERT INTO "{table}"' + (f" ({columns})" if columns else "") + " " + sql[insert.end():].lstrip()
            if mode == "IGNORE":
                sql += " ON CONFLICT DO NOTHING"
            else:
                keys = self.primary_key(table)
                names = [c.strip().strip('"') for c in (columns or "").split(",") if c.strip()]
                rest = [c for c in names if c not in keys]
                target = ", ".join(f'"{k}"' for k in keys)
                sets = ", ".join(f'"{c}" = EXCLUDED."{c}"' for c in rest)
                sql += f" ON CONFLICT ({target}) " + (f"DO UPDATE SET {sets}" if sets else "DO NOTHING")
        return placeholders(reserved(sql)), None
