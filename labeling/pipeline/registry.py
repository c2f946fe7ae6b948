"""Model registry: aliases over recorded runs, their history, a promotion gate, rollback.

Aliases live in the store's ``model_aliases`` table (``labeling.store``), the one
the model server follows: ``champion`` is the served alias (``production``, the
server's default), ``candidate`` is the latest retrained run. Every alias move,
whoever makes it (this module or ``POST /admin/promote``; ``serve --run-id`` serves
one run without moving any alias), is appended to ``model_alias_history`` by SQLite triggers, so rollback
knows the previous version without the server's help. A running server picks a
rollback up like any promotion: it polls the alias and swaps models.

The gate (``gate``) is a pure function: a candidate passes when its score on the
gold test split is at least the champion's minus ``promotion.margin``. Every
decision is kept in ``promotions`` and as the candidate run's ``promotion``
document, so a refused run says why; a decision, its document and its alias moves
are written in one transaction (``write_decision``). A forced promotion (past a
refusing gate) records who forced it and why, and its alias move is logged as
``forced``.

Scores come from what each run recorded: its test predictions artifact
(``predictions.py``, checksummed) when it covers exactly the current test rows,
or, for a retrain, the predictions it has just computed. Only a run recorded
without them (or on other test rows) has its model loaded and run again, and
the decision's reason says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..models.artifacts import read_manifest
from ..config import ProjectConfig
from ..errors import ArtifactError, PromotionRefused, StoreError
from .evaluate import classification_metrics
from .predictions import load_test_predictions
from .store import load_recorded_end_model
from ..store import registry as store_registry
from ..store.connection import ClosesOnExit, Transaction
from ..store.serving import DEFAULT_ALIAS, FeedbackLog

CHAMPION = DEFAULT_ALIAS  # the alias servers follow
CANDIDATE = "candidate"

@dataclass(frozen=True)
class GateDecision:
    candidate_run_id: str
    champion_run_id: str | None
    metric: str
    candidate_score: float | None  # None only for a run swept without ever being gated
    champion_score: float | None
    margin: float
    passed: bool
    reason: str
    promoted: bool = False
    forced: bool = False  # promoted although the gate refused
    actor: str = ""  # who asked (command line user, HTTP client)
    note: str = ""  # why, as they said it

    def to_dict(self) -> dict:
        return asdict(self)


def gate(candidate_score: float, champion_score: float | None, *, margin: float, metric: str) -> tuple[bool, str]:
    """Pure promotion rule: pass when ``candidate >= champion - margin`` on the gold test split."""
    if champion_score is None:
        return True, "no champion yet"
    bar = champion_score - margin
    verdict = ">=" if candidate_score >= bar else "<"
    text = (f"candidate {metric} {candidate_score:.4f} {verdict} champion {champion_score:.4f}"
            + (f" - margin {margin:g}" if margin else ""))
    if candidate_score >= bar:
        return True, text
    return False, f"refused: {text}"


class Registry(ClosesOnExit):
    """Aliases, their history and promotion decisions in the project's store."""

    def __init__(self, store_path: str | Path):
        self.log = FeedbackLog(store_path)
        self.path = self.log.path

    def close(self) -> None:
        self.log.close()

    def aliases(self) -> dict[str, str]:
        return store_registry.aliases(self.log.store)

    def get(self, alias: str) -> str | None:
        return self.log.get_alias(alias)

    def set(self, alias: str, run_id: str) -> None:
        if not self.log.run_exists(run_id):
            raise StoreError(f"no run {run_id!r} in {self.path}")
        self.log.set_alias(run_id, alias)

    def history(self, alias: str | None = None) -> list[dict]:
        return store_registry.alias_history(self.log.store, alias)

    def versions(self, alias: str = CHAMPION) -> list[str]:
        """The alias's version stack, oldest first: a rollback pops, any other move pushes."""
        stack: list[str] = []
        for event in self.history(alias):
            if event["action"] == "rollback":
                if stack and stack[-1] == event["previous_run_id"]:
                    stack.pop()
                if not stack or stack[-1] != event["run_id"]:
                    stack.append(event["run_id"])
            elif not stack or stack[-1] != event["run_id"]:
                stack.append(event["run_id"])
        return stack

    def rollback(self, alias: str = CHAMPION) -> tuple[str, str]:
        """Point ``alias`` at its previous version: ``(from run, to run)``.

        The target's end model files are checked against their checksums first,
        so a rollback never points servers at a model they cannot load.
        """
        stack = self.versions(alias)
        current = self.get(alias)
        if current is None or len(stack) < 2:
            raise StoreError(f"alias {alias!r} has no previous version to roll back to (history: {stack})")
        target = stack[-2]
        try:
            read_manifest(*self.log.recorded_end_model(target))
        except ArtifactError as exc:
            raise StoreError(f"cannot roll {alias!r} back to {target!r}: {exc}") from exc
        self.log.set_alias(target, alias)  # the server's own alias write; the trigger logs the move
        with self.log.transaction() as conn:
            store_registry.mark_last_move(conn, alias, target, "rollback", previous_run_id=current)
        return current, target

    def record_decision(self, decision: GateDecision, *, alias: str = CHAMPION) -> None:
        """Write ``decision`` and its alias move in one transaction (``write_decision``)."""
        with self.log.transaction() as conn:
            write_decision(conn, decision, alias=alias)

    def decisions(self, run_id: str | None = None) -> list[dict]:
        return store_registry.promotions(self.log.store, run_id)


