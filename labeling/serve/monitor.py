"""Monitoring: is served traffic still like the data the model was trained on?

Each run records a reference profile (``reference_profile``) on the held-out
test split, the project's sample of unseen data from the training
distribution: per-LF coverage and conflict rate, the end model's
predicted-class distribution and confidence, and the out-of-vocabulary (OOV)
token share against the train vocabulary (kept in the profile). Train-split LF
rates are kept too, for display. The held-out split, not train, is the
reference because served texts are unseen too: in the YouTube example the test
video alone has twice the train share of short comments (LF ``short_comment``
coverage 0.34 vs 0.16), a difference between videos, not drift of traffic. ``served_profile`` computes the same
from rows of the ``predictions`` table the server writes, and ``compare``
(pure) turns the two into drift checks with the thresholds of ``[monitor]``:

- LF coverage / conflict drift per LF: ``|served - reference|``;
- predicted-class drift: Jensen-Shannon distance (base 2, in [0, 1]);
- OOV share: served share minus the held-out share (needs ``--store-text``);
- confidence drift: mean max-probability drop.

``check_drift`` is the shell: it reads the store and says whether to retrain and why.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial.distance import jensenshannon

from ..lf.analysis import conflicts, coverage
from ..config import MonitorConfig
from ..errors import MonitorError
from ..data.verify import normalize_text

_TOKEN = re.compile(r"[^\W_]+")
MAX_VOCABULARY = 100_000
CONFIDENCE_BINS = 10


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalize_text(text))


def oov_share(texts: Sequence[str], vocabulary: set[str]) -> float:
    """Share of all tokens in ``texts`` that are not in ``vocabulary`` (NaN without tokens)."""
    counts = Counter(t for text in texts for t in tokens(text))
    total = sum(counts.values())
    return sum(n for t, n in counts.items() if t not in vocabulary) / total if total else float("nan")


def _class_distribution(labels: np.ndarray, k: int) -> list[float]:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=k)[:k].astype(float)
    return (counts / counts.sum()).tolist() if counts.sum() else [0.0] * k


def _confidence(probs: np.ndarray) -> dict:
    top = np.asarray(probs).max(axis=1) if len(probs) else np.zeros(0)
    hist, _ = np.histogram(top, bins=CONFIDENCE_BINS, range=(0.0, 1.0))
    return {"mean": float(top.mean()) if len(top) else float("nan"), "histogram": hist.tolist()}


def reference_profile(L_train, L_test, lf_names: Sequence[str], train_texts: Sequence[str],
                      test_texts: Sequence[str], test_probs, classes: Sequence[str]) -> dict:
    """What a run's monitoring compares served traffic with (JSON-able)."""
    test_probs = np.asarray(test_probs)
    counts = Counter(t for text in train_texts for t in tokens(text))
    vocabulary = sorted(t for t, _ in counts.most_common(MAX_VOCABULARY))
    return {
        "classes": list(classes),
        "lfs": list(lf_names),
        "lf_coverage": coverage(L_test).tolist(),
        "lf_conflict": conflicts(L_test).tolist(),
        "train_lf_coverage": coverage(L_train).tolist(),
        "train_lf_conflict": conflicts(L_train).tolist(),
        "class_distribution": _class_distribution(test_probs.argmax(axis=1), len(classes)),
        "confidence": _confidence(test_probs),
        "oov_share": oov_share(test_texts, set(vocabulary)),
        "n_reference": int(len(test_probs)),
        "vocabulary": vocabulary,
    }


def served_profile(rows: Sequence[dict], reference: dict) -> dict:
    """The same quantities over rows of the ``predictions`` table."""
    k, m = len(reference["classes"]), len(reference["lfs"])
    probs = np.array([json.loads(r["probabilities"]) for r in rows], dtype=float).reshape(-1, k)
    votes = [json.loads(r["lf_votes"]) for r in rows if r.get("lf_votes")]
    votes = [v for v in votes if len(v) == m]
    texts = [r["text"] for r in rows if r.get("text") is not None]
    L = np.array(votes, dtype=np.int64).reshape(-1, m)
    return {
        "n": len(rows),
        "n_with_votes": len(votes),
        "n_with_text": len(texts),
        "lf_coverage": coverage(L).tolist() if len(L) else None,
        "lf_conflict": conflicts(L).tolist() if len(L) else None,
        "class_distribution": _class_distribution(np.array([r["label"] for r in rows]), k),
        "confidence": _confidence(probs),
        "oov_share": oov_share(texts, set(reference["vocabulary"])) if texts else None,
    }


@dataclass(frozen=True)
class DriftCheck:
    name: str
    value: float | None  # None: not measurable from the served rows
    threshold: float
    drifted: bool
    detail: str


