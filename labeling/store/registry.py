"""Aliases over runs: their history and promotion decisions.

- ``model_alias_history``: every move of an alias, written by triggers on
  ``model_aliases`` (so a server's own alias writes are logged too); ``action``
  says ``set``, ``rollback`` or ``forced``.
- ``promotions``: every gate decision, promoted or not.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping

from .connection import Connection, insert_rows, utc_now
from .runs import put_document
from .serving import upsert_alias


def aliases(conn: Connection) -> dict[str, str]:
    return {r["alias"]: r["run_id"] for r in conn.read("SELECT alias, run_id FROM model_aliases ORDER BY alias")}


def alias_history(conn: Connection, alias: str | None = None) -> list[dict]:
    """Alias moves, oldest first (``alias``: only its moves)."""
    where, args = ("WHERE alias = ?", [alias]) if alias else ("", [])
    return conn.read(f"SELECT * FROM model_alias_history {where} ORDER BY seq", args)


def mark_last_move(conn: sqlite3.Connection, alias: str, run_id: str, action: str,
                   previous_run_id: str | None = None) -> None:
    """Mark the latest move of ``alias`` to ``run_id`` (from ``previous_run_id`` when given) as
    ``action`` (``rollback``, ``forced``), inside the caller's transaction."""
    match, args = ("AND previous_run_id = ?", [previous_run_id]) if previous_run_id is not None else ("", [])
    conn.execute("UPDATE model_alias_history SET action = ? WHERE seq = (SELECT max(seq) FROM"
                 f" model_alias_history WHERE alias = ? AND run_id = ? {match})", [action, alias, run_id, *args])


def promotions(conn: Connection, run_id: str | None = None) -> list[dict]:
    """Gate decisions, oldest first (``run_id``: only those about that candidate)."""
    where, args = ("WHERE candidate_run_id = ?", [run_id]) if run_id else ("", [])
    return conn.read(f"SELECT * FROM promotions {where} ORDER BY seq", args)


def write_decision(conn: sqlite3.Connection, decision: Mapping, *, alias: str, candidate_alias: str | None) -> None:
    """Write a gate decision (``GateDecision.to_dict()``) inside the caller's transaction: its
    ``promotions`` row, the run's ``promotion`` document, ``alias`` moved when it promoted (marked
    ``forced`` when forced), and ``candidate_alias`` pointed at the run when given."""
    d = decision
    run_id = d["candidate_run_id"]
    if candidate_alias is not None:
        upsert_alias(conn, candidate_alias, run_id)
    if d["promoted"]:
        upsert_alias(conn, alias, run_id)
        if d["forced"]:
            mark_last_move(conn, alias, run_id, "forced")
    columns = ("candidate_run_id", "champion_run_id", "metric", "candidate_score", "champion_score", "margin",
               "passed", "promoted", "reason", "forced", "actor", "note")
    insert_rows(conn, "promotions", [{"created_at": utc_now(), **{c: d[c] for c in columns},
                                      **{c: int(d[c]) for c in ("passed", "promoted", "forced")}}])
    put_document(conn, run_id, "promotion", dict(d))