def write_decision(conn: Transaction, decision: GateDecision, *, alias: str = CHAMPION,
                   candidate: bool = False) -> None:
    """Write a gate decision inside the caller's transaction: its ``promotions`` row, the run's
    ``promotion`` document, ``alias`` moved when it promoted, and the ``candidate`` alias when
    ``candidate`` (a new run). One transaction, so none of these is ever found without the others."""
    store_registry.write_decision(conn, decision.to_dict(), alias=alias, candidate_alias=CANDIDATE if candidate else None)


def settle(decision: GateDecision, *, promote: bool, force: bool = False, actor: str = "",
           note: str = "") -> GateDecision:
    """Pure: whether the gate's ``decision`` moves the alias. It does when ``promote`` and it
    passed, or when ``force``d past a refusal (then marked ``forced``, with who and why)."""
    promoted = promote and (decision.passed or force) and decision.champion_run_id != decision.candidate_run_id
    forced = promoted and not decision.passed
    return replace(decision, promoted=promoted, forced=forced, actor=actor, note=note,
                   reason=decision.reason + (" (forced)" if forced else ""))


def score_on_test(model, test_texts: list[str], y_test, classes, metric: str) -> float:
    return float(classification_metrics(y_test, model.predict_proba(test_texts).argmax(axis=1), classes)[metric])


def _recorded_score(registry: Registry, run_id: str, test_ids, y_test, classes, metric: str) -> float | None:
    """The run's score from its recorded test predictions, if they cover exactly these rows."""
    if test_ids is None:
        return None
    recorded = load_test_predictions(registry.log.recorded_run(run_id))
    if recorded is None or not recorded.matches(test_ids, y_test):
        return None
    # the served predictor's (the end model's in runs recorded before it): the gate promotes what is served
    return float(classification_metrics(y_test, recorded.served_proba.argmax(axis=1), classes)[metric])


