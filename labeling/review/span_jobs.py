"""Span review jobs (``project.task = "spans"``): what ``review push`` and ``review pull`` run.

- ``push_span_review``: train and dev texts (never test) not pushed before -> the served
  run's entities on them (the ``production`` alias's run, else the latest) -> sampling ->
  ``<Labels>`` tasks pre-annotated with those entities -> Label Studio -> ``review_tasks``.
- ``pull_span_review``: every submitted answer's spans, each checked against its task's
  text (``spans.result_spans``) -> ``gold_spans`` in the store, a task's spans replaced whole;
  the store mirrors Label Studio, so a task whose answer was deleted (or only skipped answers
  remain) since the last pull loses its gold, as a single-label pull's deleted answer does.
  Retrain reads them back (``pipeline.spans_retrain.read_span_gold``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import ProjectConfig
from ..errors import ConfigError, StoreError
from ..pipeline.spans_data import load_span_splits
from ..pipeline.store import load_recorded_end_model
from ..store.gold import GoldStore, ReviewTask
from ..store.gold_spans import GoldSpans
from ..store.serving import DEFAULT_ALIAS, FeedbackLog
from .jobs import PushSummary, review_title
from .label_studio import select_for_review
from .spans import SpanReview, span_tasks

#: "low_confidence": texts whose least certain entity has the lowest score first (texts
#: without an entity last); "random": a seeded sample.
SPAN_STRATEGIES = ("low_confidence", "random")


@dataclass(frozen=True)
class SpanPullResult:
    tasks: int  # answered tasks whose spans are now gold
    spans: int
    no_entity: int  # answered tasks marked as holding no entity
    removed: int = 0  # tasks whose gold went: their answer was deleted in Label Studio since the last pull


def served_span_run(config: ProjectConfig) -> str:
    """The run a server of this project serves: the ``production`` alias's, else the latest."""
    with FeedbackLog(config.resolve(config.store)) as log:
        run_id = log.get_alias(DEFAULT_ALIAS) or log.latest_run_id()
    if not run_id:
        raise StoreError(f"no run in {config.store}: retrain first (the pre-annotations come from the served run)")
    return run_id


def span_uncertainty(predicted: list[list[dict]]) -> np.ndarray:
    """Per text, 1 - the lowest entity score (0 for a text without an entity), shape (n,)."""
    return np.array([1.0 - min((s["score"] for s in spans), default=1.0) for spans in predicted])


def push_span_review(config: ProjectConfig, review: SpanReview, *, strategy: str | None = None, n: int | None = None,
                     random_state: int | None = None) -> PushSummary:
    """Push ``n`` train/dev texts chosen by ``strategy`` (``SPAN_STRATEGIES``; default
    low_confidence) with the served run's entities as pre-annotations; texts pushed before
    are skipped. Raises ``ConfigError`` for another strategy, ``StoreError`` without a run."""
    strategy = strategy or (config.review.strategy if config.review.strategy in SPAN_STRATEGIES else "low_confidence")
    if strategy not in SPAN_STRATEGIES:
        raise ConfigError(f"review strategy {strategy!r} does not apply to spans; use one of {', '.join(SPAN_STRATEGIES)}")
    n = config.review.n if n is None else n
    run_id = served_span_run(config)
    splits = load_span_splits(config)
    keys = [str(k) for split in ("train", "dev") for k in splits[split].data.ids]
    texts = [t for split in ("train", "dev") for t in splits[split].texts]
    title = review_title(config)
    with GoldStore(config.resolve(config.store)) as store:
        done = store.pushed_keys(title)
    exclude = np.array([k in done for k in keys], dtype=bool)
    seed = config.seed if random_state is None else random_state
    with FeedbackLog(config.resolve(config.store)) as log:
        model = load_recorded_end_model(log, run_id)
    if strategy == "random":
        picked = select_for_review(np.zeros(len(keys)), n, random_state=seed, exclude=exclude)
        predicted = model.predict_text([texts[i] for i in picked])
    else:  # the whole pool is scored: one NER pass over train and dev
        pool = model.predict_text(texts)
        picked = select_for_review(span_uncertainty(pool), n, random_state=seed, exclude=exclude)
        predicted = [pool[i] for i in picked]
    spans = [[(s["start"], s["end"], s["label"]) for s in doc] for doc in predicted]
    result = review.push(span_tasks([keys[i] for i in picked], [texts[i] for i in picked], spans,
                                    model_version=run_id))
    with GoldStore(config.resolve(config.store)) as store:
        store.record_pushed(title, [ReviewTask(keys[i], "dataset", keys[i], texts[i], strategy) for i in picked],
                            result.task_ids)
    return PushSummary(result, strategy, "dataset", len(picked), False)


def pull_span_review(config: ProjectConfig, review: SpanReview) -> SpanPullResult:
    """Store every answered task's spans as gold and remove the gold of tasks no longer
    answered (their answer deleted in Label Studio), in one transaction. Raises
    ``ReviewError`` naming the task for an offset that does not match its text, before the
    store is touched."""
    answers = review.span_answers()
    gold = {key: (text, spans) for key, (text, spans, _) in answers.items()}
    with GoldSpans(config.resolve(config.store)) as store:
        n, removed = store.mirror(config.name, gold, annotation_ids={k: a for k, (_, _, a) in answers.items()})
    return SpanPullResult(len(gold), n, sum(1 for _, spans in gold.values() if not spans), removed)
