"""The review jobs: push rows to Label Studio, pull answers, refine from gold.

Like ``retrain.py`` this module only wires library calls in order:

- ``push_review``: dataset train rows (or served predictions) -> LF votes ->
  label-model probabilities -> sampling strategy -> redaction -> tasks ->
  Label Studio -> ``review_tasks`` in the store.
- ``pull_review``: Label Studio annotations -> ``gold_labels`` in the store,
  with the annotator disagreements.
- ``refine_from_gold``: gold (reviews + feedback, test rows left out) -> LF
  votes -> ``refine.refine`` report.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import pandas as pd

from ..lf.apply import apply_lfs
from ..config import ProjectConfig
from ..data.datasets import load_dataset
from ..models.end_model_selection import family_model
from ..models.end_models import make_end_model
from ..errors import ConfigError, StoreError
from ..progress import progress
from ..store.serving import FeedbackLog
from ..pipeline.store import load_recorded_end_model
from .gold import GoldStore, PullResult, ReviewTask, all_gold, match_gold, review_gold
from ..lf.core import discover_lfs, lf_set_version
from .redact import RedactionSettings, redact_texts
from .refinement import RefineReport, refine
from ..pipeline.retrain import fit_label_model
from .label_studio import (
    STRATEGIES,
    LabelStudioReview,
    PushResult,
    ReviewItem,
    TaskPage,
    build_tasks,
    display_text,
    review_title,
    sample_scores,
    select_for_review,
    top_classes_tie,
)

T = TypeVar("T")

URL_ENV, KEY_ENV = "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"
SOURCES = ("dataset", "served")


def label_studio_from_env(config: ProjectConfig, *, httpx_client=None) -> LabelStudioReview:
    """The project's Label Studio project, at ``$LABEL_STUDIO_URL`` with ``$LABEL_STUDIO_API_KEY``."""
    url, key = os.environ.get(URL_ENV, ""), os.environ.get(KEY_ENV, "")
    if not url or not key:
        raise ConfigError(f"set {URL_ENV} and {KEY_ENV} (scripts/label_studio.sh start prints them)")
    if config.task == "multi_label":  # multiple choice: a reviewer ticks a set
        from .multilabel import MultiLabelReview

        return MultiLabelReview(url, key, title=review_title(config), classes=config.classes, httpx_client=httpx_client)
    if config.task == "spans":  # <Labels> on <Text>: the entity types
        from .spans import SpanReview

        return SpanReview(url, key, title=review_title(config), classes=config.classes, httpx_client=httpx_client)
    return LabelStudioReview(url, key, title=review_title(config), classes=config.classes, httpx_client=httpx_client)


def redaction_for(config: ProjectConfig, source: str) -> RedactionSettings | None:
    """The redaction that applies to ``source``'s texts, or None when they leave as they are."""
    mode = config.review.redact
    if mode == "all" or (mode == "served" and source == "served"):
        return RedactionSettings(persons=config.review.redact_persons, spacy_model=config.lfs.spacy_model)
    return None


@dataclass(frozen=True)
class Candidates:
    """Rows that may be pushed, with what the reviewer sees about each."""

    source: str
    keys: list
    row_ids: list
    texts: list
    probs: np.ndarray  # (n, k)
    votes: list  # per row: tuple of LF votes or None
    L: np.ndarray | None  # label matrix, when every row has votes
    predicted: np.ndarray | None = None
    feedback_labels: np.ndarray | None = None