def evaluate_candidate(
    registry: Registry,
    config: ProjectConfig,
    candidate_run_id: str,
    test_texts: list[str],
    y_test: np.ndarray,
    *,
    candidate_model=None,
    alias: str = CHAMPION,
    test_ids=None,
    candidate_predictions: np.ndarray | None = None,
) -> GateDecision:
    """Score candidate and champion on the same gold test rows and apply the gate.

    ``candidate_predictions``: (n,) classes the candidate predicted on these rows
    (a retrain has them); ``test_ids``: the rows' ids, to reuse each run's recorded
    predictions. A run is re-scored (its model run on the rows) only without either.
    """
    if config.task == "multi_label":
        return _evaluate_multilabel(registry, config, candidate_run_id, test_texts, y_test,
                                    candidate_model=candidate_model, alias=alias)
    metric, margin, classes = config.promotion.metric, config.promotion.margin, config.classes
    notes = []
    if candidate_predictions is not None:
        candidate_score = float(classification_metrics(y_test, np.asarray(candidate_predictions), classes)[metric])
    else:
        if candidate_model is None:
            # loaded (checksums checked) even when its recorded predictions give the score:
            # a run whose model cannot be served is never promoted
            candidate_model = load_recorded_end_model(registry.log, candidate_run_id)
        candidate_score = _recorded_score(registry, candidate_run_id, test_ids, y_test, classes, metric)
        if candidate_score is None:
            candidate_score = score_on_test(candidate_model, test_texts, y_test, classes, metric)
            notes.append("candidate re-scored (no recorded predictions for these test rows)")
    champion = registry.get(alias)
    if champion == candidate_run_id:
        return GateDecision(candidate_run_id, champion, metric, candidate_score, candidate_score, margin, True,
                            "already champion")
    champion_score = None
    crossed = _cross_schema(registry, config, champion) if champion is not None else None
    if crossed is not None:
        # the champion knows other classes: compared only through the schema's mapping, never silently
        try:
            return _gate_across_schemas(registry, config, candidate_run_id, champion, crossed, test_texts, y_test,
                                        test_ids, candidate_predictions, candidate_model, notes)
        except (ArtifactError, StoreError) as exc:
            return GateDecision(candidate_run_id, champion, metric, candidate_score, None, margin, True,
                                f"champion {champion} cannot be loaded ({exc}); the candidate replaces it")
    if champion is not None:
        try:
            champion_score = _recorded_score(registry, champion, test_ids, y_test, classes, metric)
            if champion_score is None:
                champion_model = load_recorded_end_model(registry.log, champion)
                champion_score = score_on_test(champion_model, test_texts, y_test, classes, metric)
                notes.append("champion re-scored (no recorded predictions for these test rows)")
        except (ArtifactError, StoreError) as exc:
            return GateDecision(candidate_run_id, champion, metric, candidate_score, None, margin, True,
                                f"champion {champion} cannot be loaded ({exc}); the candidate replaces it")
    passed, reason = gate(candidate_score, champion_score, margin=margin, metric=metric)
    reason = "; ".join([reason, *notes])
    return GateDecision(candidate_run_id, champion, metric, candidate_score, champion_score, margin, passed, reason)


def multilabel_gate_metric(config: ProjectConfig) -> str:
    """The metric a multi-label run is gated on: ``promotion.metric`` when it is a label-set
    metric (micro/macro/samples F1), else the project's (``"accuracy"`` there reads as macro-F1)."""
    from ..multilabel.metrics import F1_METRICS

    if config.promotion.metric in F1_METRICS:
        return config.promotion.metric
    return config.metric if config.metric in F1_METRICS else "macro_f1"


class _NotComparable(Exception):
    """A champion the gate's score cannot read (another task shape): the candidate replaces it."""


def _gate_by_score(registry: Registry, config: ProjectConfig, candidate_run_id: str, candidate_model, alias: str,
                   metric: str, scored, where: str) -> GateDecision:
    """The gate where one function scores a model (``scored(model) -> float``, raising
    ``_NotComparable`` for a champion of another shape): the candidate against the alias's
    champion, each loaded with its checksums checked; a champion that cannot be loaded or
    compared is replaced, saying why. ``where`` ends the reason (what both were scored on)."""
    margin = config.promotion.margin
    candidate_score = scored(candidate_model or load_recorded_end_model(registry.log, candidate_run_id))
    champion = registry.get(alias)
    if champion == candidate_run_id:
        return GateDecision(candidate_run_id, champion, metric, candidate_score, candidate_score, margin, True,
                            "already champion")
    champion_score = None
    if champion is not None:
        try:
            champion_score = scored(load_recorded_end_model(registry.log, champion))
        except (ArtifactError, StoreError) as exc:
            return GateDecision(candidate_run_id, champion, metric, candidate_score, None, margin, True,
                                f"champion {champion} cannot be loaded ({exc}); the candidate replaces it")
        except _NotComparable as exc:
            return GateDecision(candidate_run_id, champion, metric, candidate_score, None, margin, True,
                                f"champion {champion} {exc}; the candidate replaces it")
    passed, reason = gate(candidate_score, champion_score, margin=margin, metric=metric)
    return GateDecision(candidate_run_id, champion, metric, candidate_score, champion_score, margin, passed,
                        f"{reason}; {where}")