@dataclass(frozen=True)
class MonitorReport:
    run_id: str
    n_predictions: int
    retrain: bool
    reasons: tuple[str, ...]
    checks: tuple[DriftCheck, ...]
    lf_drift: tuple[dict, ...] = ()  # per LF: reference and served coverage and conflict
    class_distribution: dict = field(default_factory=dict)  # reference / served
    confidence: dict = field(default_factory=dict)
    oov: dict = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    min_predictions: int = 0  # the traffic a verdict needs

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        verdict = ("RETRAIN" if self.retrain else "no retrain needed" if self.checks else
                   f"no verdict: not enough traffic ({self.n_predictions} of {self.min_predictions} predictions needed)")
        lines = [f"run {self.run_id}: {self.n_predictions} served prediction(s): {verdict}"]
        lines += [f"  because {r}" for r in self.reasons]
        for c in self.checks:
            value = "n/a" if c.value is None else f"{c.value:.3f}"
            lines.append(f"  {'DRIFT' if c.drifted else 'ok   '} {c.name:<34} {value:>7} (threshold {c.threshold:g}) {c.detail}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def compare(reference: dict, served: dict, settings: MonitorConfig, *, run_id: str = "") -> MonitorReport:
    """Drift checks and the retrain verdict (pure)."""
    checks, notes, lf_rows = [], [], []
    if served["n"] < settings.min_predictions:
        return MonitorReport(run_id, served["n"], False,
                             (f"only {served['n']} served prediction(s); at least {settings.min_predictions} needed "
                              "for a verdict",), (), notes=("too little traffic",),
                             min_predictions=settings.min_predictions)
    if served["lf_coverage"] is None:
        notes.append("no LF votes were logged with the predictions; LF drift not measured")
    else:
        for j, name in enumerate(reference["lfs"]):
            row = {"lf": name, "reference_coverage": reference["lf_coverage"][j],
                   "served_coverage": served["lf_coverage"][j], "reference_conflict": reference["lf_conflict"][j],
                   "served_conflict": served["lf_conflict"][j]}
            lf_rows.append(row)
            for kind, limit in (("coverage", settings.lf_coverage_drift), ("conflict", settings.lf_conflict_drift)):
                delta = row[f"served_{kind}"] - row[f"reference_{kind}"]
                checks.append(DriftCheck(f"LF {kind}: {name}", abs(delta), limit, abs(delta) > limit,
                                         f"held-out {row[f'reference_{kind}']:.3f} -> served {row[f'served_{kind}']:.3f}"))
    ref_dist, served_dist = reference["class_distribution"], served["class_distribution"]
    js = float(jensenshannon(ref_dist, served_dist, base=2))
    shares = ", ".join(f"{c} {a:.2f}->{b:.2f}" for c, a, b in zip(reference["classes"], ref_dist, served_dist))
    checks.append(DriftCheck("predicted-class Jensen-Shannon", js, settings.class_js, js > settings.class_js, shares))
    drop = reference["confidence"]["mean"] - served["confidence"]["mean"]
    checks.append(DriftCheck("mean confidence drop", drop, settings.confidence_drop, drop > settings.confidence_drop,
                             f"held-out {reference['confidence']['mean']:.3f} -> served {served['confidence']['mean']:.3f}"))
    if served["oov_share"] is None:
        notes.append("served texts were kept only as hashes (serve with --store-text); OOV share not measured")
        oov_check = DriftCheck("out-of-vocabulary token share increase", None, settings.oov_increase, False, "no texts")
    else:
        rise = served["oov_share"] - reference["oov_share"]
        oov_check = DriftCheck("out-of-vocabulary token share increase", rise, settings.oov_increase,
                               rise > settings.oov_increase,
                               f"held-out {reference['oov_share']:.3f} -> served {served['oov_share']:.3f}")
    checks.append(oov_check)
    drifted = [c for c in checks if c.drifted]
    reasons = tuple(f"{c.name} is {c.value:.3f} > {c.threshold:g} ({c.detail})" for c in drifted)
    return MonitorReport(
        run_id, served["n"], bool(drifted), reasons, tuple(checks), tuple(lf_rows),
        {"classes": reference["classes"], "reference": ref_dist, "served": served_dist},
        {"reference": reference["confidence"], "served": served["confidence"]},
        {"reference": reference["oov_share"], "served": served["oov_share"]}, tuple(notes),
        settings.min_predictions,
    )


def served_rows(log, run_id: str, window: int) -> list[dict]:
    """The latest ``window`` predictions the server made with ``run_id``.

    Latest by rowid (the order the server committed them), not by ``created_at``:
    the index on ``model_version`` holds rowids in order, so SQLite reads only the
    window instead of sorting every prediction of the run.
    """
    return log.read(
        "SELECT probabilities, label, lf_votes, text FROM predictions WHERE model_version = ?"
        " ORDER BY rowid DESC LIMIT ?", [run_id, int(window)],
    )


def check_drift(store_path: str | Path, settings: MonitorConfig, run_id: str | None = None) -> MonitorReport:
    """Compare the served traffic of ``run_id`` (default: the champion, else the latest run)
    with its recorded reference profile."""
    from .feedback import FeedbackLog
    from ..pipeline.registry import CHAMPION
    from ..pipeline.store import RunStore

    with FeedbackLog(store_path) as log:
        run_id = run_id or log.get_alias(CHAMPION) or log.latest_run_id()
        if not run_id:
            raise MonitorError(f"no runs in {store_path}")
        rows = served_rows(log, run_id, settings.window)
    with RunStore(store_path) as store:
        reference = store.get_documents(run_id).get("monitor_reference")
    if reference is None:
        raise MonitorError(f"run {run_id} has no monitoring reference profile (recorded before monitoring existed)")
    return compare(reference, served_profile(rows, reference), settings, run_id=run_id)