def dataset_candidates(config: ProjectConfig, *, show_progress: bool = False) -> tuple[Candidates, list[str], str]:
    """Train rows outside dev, with the configured label model's probabilities.

    Returns the candidates, the LF names and a model version naming the LF set.
    """
    splits = load_dataset(config)
    lfs = discover_lfs(config.lfs.modules, root=config.resolve(config.lfs.root))
    k = config.cardinality
    both = pd.concat([splits.train, splits.dev], ignore_index=True)
    L_all = apply_lfs(lfs, both, cardinality=k, spacy_model=config.lfs.spacy_model, show_progress=show_progress).L
    L_train, L_dev = L_all[: len(splits.train)], L_all[len(splits.train):]
    model, _ = fit_label_model(config, L_train, L_dev, splits.dev["label"].to_numpy())
    # dev rows are labelled already: never ask a person again
    pool = ~splits.train["id"].astype(str).isin(set(splits.dev["id"].astype(str))).to_numpy()
    L_pool = L_train[pool]
    frame = splits.train[pool]
    version = f"label-model:{type(model).__name__}:{lf_set_version(lfs)}"
    candidates = Candidates(
        "dataset", [f"row:{i}" for i in frame["id"]], [str(i) for i in frame["id"]], frame["text"].astype(str).tolist(),
        model.predict_proba(L_pool), [tuple(int(v) for v in row) for row in L_pool], L_pool)
    return candidates, [lf.name for lf in lfs], version


def served_lf_names(log: FeedbackLog, versions) -> dict[str, list[str] | None]:
    """Per served run id, the names of its LFs as recorded with the run (the LFs its votes came
    from, never the working tree's); None for a run the store does not hold."""
    names: dict[str, list[str] | None] = {}
    for version in versions:
        try:
            names[version] = [lf["name"] for lf in log.recorded_run(version)["lfs"] if lf["version"] != "precomputed"]
        except StoreError:
            names[version] = None
    return names


def served_candidates(config: ProjectConfig) -> tuple[Candidates, str, list[str]]:
    """Served predictions whose text was kept, with their probabilities, LF votes and feedback,
    and the names of the LFs that voted: those of the latest run served. Votes of a run whose
    LFs were others are left out (None), never shown under names they do not belong to."""
    with FeedbackLog(config.resolve(config.store)) as log:
        rows = log.predictions_with_feedback()
        run_names = served_lf_names(log, dict.fromkeys(r["model_version"] for r in rows))
    lf_names = (run_names[rows[-1]["model_version"]] or []) if rows else []
    votes = [None if r["lf_votes"] is None or run_names[r["model_version"]] != lf_names
             else tuple(json.loads(r["lf_votes"])) for r in rows]
    have_all = bool(rows) and all(v is not None and len(v) == len(votes[0]) for v in votes)
    versions = sorted({r["model_version"] for r in rows})
    k = config.cardinality
    candidates = Candidates(
        "served", [f"served:{r['id']}" for r in rows], [r["id"] for r in rows], [r["text"] for r in rows],
        np.array([json.loads(r["probabilities"]) for r in rows]).reshape(len(rows), k), votes,
        np.array(votes, dtype=np.int64) if have_all else None,
        np.array([r["label"] for r in rows], dtype=np.int64),
        np.array([-1 if r["feedback_label"] is None else r["feedback_label"] for r in rows], dtype=np.int64))
    return candidates, "served:" + ",".join(versions), lf_names


def served_model_where_tied(config: ProjectConfig, items: list[ReviewItem], texts: list[str]) -> list[ReviewItem]:
    """``items`` where the label model's top classes tie get the served end model's
    probabilities instead (the store's champion run, else its latest), marked with
    ``end-model:<run id>`` as their model version; unchanged when no run is recorded."""
    tied = [i for i, item in enumerate(items) if item.probs is not None and top_classes_tie(item.probs)]
    if not tied:
        return items
    with FeedbackLog(config.resolve(config.store)) as log:
        run_id = log.get_alias() or log.latest_run_id()
        if not run_id:
            return items
        model = load_recorded_end_model(log, run_id)
    probs = model.predict_proba([texts[i] for i in tied])
    out = list(items)
    for i, row in zip(tied, probs):
        out[i] = dataclasses.replace(items[i], probs=tuple(float(p) for p in row), model_version=f"end-model:{run_id}")
    return out


@dataclass(frozen=True)
class PushSummary:
    result: PushResult
    strategy: str
    source: str
    selected: int
    redacted: bool