def _evaluate_multilabel(registry: Registry, config: ProjectConfig, candidate_run_id: str, test_texts, y_test, *,
                         candidate_model=None, alias: str = CHAMPION) -> GateDecision:
    """The gate for a multi-label run: candidate and champion end models predict label sets on the
    gold test rows (``y_test``: each row's set as a bit mask, ``multilabel.gold``), scored by
    ``multilabel_gate_metric``. The champion must be a multi-label run too (its model predicts sets)."""
    from ..multilabel.gold import gold_from_codes
    from ..multilabel.metrics import score

    Y = gold_from_codes(np.asarray(y_test), len(config.classes))

    def scored(model) -> float:
        if not hasattr(model, "predict_sets"):
            raise _NotComparable("is not a multi-label run")
        return float(score(Y, model.predict(test_texts), metric))

    metric = multilabel_gate_metric(config)
    return _gate_by_score(registry, config, candidate_run_id, candidate_model, alias, metric, scored,
                          "both scored on label sets of the gold test split")


def gate_test_split(config: ProjectConfig):
    """The gold test split the gate scores on (a frame with ``id``, ``text``, ``label``; a
    multi-label project's ``label`` is each row's set as a bit mask)."""
    if config.task == "multi_label":
        from ..multilabel.gold import load_multilabel_dataset

        return load_multilabel_dataset(config)[0].test
    from ..data.datasets import load_dataset

    return load_dataset(config).test


def _cross_schema(registry: Registry, config: ProjectConfig, champion: str) -> tuple | None:
    """``(mapping, how)`` when the champion was trained on other classes than ``config``'s: ``mapping[i]``
    is the current index of the champion's class ``i`` (-1: split or retired), ``how`` the reason's words."""
    from ..data.schema import LabelSchema, resolve_class

    old = tuple(registry.log.recorded_run(champion)["config"]["classes"])
    if old == tuple(config.classes):
        return None
    row = registry.log.label_schema(config.name)
    if row is None:
        return None  # no schema history to map through: scored as before
    schema = LabelSchema.from_json(row["classes"], row["history"])
    names = [resolve_class(schema, name)[0] for name in old]
    mapping = np.array([config.classes.index(n) if n in config.classes else -1 for n in names])
    return mapping, f"champion {champion} was trained on classes {list(old)}, the candidate on {list(config.classes)}"


def _gate_across_schemas(registry, config, candidate_run_id, champion, crossed, test_texts, y_test, test_ids,
                         candidate_predictions, candidate_model, notes) -> GateDecision:
    """Rename/merge: the champion's predictions mapped to the current classes, scored on every row;
    add/split/retire: both scored on the test rows whose class the champion's schema also knows."""
    mapping, how = crossed
    metric, margin, classes = config.promotion.metric, config.promotion.margin, config.classes
    y_test = np.asarray(y_test)
    recorded = load_test_predictions(registry.log.recorded_run(champion)) if test_ids is not None else None
    if recorded is not None and np.asarray(test_ids).astype(str).tolist() == recorded.ids.tolist():
        champion_pred = recorded.end_model.argmax(axis=1)
    else:
        champion_pred = load_recorded_end_model(registry.log, champion).predict_proba(test_texts).argmax(axis=1)
        notes.append("champion re-scored (no recorded predictions for these test rows)")
    if candidate_predictions is None:
        model = candidate_model or load_recorded_end_model(registry.log, candidate_run_id)
        candidate_predictions = model.predict_proba(test_texts).argmax(axis=1)
    candidate_pred = np.asarray(candidate_predictions)
    champion_pred = mapping[champion_pred]
    known = sorted({int(j) for j in mapping if j >= 0})
    rows = np.isin(y_test, known)
    if rows.all():
        how += "; the champion's predictions mapped to the current classes"
    else:
        how += (f"; both scored on the {int(rows.sum())} of {len(y_test)} test rows of the classes both know "
                f"({', '.join(classes[j] for j in known)})")
    if not rows.any():
        return GateDecision(candidate_run_id, champion, metric, None, None, margin, True,
                            f"{how}: no test row to compare on; the candidate replaces it")

    def score(pred: np.ndarray) -> float:
        # a champion's vote for a class that is gone (-1) counts as wrong: another class than the gold one
        pred = np.where(pred[rows] < 0, (y_test[rows] + 1) % len(classes), pred[rows])
        return float(classification_metrics(y_test[rows], pred, classes)[metric])

    candidate_score, champion_score = score(candidate_pred), score(champion_pred)
    passed, reason = gate(candidate_score, champion_score, margin=margin, metric=metric)
    return GateDecision(candidate_run_id, champion, metric, candidate_score, champion_score, margin, passed,
                        "; ".join([reason, how, *notes]))


