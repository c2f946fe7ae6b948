"""Multi-label review in Label Studio: ``<Choices choice="multiple">``, pre-annotated with the
served run's label set, and reviewers' sets read back as gold sets.

An answer ticks any number of classes; an answer that ticks none (a submitted empty
result) is the empty set, a labelled row with no class, as in the gold codec
(``labeling.multilabel.gold``). A ticked name that is not a project class raises
``LabelError`` naming the task, so gold sets are exact or absent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from ..errors import LabelError
from ..store.gold import PullResult
from .label_studio import (
    KEY_FIELD,
    LABEL_NAME,
    TEXT_NAME,
    Annotation,
    LabelStudioReview,
    PushResult,
    annotation_choices,
    annotator_of,
    review_title,
    sdk_call,
)

__all__ = ["MultiLabelRefineReport", "MultiLabelReview", "StoreGoldSets", "gold_sets_for_refinement", "match_gold_sets",
           "refine_multilabel", "multilabel_labeling_config", "pull_multilabel_review", "push_multilabel_review",
           "result_set", "review_gold_sets", "served_run_id", "set_result", "set_tasks", "sets_to_gold", "store_gold_sets"]


def multilabel_labeling_config(classes: Sequence[str], *, title: str = "Which classes does this text carry?") -> str:
    """A Label Studio config: the text, and the classes as multiple choice (none ticked: no class)."""
    choices = "\n".join(f"    <Choice value={quoteattr(str(c))}/>" for c in classes)
    return (
        "<View>\n"
        f"  <Header value={quoteattr(title)}/>\n"
        f'  <Text name="{TEXT_NAME}" value="${TEXT_NAME}"/>\n'
        f'  <Choices name="{LABEL_NAME}" toName="{TEXT_NAME}" choice="multiple" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def set_result(names: Sequence[str]) -> list[dict]:
    """The ``result`` of an annotation or prediction ticking ``names`` (``[]``: ticks none)."""
    if not names:
        return []
    return [{"from_name": LABEL_NAME, "to_name": TEXT_NAME, "type": "choices",
             "value": {"choices": [str(n) for n in names]}}]


def result_set(result: Sequence[Mapping] | None, classes: Sequence[str], *, where: str = "a task") -> list[int]:
    """The sorted class indices a ``result`` ticks (``[]`` for none); raises ``LabelError``
    naming ``where`` and the name for a ticked name that is not one of ``classes``."""
    classes = list(classes)
    out = set()
    for name in annotation_choices(result) or ():
        if name not in classes:
            raise LabelError(f"{where}: the answer ticks {name!r}, not one of the project's classes {classes}")
        out.add(classes.index(name))
    return sorted(out)


def set_tasks(keys: Sequence[str], texts: Sequence[str], sets: Sequence[Sequence[str]] | None = None, *,
              model_version: str = "", scores: Sequence[float] | None = None) -> list[dict]:
    """Task payloads: the text and its key, and (``sets``) the served run's label set as a
    pre-annotation (``scores``: its confidence per task, for Label Studio's ordering)."""
    tasks = []
    for i, (key, text) in enumerate(zip(keys, texts)):
        task = {"data": {TEXT_NAME: text, KEY_FIELD: str(key)}}
        if sets is not None:
            task["predictions"] = [{"model_version": model_version, "result": set_result(sets[i]),
                                    **({"score": float(scores[i])} if scores is not None else {})}]
        tasks.append(task)
    return tasks


class MultiLabelReview(LabelStudioReview):
    """A Label Studio project reviewing label sets (``classes``: the project's classes)."""

    def labeling_config_xml(self) -> str:
        return multilabel_labeling_config(self.classes)

    def set_answers(self) -> list[Annotation]:
        """Every submitted (not cancelled) answer, its set in ``labels`` (``label`` -1), for
        ``GoldStore.record_annotations``; raises ``LabelError`` for a name not a class."""
        out = []
        for key, task in self.existing_tasks(update_config=False).items():
            for ann in task.get("annotations") or ():
                if ann.get("was_cancelled"):
                    continue
                labels = result_set(ann.get("result"), self.classes, where=f"task {key!r}")
                out.append(Annotation(int(ann["id"]), key, annotator_of(ann), -1,
                                      str(ann.get("updated_at") or ann.get("created_at") or ""), tuple(labels)))
        return out

    def annotate_set(self, task_id: int, names: Sequence[str]) -> int:
        """Submit a reviewer's set for a task (tests stand in for a person); returns its id."""
        ann = sdk_call("create an annotation", self.client.annotations.create, task_id, result=set_result(names))
        return int(ann.id)


def served_run_id(config) -> str:
    """The run a multi-label review pre-annotates with: the champion alias's, else the latest run."""
    from ..errors import StoreError
    from ..store.serving import DEFAULT_ALIAS, FeedbackLog

    with FeedbackLog(config.resolve(config.store)) as log:
        run_id = log.get_alias(DEFAULT_ALIAS) or log.latest_run_id()
    if not run_id:
        raise StoreError(f"no run recorded in {config.store}: retrain before pushing a multi-label review")
    return run_id


def push_multilabel_review(config, review: MultiLabelReview, *, n: int | None = None,
                           run_id: str | None = None) -> PushResult:
    """Push the ``n`` (``review.n``) train rows not pushed before on which the served run is
    least sure (the smallest distance of any class's probability to its threshold), each
    pre-annotated with that run's label set; the pushed tasks are recorded in the store."""
    from ..multilabel.gold import load_multilabel_dataset
    from ..pipeline.store import load_recorded_end_model
    from .gold import GoldStore, ReviewTask
    from ..store.serving import FeedbackLog

    n = config.review.n if n is None else n
    run_id = run_id or served_run_id(config)
    with FeedbackLog(config.resolve(config.store)) as log:
        model = load_recorded_end_model(log, run_id)
    rows = load_multilabel_dataset(config)[0].train
    keys = [f"dataset:{i}" for i in rows["id"].astype(str)]
    title = review_title(config)
    with GoldStore(config.resolve(config.store)) as store:
        done = store.pushed_keys(title)
    fresh = np.array([k not in done for k in keys])
    texts = rows["text"].astype(str).tolist()
    probs = model.predict_proba(texts)
    sets = model.predict_sets(probs)
    doubt = np.abs(probs - model.thresholds_).min(axis=1) if hasattr(model, "thresholds_") else np.zeros(len(texts))
    picked = [i for i in np.argsort(doubt, kind="stable") if fresh[i]][:n]
    result = review.push(set_tasks([keys[i] for i in picked], [texts[i] for i in picked],
                                   [[config.classes[c] for c in np.flatnonzero(sets[i])] for i in picked],
                                   model_version=run_id, scores=[1 - float(doubt[i]) for i in picked]))
    with GoldStore(config.resolve(config.store)) as store:
        store.record_pushed(title, [ReviewTask(keys[i], "dataset", str(rows["id"].iloc[i]), texts[i], "margin")
                                    for i in picked], result.task_ids)
    return result


def pull_multilabel_review(config, review: MultiLabelReview) -> PullResult:
    """Store every current answer's set as gold (``gold_labels.labels``); an answer deleted in
    Label Studio removes its gold. Raises ``LabelError`` (a ticked name not a class) before
    the store is touched."""
    from .gold import GoldStore

    answers = review.set_answers()
    with GoldStore(config.resolve(config.store)) as store:
        return store.record_annotations(review_title(config), answers)


@dataclass(frozen=True, eq=False)
class MultiLabelRefineReport:
    """Refinement of a multi-label project on its gold sets (dev gold, and reviewed sets).

    ``lf_table``: per (LF, class) it votes on, its yes/no coverage of the gold rows, the
    precision of its yes votes and the accuracy of its no votes (``votes_summary``);
    ``worst``: the (LF, class) pairs with the least accurate yes votes, at most ``top``;
    ``label_errors``: gold rows whose label for a class an out-of-sample one-vs-rest model
    confidently contradicts (``multilabel_label_errors``: row, text, class, given, suggested,
    self_confidence)."""

    n_gold: int
    lf_table: pd.DataFrame
    worst: list[dict]
    label_errors: pd.DataFrame

    def format(self) -> str:
        lines = [f"{self.n_gold} gold label sets", "", "LFs per class on gold:", self.lf_table.to_string(), "",
                 "least precise yes votes: " + ("; ".join(f"{w['lf']} -> {w['class']} {w['yes_precision']:.0%}"
                                                          for w in self.worst) or "none"), "",
                 f"likely label errors per class ({len(self.label_errors)}):",
                 self.label_errors.head(20).to_string(index=False) if len(self.label_errors) else "none"]
        return "\n".join(lines)


def gold_sets_for_refinement(config) -> tuple[list[str], np.ndarray]:
    """The project's gold sets: dev rows, then reviewed tasks (each annotator's answer; a text
    already in dev is taken from dev). Returns ``(texts, Y)``, Y (n, k) 0/1."""
    from ..multilabel.gold import load_multilabel_dataset
    from .gold import GoldStore

    splits, Ys = load_multilabel_dataset(config)
    texts, rows = splits.dev["text"].astype(str).tolist(), [Ys["dev"]]
    seen = set(texts)
    with GoldStore(config.resolve(config.store)) as store:
        reviewed = store.label_sets(review_title(config))
    for by_annotator in reviewed.values():
        text, labels = next(iter(by_annotator.values()))
        if text in seen:
            continue
        seen.add(text)
        texts.append(text)
        row = np.zeros((1, len(config.classes)), dtype=np.int8)
        row[0, labels] = 1
        rows.append(row)
    return texts, np.concatenate(rows)


def refine_multilabel(config, *, top: int = 10) -> MultiLabelRefineReport:
    """The ``refine`` command for ``project.task = "multi_label"``: the project's LFs per class
    on its gold sets, and the label-error check per class (see ``MultiLabelRefineReport``)."""
    from ..lf.apply import apply_lfs
    from ..lf.core import discover_lfs
    from ..multilabel.review import multilabel_label_errors
    from ..multilabel.votes import apply_cardinality, decode_votes, multilabel_lfs, votes_summary

    texts, Y = gold_sets_for_refinement(config)
    lfs = discover_lfs(config.lfs.modules, root=config.resolve(config.lfs.root))
    names = [lf.name for lf in lfs]
    L = apply_lfs(multilabel_lfs(lfs), pd.DataFrame({"text": texts}), cardinality=apply_cardinality(),
                  spacy_model=config.lfs.spacy_model).L
    table = votes_summary(decode_votes(L, len(config.classes), names), names, config.classes, Y)
    ranked = table.dropna(subset=["yes_precision"]).sort_values("yes_precision", kind="stable").head(top)
    worst = [{"lf": lf, "class": c, "yes_precision": float(p)} for (lf, c), p in ranked["yes_precision"].items()]
    folds = int(min(5, max(2, Y.sum(axis=0).min()))) if len(Y) else 2
    errors = multilabel_label_errors(texts, Y, config.classes, n_folds=folds, random_state=config.seed)
    return MultiLabelRefineReport(len(texts), table, worst, errors)


# --------------------------------------------------------------------------- the multi-label retrain's gold


def sets_to_gold(sets: Sequence[Sequence[int]], k: int) -> np.ndarray:
    """Label sets (class indices) -> ``Y`` ((n, k) int8 0/1, as ``labeling.multilabel.gold``)."""
    Y = np.zeros((len(sets), k), dtype=np.int8)
    for i, labels in enumerate(sets):
        Y[i, list(labels)] = 1
    return Y


def review_gold_sets(store_path, project: str) -> tuple[pd.DataFrame, int]:
    """One label set per reviewed task of ``project`` (``review_title``): each class more than
    half its annotators ticked. A task whose annotators split evenly on some class has no gold
    (as a single-label tie). Returns ``(gold, unresolved tasks)``, gold in ``all_gold``'s
    columns with ``label`` a sorted list of class indices."""
    from .gold import GoldStore

    with GoldStore(store_path) as store:
        answers = store.label_sets(project)
        tasks = {t["task_key"]: t for t in store.tasks(project)}
    rows, unresolved = [], 0
    for key, by_annotator in answers.items():
        n = len(by_annotator)
        ticks = pd.Series([c for _, labels in by_annotator.values() for c in labels], dtype=np.int64).value_counts()
        if (2 * ticks == n).any():
            unresolved += 1
            continue
        task = tasks[key]
        rows.append({"task_key": key, "source": task["source"], "row_id": task["row_id"], "text": task["text"],
                     "label": sorted(int(c) for c, t in ticks.items() if 2 * t > n)})
    return pd.DataFrame(rows, columns=["task_key", "source", "row_id", "text", "label"]), unresolved


@dataclass(frozen=True, eq=False)
class StoreGoldSets:
    """The gold sets a multi-label retrain reads from the store: ``gold`` (``all_gold``'s
    columns, ``label`` a sorted list of class indices; reviews first, then feedback, one row
    per text) and ``unresolved``, the reviewed tasks left out for a tie between annotators."""

    gold: pd.DataFrame
    unresolved: int = 0


def store_gold_sets(config) -> StoreGoldSets:
    """The store's gold label sets of a multi-label project, as single-label's ``all_gold``: a
    person's answer beats a program's, so a reviewed set beats serving feedback on the same
    text, and a text's latest feedback beats its earlier ones. Empty when ``review.use_gold`` is
    off or the store (or its tables) does not exist yet; nothing is created."""
    from ..store.connection import store_exists, table_names
    from ..store.serving import gold_labels as feedback_gold_labels

    columns = ["task_key", "source", "row_id", "text", "label"]
    path = config.resolve(config.store)
    if not config.review.use_gold or not store_exists(path):
        return StoreGoldSets(pd.DataFrame(columns=columns))
    tables = table_names(path)
    reviewed, unresolved = (review_gold_sets(path, review_title(config)) if "review_tasks" in tables
                            else (pd.DataFrame(columns=columns), 0))
    parts = [reviewed]
    if "feedback" in tables:
        feedback = feedback_gold_labels(path)
        parts.append(pd.DataFrame({
            "task_key": "feedback:" + feedback["id"].astype(str), "source": "feedback", "row_id": None,
            "text": feedback["text"],
            # a single-label answer (a class index) stored before the project became multi-label: its set of one
            "label": [sorted(int(c) for c in v) if isinstance(v, list) else [int(v)] for v in feedback["label"]]},
            columns=columns))
    gold = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else reviewed
    return StoreGoldSets(gold.drop_duplicates("text", keep="first").reset_index(drop=True), unresolved)


def match_gold_sets(gold: pd.DataFrame, splits):
    """``match_gold`` for label sets: a ``GoldMatch`` whose ``train_labels`` is (n, k) int8 and
    whose ``extra["label"]`` holds sorted class-index lists. Raises ``LabelError`` for a stored
    class index outside ``splits.classes`` (gold stored while the config declared more classes)."""
    from .gold import GoldMatch, place_gold

    k = len(splits.classes)
    bad = [str(key) for key, labels in zip(gold["task_key"], gold["label"]) if any(not 0 <= c < k for c in labels)]
    if bad:
        raise LabelError(f"{len(bad)} stored gold label set(s) name a class index outside project.classes "
                         f"{list(splits.classes)} (0..{k - 1}): tasks {bad[:5]}. They were stored while the config "
                         "declared more classes; put the removed class back, or set review.use_gold = false")
    pos, taken, extra, n_test = place_gold(gold, splits)
    labels = gold["label"].tolist()
    extra_rows = [{"id": str(gold["task_key"].iloc[j]), "text": str(gold["text"].iloc[j]), "label": labels[j]}
                  for j in extra]
    return GoldMatch(np.asarray(pos, dtype=np.int64), sets_to_gold([labels[j] for j in taken], k),
                     pd.DataFrame(extra_rows, columns=["id", "text", "label"]), n_test)
