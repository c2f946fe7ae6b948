"""Gold entity spans in the store (``gold_spans``): what span review pulled, per project and task.

A task's spans are replaced as a whole on each pull (the reviewer's latest answer wins),
in one transaction, so a reader sees a task's old spans or its new ones, never a mix.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from .connection import TableFamily

Span = tuple[int, int, str]


class GoldSpans(TableFamily):
    """The ``gold_spans`` table of the store at ``path``."""


    def replace(self, project: str, gold: Mapping[str, tuple[str, Sequence[Span]]]) -> int:
        """Store ``gold`` (task key -> (text, spans)), replacing those tasks' earlier spans;
        returns the number of spans written."""
        now = _dt.datetime.now(_dt.timezone.utc).isoformat()
        rows = [(project, key, hashlib.sha256(text.encode("utf-8")).hexdigest(), s, e, label, now)
                for key, (text, spans) in gold.items() for s, e, label in spans]
        with self.conn.writing(f"store gold spans of {len(gold)} tasks") as conn:
            conn.executemany("DELETE FROM gold_spans WHERE project = ? AND task_key = ?",
                             [(project, key) for key in gold])
            conn.executemany("INSERT INTO gold_spans (project, task_key, text_sha256, start_char, end_char, label,"
                             " pulled_at) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        return len(rows)

    def spans(self, project: str) -> dict[str, tuple[str, list[Span]]]:
        """task key -> (the text's sha256, its spans sorted)."""
        out: dict[str, tuple[str, list[Span]]] = {}
        for row in self.conn.read("SELECT task_key, text_sha256, start_char, end_char, label FROM gold_spans"
                                  " WHERE project = ? ORDER BY task_key, start_char, end_char, label", [project]):
            out.setdefault(row["task_key"], (row["text_sha256"], []))[1].append(
                (row["start_char"], row["end_char"], row["label"]))
        return out