def decide(
    config: ProjectConfig,
    store_path: str | Path,
    candidate_run_id: str,
    test_texts: list[str],
    y_test,
    *,
    candidate_model=None,
    promote: bool,
    force: bool = False,
    alias: str = CHAMPION,
    actor: str = "",
    note: str = "",
    test_ids=None,
    candidate_predictions: np.ndarray | None = None,
) -> GateDecision:
    """Gate ``candidate_run_id`` against ``alias``; move the alias when it passes and
    ``promote`` (or ``force``) is set; record the decision either way, in one transaction.

    Raises ``ArtifactError`` when the candidate's files fail their recorded checksums or
    cannot be loaded, ``StoreError`` for an unknown run.
    """
    with Registry(store_path) as registry:
        decision = evaluate_candidate(registry, config, candidate_run_id, test_texts, np.asarray(y_test),
                                      candidate_model=candidate_model, alias=alias, test_ids=test_ids,
                                      candidate_predictions=candidate_predictions)
        decision = settle(decision, promote=promote, force=force, actor=actor, note=note)
        registry.record_decision(decision, alias=alias)
    return decision


SPAN_METRIC = "dev entity_f1"  # a spans run's gate: entity-level F1 (exact match, micro) on the dev split


def span_dev_f1(model, dev) -> float:
    """Entity F1 of a spans end model (``predict_token_spans``) on ``dev`` (a ``SpanDataset``)."""
    from ..spans.metrics import entity_scores

    return float(entity_scores(dev.gold, model.predict_token_spans(dev.tokens),
                               types=range(len(dev.types)))["entity_f1"])


def evaluate_span_candidate(registry: Registry, config: ProjectConfig, candidate_run_id: str, dev, *,
                            candidate_model=None, alias: str = CHAMPION) -> GateDecision:
    """The gate for a spans run: candidate and champion scored by entity F1 on the same dev
    documents (``dev``: a ``SpanDataset``, gold spans from the store already applied), each
    model loaded with its checksums checked. Dev, not test: every choice is made on dev."""
    return _gate_by_score(registry, config, candidate_run_id, candidate_model, alias, SPAN_METRIC,
                          lambda model: span_dev_f1(model, dev), f"on {len(dev.ids)} dev documents")


def _promote_span_run(config: ProjectConfig, store_path, run_id: str, *, force: bool, alias: str, actor: str,
                      note: str, candidate_model, dev) -> GateDecision:
    from .spans_data import span_dev_split

    dev = span_dev_split(config) if dev is None else dev
    with Registry(store_path) as registry:
        decision = evaluate_span_candidate(registry, config, run_id, dev, candidate_model=candidate_model, alias=alias)
        decision = settle(decision, promote=True, force=force, actor=actor, note=note)
        registry.record_decision(decision, alias=alias)
    return decision


def promote_run(config: ProjectConfig, store_path: str | Path, run_id: str | None = None, *, force: bool = False,
                alias: str = CHAMPION, actor: str = "", note: str = "", candidate_model=None,
                test=None) -> GateDecision:
    """The ``promote`` command: gate the candidate (or ``run_id``) on the project's test split
    (``test``, a frame with ``text`` and ``label``; read from the dataset when not given); a
    spans project's on entity F1 on dev (``test``: then the dev ``SpanDataset``, read with the
    store's gold spans when not given; ``evaluate_span_candidate``).

    Raises ``PromotionRefused`` with the reason when the gate refuses it (and not ``force``).
    """
    with Registry(store_path) as registry:
        run_id = run_id or registry.get(CANDIDATE)
    if not run_id:
        raise StoreError(f"no candidate in {store_path}; retrain first or name a run")
    if config.task == "spans":
        decision = _promote_span_run(config, store_path, run_id, force=force, alias=alias, actor=actor, note=note,
                                     candidate_model=candidate_model, dev=test)
    else:
        test = gate_test_split(config) if test is None else test
        decision = decide(config, store_path, run_id, test["text"].tolist(), test["label"].to_numpy(),
                          candidate_model=candidate_model, promote=True, force=force, alias=alias, actor=actor,
                          note=note, test_ids=test["id"].astype(str).to_numpy())
    if not decision.promoted and not decision.passed:
        raise PromotionRefused(f"run {run_id} not promoted: {decision.reason}")
    return decision