def push_review(
    config: ProjectConfig,
    review: LabelStudioReview,
    *,
    strategy: str | None = None,
    n: int | None = None,
    source: str = "dataset",
    random_state: int | None = None,
) -> PushSummary:
    """Pick ``n`` rows by ``strategy`` and push them as tasks; rows pushed before are skipped.
    (A spans project: ``span_jobs.push_span_review``.)"""
    strategy = strategy or config.review.strategy
    n = config.review.n if n is None else n
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown review strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if source not in SOURCES:
        raise ConfigError(f"unknown review source {source!r}; expected one of {', '.join(SOURCES)}")
    if source == "dataset":
        cand, lf_names, version = dataset_candidates(config)
    else:
        cand, version, lf_names = served_candidates(config)
    title = review_title(config)
    with GoldStore(config.resolve(config.store)) as store:
        done = store.pushed_keys(title)
    scores = sample_scores(strategy, n_rows=len(cand.keys), probs=cand.probs, L=cand.L,
                           predicted=cand.predicted, feedback_labels=cand.feedback_labels)
    seed = config.seed if random_state is None else random_state
    picked = select_for_review(scores, n, random_state=seed, exclude=np.array([k in done for k in cand.keys], dtype=bool))
    texts = [display_text(cand.texts[i]) for i in picked]  # what a reviewer reads; the store keeps the original
    settings = redaction_for(config, source)
    shown = redact_texts(texts, settings) if settings is not None else texts
    items = [ReviewItem(cand.keys[i], shown[j], tuple(float(p) for p in cand.probs[i]), cand.votes[i], strategy)
             for j, i in enumerate(picked)]
    items = served_model_where_tied(config, items, [cand.texts[i] for i in picked])
    result = review.push(build_tasks(items, classes=config.classes, lf_names=lf_names, model_version=version))
    with GoldStore(config.resolve(config.store)) as store:
        store.record_pushed(title, [ReviewTask(cand.keys[i], source, cand.row_ids[i], cand.texts[i], strategy)
                                    for i in picked], result.task_ids)
    return PushSummary(result, strategy, source, len(picked), settings is not None)


def pull_review(config: ProjectConfig, review: LabelStudioReview, *,
                renames: dict[str, str] | None = None) -> tuple[PullResult, pd.DataFrame]:
    """Store every current annotation as gold; returns the counts and the disagreements.

    ``renames``: old class name -> declared class name, for answers given before a class
    was renamed in the config. An answer with any other undeclared class stops the pull
    (``LabelError``) before the store is touched. An answer that gives two classes or none
    keeps the gold stored before (``PullResult.kept`` and ``report`` say which)."""
    annotations, unclear = review.answers(renames=renames)
    path = config.resolve(config.store)
    with GoldStore(path) as store:
        result = store.record_annotations(review_title(config), annotations, unclear)
    _, disagreements = review_gold(path)
    return result, disagreements


DEFAULT_BACKEND_URL = "http://127.0.0.1:8000/ls/"


def connect_backend(review: LabelStudioReview, url: str = DEFAULT_BACKEND_URL, *,
                    basic_auth: tuple[str, str] | None = None) -> dict:
    """Register our server's ``/ls/`` as the review project's ML backend (idempotent)."""
    return review.connect_backend(url, title="labeling", basic_auth=basic_auth)


#: Tasks per listed page, per ``/ls/predict`` batch and per prediction import. Label Studio
#: 1.23.2's default import (``ImportPredictionsAPI._create_legacy``) recounts the predictions of
#: every task of the project on each call, so 10,000 tasks in calls of 500 took 298 s, in calls
#: of 5,000 89 s; with the memory-efficient import ``scripts/label_studio.sh`` turns on, the cost
#: follows the batch, and smaller batches let the three stages overlap sooner.
PREDICT_ALL_BATCH = 1000
#: Bytes of task data per ``/ls/predict`` call: under the server's default body limit (1 MB).
PREDICT_REQUEST_BYTES = 800_000


