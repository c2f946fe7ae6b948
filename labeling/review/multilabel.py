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

__all__ = ["MultiLabelRefineReport", "MultiLabelReview", "gold_sets_for_refinement", "refine_multilabel", "multilabel_labeling_config", "pull_multilabel_review", "push_multilabel_review",
           "result_set", "served_run_id", "set_result", "set_tasks"]


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
