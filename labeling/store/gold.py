"""Review tasks and gold labels.

- ``review_tasks``: one row per pushed task key: where the row came from
  (``dataset`` row id or ``served`` prediction id), the original text (the
  store is ours; only a redacted copy left for annotators), the Label Studio
  task id, the strategy that picked it.
- ``gold_labels``: one row per (task, annotator): the latest answer of that
  annotator. Pulling is idempotent: the same annotation read twice is stored
  once, an edited annotation replaces the old one, and an annotation deleted
  in Label Studio disappears here too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .connection import TableFamily, insert_rows, utc_now
from .label_schema import stamp_for_project
from .serving import labels_json, text_sha256


@dataclass(frozen=True)
class ReviewTask:
    task_key: str
    source: str  # "dataset" | "served"
    row_id: str | None  # dataset row id or served prediction id
    text: str  # the original text (never sent when redaction is on)
    strategy: str


@dataclass(frozen=True)
class PullResult:
    stored: int  # annotations now held for the project
    inserted: int
    updated: int
    deleted: int
    unknown_tasks: int  # annotations on tasks this store never pushed (ignored)
    kept: int = 0  # answers that give two classes or none: their stored gold was kept as it was
    report: str = ""  # which ones and why (``review.label_studio.describe_unclear``)


ANSWER_COLUMNS = ["task_key", "source", "row_id", "text", "annotator", "label"]


class GoldStore(TableFamily):
    """The review side of the project's store. Annotations are any objects with ``task_key``,
    ``annotator``, ``annotation_id``, ``label`` and ``updated_at`` (``label_studio.Annotation``)."""


    def record_pushed(self, project: str, tasks: Sequence[ReviewTask], task_ids: dict[str, int]) -> None:
        with self.conn.writing("record pushed tasks") as conn:
            schema = stamp_for_project(conn, project)
            rows = [
                {"task_key": t.task_key, "project": project, "source": t.source, "row_id": t.row_id, "text": t.text,
                 "text_sha256": text_sha256(t.text), "ls_task_id": int(task_ids[t.task_key]), "strategy": t.strategy,
                 "pushed_at": utc_now(), "schema_version": schema}
                for t in tasks
            ]
            # a re-push keeps the first strategy and time: only the LS task id may move
            insert_rows(conn, "review_tasks", rows, verb="INSERT OR IGNORE")
            conn.executemany("UPDATE review_tasks SET ls_task_id = ? WHERE task_key = ?",
                             [(row["ls_task_id"], row["task_key"]) for row in rows])

    def tasks(self, project: str | None = None) -> list[dict]:
        """The pushed tasks' rows (``review_tasks``), by task key (``project``: only its tasks)."""
        where, args = ("WHERE project = ?", [project]) if project else ("", [])
        return self.conn.read(f"SELECT * FROM review_tasks {where} ORDER BY task_key", args)

    def pushed_keys(self, project: str | None = None) -> set[str]:
        where, args = ("WHERE project = ?", [project]) if project else ("", [])
        return {r["task_key"] for r in self.conn.read(f"SELECT task_key FROM review_tasks {where}", args)}

    def record_annotations(self, project: str, annotations: Sequence, unclear: Sequence = ()) -> PullResult:
        """Replace the project's stored answers with ``annotations`` (all of them, as read now).

        ``unclear``: answers (with ``task_key``, ``annotator``) that still exist but give two classes
        or none; the gold their annotator gave on that task before is kept as it was (and counted in
        ``kept``), never deleted: only an answer deleted in Label Studio removes gold."""
        known = self.pushed_keys(project)
        latest: dict[tuple[str, str], object] = {}
        for ann in sorted(annotations, key=lambda a: (a.updated_at, a.annotation_id)):
            if ann.task_key in known:
                latest[(ann.task_key, ann.annotator)] = ann  # an annotator's latest answer wins
        unknown = sum(1 for a in annotations if a.task_key not in known)
        now = utc_now()
        before = {
            (r["task_key"], r["annotator"]): r
            for r in self.conn.read(
                "SELECT g.* FROM gold_labels g JOIN review_tasks t USING (task_key) WHERE t.project = ?", [project])
        }
        inserted = updated = 0
        gone = set(before) - set(latest) - {(u.task_key, u.annotator) for u in unclear}
        with self.conn.writing("store annotations") as conn:
            schema = stamp_for_project(conn, project)
            conn.executemany("DELETE FROM gold_labels WHERE task_key = ? AND annotator = ?", sorted(gone))
            for key, ann in latest.items():
                old = before.get(key)
                if old is None:
                    inserted += 1
                elif ((old["label"], old["annotation_id"], old["updated_at"], old.get("labels"))
                      != (ann.label, ann.annotation_id, ann.updated_at, labels_json(getattr(ann, "labels", None)))):
                    updated += 1
                else:
                    continue
                insert_rows(conn, "gold_labels", [
                    {"task_key": ann.task_key, "annotator": ann.annotator, "annotation_id": ann.annotation_id,
                     "label": ann.label, "source": "label_studio", "updated_at": ann.updated_at, "pulled_at": now,
                     "schema_version": schema, "labels": labels_json(getattr(ann, "labels", None))}],
                    verb="INSERT OR REPLACE")
        return PullResult(len(latest), inserted, updated, len(gone), unknown,
                          sum(1 for u in unclear if u.task_key in known))

    def task_key_for(self, project: str, ls_task_id: int) -> str | None:
        """The key of the pushed task Label Studio knows as ``ls_task_id`` in ``project``, or None."""
        row = self.conn.read_one("SELECT task_key FROM review_tasks WHERE project = ? AND ls_task_id = ?",
                                 [project, int(ls_task_id)])
        return row["task_key"] if row else None

    def record_answer(self, project: str, task: ReviewTask, ls_task_id: int, ann) -> str:
        """Store one answer (a multi-label answer's set in ``ann.labels``) as its annotator's gold
        on ``task`` (registered first when it was never pushed from here, e.g. a task imported in
        Label Studio): ``"inserted"``, ``"updated"`` or ``"unchanged"`` (the same or an older edit
        of the stored answer)."""
        with self.conn.writing("store an answer") as conn:
            schema = stamp_for_project(conn, project)
            insert_rows(conn, "review_tasks", [
                {"task_key": task.task_key, "project": project, "source": task.source, "row_id": task.row_id,
                 "text": task.text, "text_sha256": text_sha256(task.text), "ls_task_id": int(ls_task_id),
                 "strategy": task.strategy, "pushed_at": utc_now(), "schema_version": schema}], verb="INSERT OR IGNORE")
            cur = conn.execute("SELECT label, annotation_id, updated_at, labels FROM gold_labels"
                               " WHERE task_key = ? AND annotator = ?", [ann.task_key, ann.annotator])
            old = cur.fetchone()
            labels = labels_json(getattr(ann, "labels", None))
            if old and (old[0], old[1], old[3]) == (ann.label, ann.annotation_id, labels):
                return "unchanged"
            if old and old[1] == ann.annotation_id and str(old[2]) > ann.updated_at:
                return "unchanged"  # a late, older event of the same annotation
            insert_rows(conn, "gold_labels", [
                {"task_key": ann.task_key, "annotator": ann.annotator, "annotation_id": ann.annotation_id,
                 "label": ann.label, "source": "label_studio", "updated_at": ann.updated_at,
                 "pulled_at": utc_now(), "schema_version": schema, "labels": labels}], verb="INSERT OR REPLACE")
        return "updated" if old else "inserted"

    def remove_answers(self, annotation_ids: Sequence[int]) -> int:
        """Delete the gold of the given (deleted in Label Studio) annotations; returns how many rows went."""
        ids = [int(i) for i in annotation_ids]
        if not ids:
            return 0
        with self.conn.writing("remove answers") as conn:
            marks = ",".join("?" * len(ids))
            return conn.execute(f"DELETE FROM gold_labels WHERE annotation_id IN ({marks})", ids).rowcount

    def label_sets(self, project: str) -> dict[str, dict[str, tuple[str, list[int]]]]:
        """A multi-label project's stored answers: task key -> annotator -> (text, sorted class indices)."""
        out: dict[str, dict[str, tuple[str, list[int]]]] = {}
        for r in self.conn.read("SELECT g.task_key, t.text, g.annotator, g.labels FROM gold_labels g"
                                " JOIN review_tasks t USING (task_key) WHERE t.project = ? AND g.labels IS NOT NULL"
                                " ORDER BY g.task_key, g.annotator", [project]):
            out.setdefault(r["task_key"], {})[r["annotator"]] = (r["text"], json.loads(r["labels"]))
        return out

    def answers(self):
        """Every stored answer with its task: a pandas frame of ``ANSWER_COLUMNS``, by task and annotator."""
        import pandas as pd

        rows = self.conn.read(
            "SELECT g.task_key, t.source, t.row_id, t.text, g.annotator, g.label FROM gold_labels g"
            " JOIN review_tasks t USING (task_key) ORDER BY g.task_key, g.annotator")
        return pd.DataFrame(rows, columns=ANSWER_COLUMNS)