def request_chunks(ids: list, sizes: list[int], max_bytes: int = PREDICT_REQUEST_BYTES) -> list[list]:
    """``ids`` cut in order into runs whose ``sizes`` sum to at most ``max_bytes`` (a single
    larger item is a run of its own: the server then names it in its 413)."""
    out: list[list] = []
    total = max_bytes + 1
    for item, size in zip(ids, sizes):
        if total + size > max_bytes:
            out.append([])
            total = 0
        out[-1].append(item)
        total += size
    return out


_DONE = object()


def ahead(items: Iterable[T], depth: int = 1) -> Iterator[T]:
    """``items`` in order, produced by a thread of their own at most ``depth`` items ahead of
    the consumer: one stage of a pipeline whose stages each run in their own thread, with a
    bounded queue between them. An exception raised producing an item is raised here, where
    that item would have come; leaving the loop early (or an exception in the consumer) stops
    the producer before its next item and waits for the item it is making."""
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                waiting.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as error:  # handed to the consumer, which raises it
            put((_DONE, error))
            return
        finally:
            if hasattr(items, "close"):  # a stage upstream stops now, not when collected
                items.close()
        put((_DONE, None))

    thread = threading.Thread(target=produce, name="pipeline-stage", daemon=True)
    thread.start()
    try:
        while True:
            item, error = waiting.get()
            if item is _DONE:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()


@dataclass(frozen=True)
class PredictAllSummary:
    model_version: str
    tasks: int  # tasks that had no prediction of this version when the run started
    stored: int  # predictions imported by this run
    batches: int
    #: seconds busy listing, predicting and importing (each stage in its own thread, so
    #: they overlap), and ``total``: the wall time from the first listing to the last import
    seconds: dict = dataclasses.field(default_factory=dict)


