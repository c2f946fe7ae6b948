"""Gold entity spans in the store (``gold_spans``): what span review pulled, per project and task.

A task's spans are replaced as a whole on each pull (the reviewer's latest answer wins),
in one transaction, so a reader sees a task's old spans or its new ones, never a mix.
``gold_span_texts`` gives retrain every gold text: reviewed tasks and span feedback posted
to the server (``feedback.spans``), the latest per text winning.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .connection import TableFamily

Span = tuple[int, int, str]
NO_ENTITY: Span = (-1, -1, "")  # the row of a reviewed text without entities


class GoldSpans(TableFamily):
    """The ``gold_spans`` table of the store at ``path``."""


    def replace(self, project: str, gold: Mapping[str, tuple[str, Sequence[Span]]], *,
                annotation_ids: Mapping[str, int] | None = None) -> int:
        """Store ``gold`` (task key -> (text, spans)), replacing those tasks' earlier spans;
        ``annotation_ids``: task key -> the Label Studio answer they came from (what a deleted
        answer's webhook names). Returns the number of spans written."""
        with self.conn.writing(f"store gold spans of {len(gold)} tasks") as conn:
            return self._write(conn, project, gold, annotation_ids or {})

    def mirror(self, project: str, gold: Mapping[str, tuple[str, Sequence[Span]]], *,
               annotation_ids: Mapping[str, int] | None = None) -> tuple[int, int]:
        """``replace``, and in the same transaction remove the gold of every other task of
        ``project``: what a pull of the whole review does, so that an answer deleted in Label
        Studio since the last pull takes its gold with it. Returns (spans written, tasks removed)."""
        with self.conn.writing(f"mirror gold spans of {len(gold)} tasks") as conn:
            cur = conn.execute("SELECT DISTINCT task_key FROM gold_spans WHERE project = ?", [project])
            gone = sorted({row[0] for row in cur.fetchall()} - set(gold))
            conn.executemany("DELETE FROM gold_spans WHERE project = ? AND task_key = ?",
                             [(project, key) for key in gone])
            return self._write(conn, project, gold, annotation_ids or {}), len(gone)

    def remove_answers(self, project: str, annotation_ids: Sequence[int]) -> list[str]:
        """Delete the gold spans that came from the given (deleted in Label Studio) answers;
        returns the keys of the tasks whose gold went."""
        ids = sorted({int(i) for i in annotation_ids})
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        with self.conn.writing("remove gold spans of deleted answers") as conn:
            cur = conn.execute(f"SELECT DISTINCT task_key FROM gold_spans WHERE project = ? AND annotation_id IN"
                               f" ({marks})", [project, *ids])
            keys = sorted(row[0] for row in cur.fetchall())
            conn.execute(f"DELETE FROM gold_spans WHERE project = ? AND annotation_id IN ({marks})", [project, *ids])
        return keys

    @staticmethod
    def _write(conn, project: str, gold: Mapping[str, tuple[str, Sequence[Span]]], annotation_ids) -> int:
        now = _dt.datetime.now(_dt.timezone.utc).isoformat()
        # a text reviewed as holding no entity is gold too: one row (-1, -1, "") says so
        rows = [(project, key, hashlib.sha256(text.encode("utf-8")).hexdigest(), s, e, label, now, text,
                 annotation_ids.get(key))
                for key, (text, spans) in gold.items() for s, e, label in (spans or [NO_ENTITY])]
        conn.executemany("DELETE FROM gold_spans WHERE project = ? AND task_key = ?", [(project, key) for key in gold])
        conn.executemany("INSERT INTO gold_spans (project, task_key, text_sha256, start_char, end_char, label,"
                         " pulled_at, text, annotation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        return sum(len(spans) for _, spans in gold.values())

    def spans(self, project: str) -> dict[str, tuple[str, list[Span]]]:
        """task key -> (the text's sha256, its spans sorted; [] for a text reviewed as holding none)."""
        out: dict[str, tuple[str, list[Span]]] = {}
        for row in self.conn.read("SELECT task_key, text_sha256, start_char, end_char, label FROM gold_spans"
                                  " WHERE project = ? ORDER BY task_key, start_char, end_char, label", [project]):
            spans = out.setdefault(row["task_key"], (row["text_sha256"], []))[1]
            if row["start_char"] >= 0:
                spans.append((row["start_char"], row["end_char"], row["label"]))
        return out


@dataclass(frozen=True)
class GoldSpanText:
    """One text's gold spans: ``source`` "review" (``key``: the task key) or "feedback"
    (``key``: the feedback id); ``text`` is None when only its sha256 was kept."""

    key: str
    source: str
    text_sha256: str
    text: str | None
    spans: tuple[Span, ...]
    at: str


def gold_span_texts(path: str | Path, project: str) -> list[GoldSpanText]:
    """Every text with gold spans in the store at ``path``: ``project``'s reviewed tasks
    (``gold_spans``) and span feedback (an empty list of spans included: no entity there); one per text (by sha256), the latest winning, sorted by text sha256."""
    latest: dict[str, GoldSpanText] = {}
    with GoldSpans(path) as store:
        reviewed: dict[tuple, list] = {}
        for row in store.conn.read("SELECT task_key, text_sha256, text, start_char, end_char, label, pulled_at"
                                   " FROM gold_spans WHERE project = ? ORDER BY task_key, start_char, end_char, label",
                                   [project]):
            key = (row["task_key"], row["text_sha256"], row["text"], row["pulled_at"])
            spans = reviewed.setdefault(key, [])
            if row["start_char"] >= 0:
                spans.append((row["start_char"], row["end_char"], row["label"]))
        found = [GoldSpanText(k, "review", h, t, tuple(v), at) for (k, h, t, at), v in reviewed.items()]
        for row in store.conn.read(
                "SELECT f.id AS id, f.text_sha256 AS text_sha256, COALESCE(f.text, p.text) AS text, f.spans AS spans,"
                " f.created_at AS created_at FROM feedback f LEFT JOIN predictions p ON p.id = f.prediction_id"
                " WHERE f.spans IS NOT NULL ORDER BY f.created_at, f.id"):
            found.append(GoldSpanText(row["id"], "feedback", row["text_sha256"], row["text"],
                                      tuple(sorted(tuple(s) for s in json.loads(row["spans"]))), row["created_at"]))
    for item in sorted(found, key=lambda g: g.at):
        latest[item.text_sha256] = item
    return [latest[h] for h in sorted(latest)]