def predict_all(review: LabelStudioReview, url: str = DEFAULT_BACKEND_URL, *, batch: int = PREDICT_ALL_BATCH,
                basic_auth: tuple[str, str] | None = None, show_progress: bool = False,
                httpx_client=None) -> PredictAllSummary:
    """Store a prediction of the served model for every task of the project that has none of
    its version, in batches of ``batch`` tasks: list them from Label Studio, predict them
    through our server's ``/ls/predict`` (in calls of at most ``PREDICT_REQUEST_BYTES`` of task
    data), import the predictions with Label Studio's bulk import (one call per batch).

    The three stages run at once, each in its own thread with a queue of one batch between
    them, so the wall time comes near the slowest stage rather than their sum. Resumable: a
    task already holding a prediction of this version is skipped, so a stopped run goes on
    where it stopped (every imported batch is complete). ``seconds`` of the summary says how
    long each stage was busy, and the total.

    Raises ``ConfigError`` when our server refuses (its status and answer), ``ReviewError``
    when Label Studio does."""
    import httpx

    if batch < 1:
        raise ConfigError(f"predict-all: batch must be at least 1 (got {batch})")
    config = review.label_config()
    client = httpx_client or httpx.Client(timeout=300, auth=basic_auth, trust_env=False)
    base = url.rstrip("/")
    seconds = {"list": 0.0, "predict": 0.0, "import": 0.0, "total": 0.0}

    def timed(stage: str, items: Iterable[T]) -> Iterator[T]:
        items = iter(items)
        while True:
            started = time.perf_counter()
            item = next(items, _DONE)
            seconds[stage] += time.perf_counter() - started
            if item is _DONE:
                return
            yield item

    def predicted(pages: Iterable[TaskPage]) -> Iterator[list[dict]]:
        for page in pages:
            started = time.perf_counter()
            tasks = [{"id": t, "data": data} for t, data in page.tasks.items()]
            results = []
            for part in request_chunks(tasks, [len(json.dumps(t)) for t in tasks]):
                answer = client.post(f"{base}/predict", json={"tasks": part, "label_config": config})
                if answer.status_code != 200:
                    raise ConfigError(f"{base}/predict answered {answer.status_code}: {answer.text[:500]}")
                results += answer.json()["results"]
            seconds["predict"] += time.perf_counter() - started
            yield [{"task": t["id"], **r} for t, r in zip(tasks, results)]

    try:
        setup = client.post(f"{base}/setup", json={"schema": config})
        if setup.status_code != 200:
            raise ConfigError(f"{base}/setup answered {setup.status_code}: {setup.text[:500]}")
        version = setup.json()["model_version"]
        started = time.perf_counter()
        pages = timed("list", review.task_pages_without_prediction(version, page_size=batch))
        first = next(pages, None)  # its count of tasks left sizes the progress bar
        todo = 0 if first is None else first.remaining
        stored = batches = 0
        if first is not None:
            with closing(ahead(predicted(ahead(itertools.chain([first], pages))))) as stages:
                for predictions in progress(stages, total=-(-todo // batch), desc="predict-all batches",
                                            enabled=show_progress):
                    imported = time.perf_counter()
                    stored += review.import_predictions(predictions)
                    seconds["import"] += time.perf_counter() - imported
                    batches += 1
        seconds["total"] = time.perf_counter() - started
    finally:
        if httpx_client is None:
            client.close()
    return PredictAllSummary(version, todo, stored, batches, {k: round(v, 2) for k, v in seconds.items()})


def gold_for_refinement(config: ProjectConfig, splits=None) -> pd.DataFrame:
    """Gold rows (reviews + feedback) minus those on test rows or test texts: columns id
    (the dataset row id, or the task key of a text in no split), text, label."""
    gold = all_gold(config.resolve(config.store))
    splits = load_dataset(config) if splits is None else splits
    match = match_gold(gold, splits)
    train = splits.train.iloc[match.train_pos]
    return pd.concat([
        pd.DataFrame({"id": train["id"].astype(str).to_numpy(), "text": train["text"].astype(str).to_numpy(),
                      "label": match.train_labels}),
        match.extra[["id", "text", "label"]],
    ], ignore_index=True)


def label_error_model(config: ProjectConfig):
    """The unfitted end model the label-error check cross-validates on gold: the project's
    end model, or with ``end_model.type = "auto"`` (chosen per run, on dev) its first,
    simplest candidate family."""
    em = config.end_model
    if em.type == "auto":
        return family_model(em.candidates[0], config.cardinality, config.seed, em.auto_embedder)
    return make_end_model(em, config.cardinality, config.seed)


def refine_from_gold(config: ProjectConfig, *, top: int = 10) -> RefineReport:
    """The refinement report over the project's gold labels and current LFs; suggested
    LFs are checked on the dev rows that are not gold rows."""
    splits = load_dataset(config)
    gold = gold_for_refinement(config, splits)
    dev = splits.dev[~splits.dev["text"].astype(str).isin(set(gold["text"]))]
    lfs = discover_lfs(config.lfs.modules, root=config.resolve(config.lfs.root))
    k = config.cardinality
    L = (apply_lfs(lfs, gold, cardinality=k, spacy_model=config.lfs.spacy_model).L if len(gold)
         else np.zeros((0, len(lfs)), dtype=np.int64))
    names = [lf.name for lf in lfs]
    return refine(L, gold["label"].to_numpy(dtype=np.int64), gold["text"].tolist(), names, config.classes,
                  make_model=lambda: label_error_model(config), random_state=config.seed,
                  top=top, taken=names, held_out=(dev["text"].astype(str).tolist(), dev["label"].to_numpy()),
                  ids=gold["id"].astype(str).tolist())


__all__ = [
    "DEFAULT_BACKEND_URL",
    "Candidates",
    "PREDICT_ALL_BATCH",
    "PredictAllSummary",
    "connect_backend",
    "predict_all",
    "PushSummary",
    "dataset_candidates",
    "gold_for_refinement",
    "label_studio_from_env",
    "pull_review",
    "push_review",
    "redaction_for",
    "refine_from_gold",
    "review_title",
    "served_candidates",
    "served_lf_names",
]
