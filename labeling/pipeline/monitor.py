"""Monitoring: is served traffic still like the data the model was trained on?

Each run records a reference profile (``reference_profile``) on the held-out
test split, the project's sample of unseen data from the training
distribution: per-LF coverage and conflict rate, the end model's
predicted-class distribution and confidence, and the out-of-vocabulary (OOV)
token share against the train vocabulary (kept in the profile), with its
histogram per text. Train-split LF rates are kept too, for display. The
held-out split, not train, is the reference because served texts are unseen
too: in the YouTube example the test video alone has twice the train share of
short comments (LF ``short_comment`` coverage 0.34 vs 0.16), a difference
between videos, not drift of traffic. ``served_profile`` computes the same from
rows of the ``predictions`` table the server writes, and ``compare`` (pure)
turns the two into drift tests, each a two-sample test of the reference's
counts against the served ones (``labeling.data.drift.contingency_test``:
chi-square, or a seeded permutation test where expected counts are below 5):

- LF coverage and conflict, per LF: rows voted (in conflict) or not;
- predicted classes: counts per class (Jensen-Shannon distance, base 2, is
  reported as the effect size);
- confidence: the histogram of the max probability (effect: the mean's drop);
- OOV: the histogram of each text's OOV token share (needs ``--store-text``;
  effect: the rise of the pooled share). A text, not a token, is the unit: the
  tokens of one text are not independent draws.

The p-values are Holm-corrected over all the tests of one verdict, so that
in-distribution traffic of any size gives RETRAIN with probability at most
``monitor.alpha``; each test also states the smallest shift of a share it would
find at this traffic and reference size (power 0.8 at the corrected level).
Before, a fixed Jensen-Shannon threshold of 0.1 ignored sample size: 200 texts
drawn from the test split itself read RETRAIN.

``check_drift`` is the shell: it reads the store and says whether to retrain and why.

When to add a class: ``new_class_candidates`` takes the served texts no LF voted on and the
served predictor was unsure of (top probability below halfway between a uniform guess and
certainty), clusters them (TF-IDF word vectors, k-means, seeded) and reports each cluster of at
least ``MIN_CANDIDATE_CLUSTER`` texts with its top terms and the texts nearest its centre, as
candidates for a new class (``labeling schema add``).

A spans project (``project.task = "spans"``) records another reference: the run's NER on its
dev texts (``span_reference_profile``). ``compare_spans`` tests, per entity type, the served
entities per 100 tokens against the reference's (``labeling.data.drift.rate_test``: a
permutation test over texts, the unit, as for OOV), and the share of texts with no entity
(``contingency_test``), Holm-corrected as above. Served texts kept only as hashes give no
token counts: the rates are then entities per text.

It lives in the pipeline, below the server: a retrain records the reference profile and the
report shows the verdict; ``labeling.serve.monitor`` gives the server's users the same names.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
from scipy.spatial.distance import jensenshannon

from ..lf.analysis import conflicts, coverage
from ..config import MonitorConfig
from ..errors import MonitorError
from ..data.drift import contingency_test, detectable_shift, format_p, holm, rate_test
from ..data.verify import normalize_text

_TOKEN = re.compile(r"[^\W_]+")
MAX_VOCABULARY = 100_000
CONFIDENCE_BINS = 10


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalize_text(text))


def _oov_counts(texts: Sequence[str], vocabulary: set[str]) -> np.ndarray:
    """(n, 2) int: each text's tokens not in ``vocabulary``, and all its tokens."""
    out = np.zeros((len(texts), 2), dtype=np.int64)
    for i, text in enumerate(texts):
        found = tokens(text)
        out[i] = sum(t not in vocabulary for t in found), len(found)
    return out


def oov_share(texts: Sequence[str], vocabulary: set[str], counts: np.ndarray | None = None) -> float:
    """Share of all tokens in ``texts`` that are not in ``vocabulary`` (NaN without tokens);
    ``counts``: their ``_oov_counts`` where already computed (one tokenisation for both figures)."""
    oov, total = (_oov_counts(texts, vocabulary) if counts is None else counts).sum(axis=0)
    return int(oov) / int(total) if total else float("nan")


def _oov_histogram(texts: Sequence[str], vocabulary: set[str], counts: np.ndarray | None = None) -> list[int]:
    """Texts (with at least one token) per tenth of their OOV token share."""
    counts = _oov_counts(texts, vocabulary) if counts is None else counts
    counts = counts[counts[:, 1] > 0]
    hist, _ = np.histogram(counts[:, 0] / counts[:, 1], bins=CONFIDENCE_BINS, range=(0.0, 1.0))
    return hist.tolist()


def _class_distribution(labels: np.ndarray, k: int) -> list[float]:
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=k)[:k].astype(float)
    return (counts / counts.sum()).tolist() if counts.sum() else [0.0] * k


def _confidence(probs: np.ndarray) -> dict:
    top = np.asarray(probs).max(axis=1) if len(probs) else np.zeros(0)
    hist, _ = np.histogram(top, bins=CONFIDENCE_BINS, range=(0.0, 1.0))
    return {"mean": float(top.mean()) if len(top) else float("nan"), "histogram": hist.tolist()}


# the monitor's reference vocabulary (its most frequent tokens) is read off at most this many
# train texts, a seeded subsample beyond: tokenising a million reviews took minutes
REFERENCE_MAX_TEXTS = 50_000


def reference_texts(texts: Sequence[str], seed: int) -> list[str]:
    """The train texts the monitor's reference vocabulary is read from: all, or a seeded
    subsample of ``REFERENCE_MAX_TEXTS`` (the most frequent tokens barely move beyond)."""
    texts = [str(t) for t in texts]
    if len(texts) > REFERENCE_MAX_TEXTS:
        keep = np.sort(np.random.default_rng(seed).choice(len(texts), REFERENCE_MAX_TEXTS, replace=False))
        texts = [texts[i] for i in keep]
    return texts


def _set_distribution(sets, k: int) -> list[float]:
    """Each class's share of the classes in label sets ((n, k) 0/1)."""
    counts = np.asarray(sets, dtype=float).reshape(-1, k).sum(axis=0)
    return (counts / counts.sum()).tolist() if counts.sum() else [0.0] * k


def reference_profile(L_train, L_test, lf_names: Sequence[str], train_texts: Sequence[str],
                      test_texts: Sequence[str], test_probs, classes: Sequence[str], *, test_sets=None) -> dict:
    """What a run's monitoring compares served traffic with (JSON-able). ``test_sets``: a
    multi-label run's predicted label sets ((n, k) 0/1; ``test_probs`` then per-class
    probabilities): the class distribution is each class's share of the classes in the sets,
    and ``L`` holds each LF's vote code (``multilabel.votes``), its coverage read as a class LF's."""
    test_probs = np.asarray(test_probs)
    kind = {} if test_sets is None else {"kind": "multi_label"}
    if test_sets is not None:
        L_train, L_test = _dense_codes(L_train), _dense_codes(L_test)
    counts = Counter(t for text in train_texts for t in tokens(text))
    vocabulary = sorted(t for t, _ in counts.most_common(MAX_VOCABULARY))
    known = set(vocabulary)
    oov = _oov_counts(test_texts, known)  # the test texts tokenised once for both OOV figures
    return {
        "classes": list(classes),
        "lfs": list(lf_names),
        "lf_coverage": coverage(L_test).tolist(),
        "lf_conflict": conflicts(L_test).tolist(),
        "train_lf_coverage": coverage(L_train).tolist(),
        "train_lf_conflict": conflicts(L_train).tolist(),
        "class_distribution": (_class_distribution(test_probs.argmax(axis=1), len(classes)) if test_sets is None
                               else _set_distribution(test_sets, len(classes))),
        "confidence": _confidence(test_probs),
        "oov_share": oov_share(test_texts, known, oov),
        "oov_histogram": _oov_histogram(test_texts, known, oov),
        "n_reference": int(len(test_probs)),
        "vocabulary": vocabulary,
        **kind,
    }


def _dense_codes(L) -> np.ndarray:
    """Vote codes (``multilabel.votes``: up to 2**62) renumbered 0, 1, ... in order, ABSTAIN kept:
    coverage and conflict read only which votes are equal, and count classes up to the largest."""
    L = np.asarray(L, dtype=np.int64)
    values, dense = np.unique(L, return_inverse=True)
    return dense.reshape(L.shape) - int(len(values) > 0 and values[0] == -1)


def _one_hot(labels, k: int) -> np.ndarray:
    """A logged label set (a JSON list of class indices) as a 0/1 row of ``k``."""
    row = np.zeros(k)
    row[json.loads(labels) if isinstance(labels, str) else list(labels or ())] = 1
    return row


def served_profile(rows: Sequence[dict], reference: dict) -> dict:
    """The same quantities over rows of the ``predictions`` table."""
    k, m = len(reference["classes"]), len(reference["lfs"])
    probs = np.array([json.loads(r["probabilities"]) for r in rows], dtype=float).reshape(-1, k)
    votes = [json.loads(r["lf_votes"]) for r in rows if r.get("lf_votes")]
    votes = [v for v in votes if len(v) == m]
    texts = [r["text"] for r in rows if r.get("text") is not None]
    L = np.array(votes, dtype=np.int64).reshape(-1, m)
    known = set(reference["vocabulary"])
    oov = _oov_counts(texts, known) if texts else None
    L = _dense_codes(L) if reference.get("kind") == "multi_label" else L
    return {
        "n": len(rows),
        "n_with_votes": len(votes),
        "n_with_text": len(texts),
        "lf_coverage": coverage(L).tolist() if len(L) else None,
        "lf_conflict": conflicts(L).tolist() if len(L) else None,
        "class_distribution": (_set_distribution([_one_hot(r["labels"], k) for r in rows], k)
                               if reference.get("kind") == "multi_label"
                               else _class_distribution(np.array([r["label"] for r in rows]), k)),
        "confidence": _confidence(probs),
        "oov_share": oov_share(texts, known, oov) if texts else None,
        "oov_histogram": _oov_histogram(texts, known, oov) if texts else None,
    }


@dataclass(frozen=True)
class DriftCheck:
    name: str
    value: float | None  # the effect size (see ``effect``); None: not measurable from the served rows
    effect: str  # what ``value`` measures
    p_value: float | None  # the two-sample test's; None: no test
    p_adjusted: float | None  # Holm-corrected over the verdict's tests
    drifted: bool  # p_adjusted < alpha
    detail: str
    detectable: float | None = None  # smallest shift of a share the test finds at this n (power 0.8)
    method: str = ""  # "chi-square" or "permutation"


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
    alpha: float = 0.05  # the family-wise level of the verdict
    #: new-class candidates (``new_class_candidates``): {size, terms, examples}, largest first
    candidates: tuple[dict, ...] = ()
    #: feedback labels outside the schema (``other: <name>``): name -> count, most first
    other_labels: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self) -> str:
        verdict = ("RETRAIN" if self.retrain else "no retrain needed" if self.checks else
                   f"no verdict: not enough traffic ({self.n_predictions} of {self.min_predictions} predictions needed)")
        lines = [f"run {self.run_id}: {self.n_predictions} served prediction(s): {verdict}"]
        if self.checks:
            tested = sum(c.p_value is not None for c in self.checks)
            lines[0] += f" (Holm-corrected level {self.alpha:g} over {tested} tests)"
        lines += [f"  because {r}" for r in self.reasons]
        for c in self.checks:
            value = "n/a" if c.value is None else f"{c.value:.3f}"
            p = "" if c.p_adjusted is None else f"{format_p(c.p_value)}, adjusted {c.p_adjusted:.2g}"
            detectable = "" if c.detectable is None else f", detects shifts >= {c.detectable:.2f}"
            lines.append(f"  {'DRIFT' if c.drifted else 'ok   '} {c.name:<34} {value:>7} ({c.effect}; {p}{detectable}) "
                         f"{c.detail}")
        lines += [f"  note: {n}" for n in self.notes]
        if self.other_labels:
            lines.append("  feedback naming a class outside the schema (other: <name>): "
                         + ", ".join(f"{name} {n}" for name, n in self.other_labels.items()))
        for c in self.candidates:
            lines.append(f"  new-class candidate: {c['size']} unsure texts no LF votes on, about "
                         f"{', '.join(c['terms'])}; e.g. " + " | ".join(repr(t[:80]) for t in c["examples"]))
        return "\n".join(lines)


def _counts(shares: Sequence[float], n: int) -> np.ndarray:
    return np.rint(np.asarray(shares, dtype=float) * n)


def compare(reference: dict, served: dict, settings: MonitorConfig, *, run_id: str = "") -> MonitorReport:
    """Drift tests and the retrain verdict (pure, deterministic: permutation tests are seeded by the test's name).

    Each test compares the reference's counts (``n_reference`` held-out rows) with the
    served ones; RETRAIN when a Holm-adjusted p-value is below ``settings.alpha``."""
    notes, lf_rows = [], []
    if served["n"] < settings.min_predictions:
        return MonitorReport(run_id, served["n"], False,
                             (f"only {served['n']} served prediction(s); at least {settings.min_predictions} needed "
                              "for a verdict",), (), notes=("too little traffic",),
                             min_predictions=settings.min_predictions, alpha=settings.alpha)
    n_ref = int(reference["n_reference"])
    tests = []  # (name, effect value, effect name, reference counts, served counts, reference share, served n, detail)
    if served["lf_coverage"] is None:
        notes.append("no LF votes were logged with the predictions; LF drift not measured")
    else:
        n_votes = served["n_with_votes"]
        for j, name in enumerate(reference["lfs"]):
            row = {"lf": name, "reference_coverage": reference["lf_coverage"][j],
                   "served_coverage": served["lf_coverage"][j], "reference_conflict": reference["lf_conflict"][j],
                   "served_conflict": served["lf_conflict"][j]}
            lf_rows.append(row)
            for kind in ("coverage", "conflict"):
                ref, now = row[f"reference_{kind}"], row[f"served_{kind}"]
                tests.append((f"LF {kind}: {name}", abs(now - ref), f"|{kind} change|",
                              _counts([ref, 1 - ref], n_ref), _counts([now, 1 - now], n_votes), ref, n_votes,
                              f"held-out {ref:.3f} -> served {now:.3f}"))
    ref_dist, served_dist = reference["class_distribution"], served["class_distribution"]
    js = float(jensenshannon(ref_dist, served_dist, base=2))
    shares = ", ".join(f"{c} {a:.2f}->{b:.2f}" for c, a, b in zip(reference["classes"], ref_dist, served_dist))
    tests.append(("predicted classes", js, "Jensen-Shannon", _counts(ref_dist, n_ref),
                  _counts(served_dist, served["n"]), max(ref_dist, key=lambda p: p * (1 - p)), served["n"], shares))
    ref_conf, served_conf = reference["confidence"], served["confidence"]
    modal = max(ref_conf["histogram"]) / max(sum(ref_conf["histogram"]), 1)
    tests.append(("confidence", ref_conf["mean"] - served_conf["mean"], "mean drop", ref_conf["histogram"],
                  served_conf["histogram"], modal, served["n"],
                  f"held-out mean {ref_conf['mean']:.3f} -> served {served_conf['mean']:.3f}"))
    oov_check = None
    oov_detail = (f"held-out {reference['oov_share']:.3f} -> served {served['oov_share']:.3f}"
                  if served["oov_share"] is not None else "no texts")
    if served["oov_share"] is None:
        notes.append("served texts were kept only as hashes (serve with --store-text); OOV share not measured")
        oov_check = DriftCheck("out-of-vocabulary tokens", None, "share rise", None, None, False, oov_detail)
    elif reference.get("oov_histogram") is None:
        notes.append("the run's reference predates the OOV histogram; OOV share reported, not tested")
        oov_check = DriftCheck("out-of-vocabulary tokens", served["oov_share"] - reference["oov_share"], "share rise",
                               None, None, False, oov_detail)
    else:
        hist = reference["oov_histogram"]
        tests.append(("out-of-vocabulary tokens", served["oov_share"] - reference["oov_share"], "share rise", hist,
                      served["oov_histogram"], max(hist) / max(sum(hist), 1), sum(served["oov_histogram"]), oov_detail))
    results = [contingency_test(ref, now, seed=name) for name, _, _, ref, now, _, _, _ in tests]
    adjusted = holm([r.p_value for r in results])
    level = settings.alpha / max(len(tests), 1)  # Holm's first step: the detectable shifts are conservative
    checks = [DriftCheck(name, value, effect, r.p_value, float(q), bool(q < settings.alpha), detail,
                         detectable_shift(share, n_ref if name.startswith(("LF", "pred")) else int(sum(ref)), n, level),
                         r.method)
              for (name, value, effect, ref, _, share, n, detail), r, q in zip(tests, results, adjusted)]
    if oov_check is not None:
        checks.append(oov_check)
    drifted = sorted((c for c in checks if c.drifted), key=lambda c: c.p_value)
    reasons = tuple(f"{c.name} differs from the held-out reference ({format_p(c.p_value)}, Holm-adjusted "
                    f"{c.p_adjusted:.2g} < {settings.alpha:g}; {c.effect} {c.value:.3f}: {c.detail})" for c in drifted)
    return MonitorReport(
        run_id, served["n"], bool(drifted), reasons, tuple(checks), tuple(lf_rows),
        {"classes": reference["classes"], "reference": ref_dist, "served": served_dist},
        {"reference": reference["confidence"], "served": served["confidence"]},
        {"reference": reference["oov_share"], "served": served["oov_share"]}, tuple(notes),
        settings.min_predictions, settings.alpha,
    )


def span_reference_profile(texts: Sequence[str], predicted: Sequence[Sequence[dict]], types: Sequence[str]) -> dict:
    """A spans run's monitoring reference (JSON-able): per text of its held-out reference
    sample (dev) its token count (``tokens``) and its predicted entities per type, from the
    run's own NER (``predict_text``: the served path)."""
    types = list(types)
    return {"kind": "spans", "types": types, "n_reference": len(texts),
            "tokens": [len(tokens(t)) for t in texts],
            "entities": [[sum(1 for s in doc if s["label"] == t) for t in types] for doc in predicted]}


def served_span_profile(rows: Sequence[dict], reference: dict) -> dict:
    """The same over ``predictions`` rows of a spans run (``spans``: JSON ``[[start, end, type,
    score], ...]``); ``tokens`` is None unless every row kept its text."""
    types = reference["types"]
    docs = [json.loads(r["spans"]) if r.get("spans") else [] for r in rows]
    texts = [r.get("text") for r in rows]
    return {"n": len(rows), "n_with_text": sum(t is not None for t in texts),
            "tokens": [len(tokens(t)) for t in texts] if rows and all(t is not None for t in texts) else None,
            "entities": [[sum(1 for s in doc if s[2] == t) for t in types] for doc in docs]}


def compare_spans(reference: dict, served: dict, settings: MonitorConfig, *, run_id: str = "") -> MonitorReport:
    """Span drift tests and the retrain verdict (pure; permutation tests seeded by the test's
    name): per type, entities per 100 tokens (per text when served texts were not kept), and
    the share of texts with no entity; RETRAIN when a Holm-adjusted p-value is below
    ``settings.alpha``."""
    if served["n"] < settings.min_predictions:
        return MonitorReport(run_id, served["n"], False,
                             (f"only {served['n']} served prediction(s); at least {settings.min_predictions} needed "
                              "for a verdict",), (), notes=("too little traffic",),
                             min_predictions=settings.min_predictions, alpha=settings.alpha)
    notes = []
    ref_e, now_e = np.asarray(reference["entities"], dtype=float), np.asarray(served["entities"], dtype=float)
    ref_e, now_e = ref_e.reshape(-1, len(reference["types"])), now_e.reshape(-1, len(reference["types"]))
    n_ref, n = len(ref_e), len(now_e)
    if served["tokens"] is None:
        notes.append("served texts were kept only as hashes (serve with --store-text); entity rates are per text, "
                     "not per 100 tokens")
        ref_z, now_z, unit, scale = np.ones(n_ref), np.ones(n), "per text", 1.0
    else:
        ref_z, now_z = np.asarray(reference["tokens"], dtype=float), np.asarray(served["tokens"], dtype=float)
        unit, scale = "per 100 tokens", 100.0
    tests = []  # (name, effect, effect name, TestResult, detail, detectable)
    for j, t in enumerate(reference["types"]):
        name = f"entities {unit}: {t}"
        ref_rate = scale * ref_e[:, j].sum() / max(ref_z.sum(), 1)
        now_rate = scale * now_e[:, j].sum() / max(now_z.sum(), 1)
        tests.append((name, now_rate - ref_rate, "rate change", rate_test(ref_e[:, j], ref_z, now_e[:, j], now_z, seed=name),
                      f"dev {ref_rate:.2f} -> served {now_rate:.2f} {unit}", None))
    ref_none, now_none = int((ref_e.sum(axis=1) == 0).sum()), int((now_e.sum(axis=1) == 0).sum())
    share_ref, share_now = ref_none / max(n_ref, 1), now_none / max(n, 1)
    tests.append(("texts with no entity", share_now - share_ref, "share change",
                  contingency_test([ref_none, n_ref - ref_none], [now_none, n - now_none], seed="texts with no entity"),
                  f"dev {share_ref:.3f} -> served {share_now:.3f}", share_ref))
    adjusted = holm([r.p_value for _, _, _, r, _, _ in tests])
    level = settings.alpha / max(len(tests), 1)
    checks = tuple(DriftCheck(name, float(value), effect, r.p_value, float(q), bool(q < settings.alpha), detail,
                              None if share is None else detectable_shift(share, n_ref, n, level), r.method)
                   for (name, value, effect, r, detail, share), q in zip(tests, adjusted))
    drifted = sorted((c for c in checks if c.drifted), key=lambda c: c.p_value)
    reasons = tuple(f"{c.name} differs from the held-out reference ({format_p(c.p_value)}, Holm-adjusted "
                    f"{c.p_adjusted:.2g} < {settings.alpha:g}; {c.effect} {c.value:.3f}: {c.detail})" for c in drifted)
    return MonitorReport(run_id, n, bool(drifted), reasons, checks, notes=tuple(notes),
                         min_predictions=settings.min_predictions, alpha=settings.alpha)


MIN_CANDIDATE_CLUSTER = 3  # a smaller group of texts is not reported as a candidate class
MAX_CANDIDATE_CLUSTERS = 5


def new_class_candidates(rows: Sequence[dict], k: int, *, examples: int = 3, seed: int = 0) -> tuple[dict, ...]:
    """Candidates for a new class among served predictions (``predictions`` rows with
    ``probabilities``, ``lf_votes`` and ``text``; ``k`` classes): the texts where every LF
    abstained and the top probability is below ``(1 + 1/k) / 2``, clustered by k-means (seeded
    ``seed``) over TF-IDF word vectors, ``min(5, n // 3)`` clusters. Returns ``{size, terms,
    examples}`` per cluster of at least ``MIN_CANDIDATE_CLUSTER`` texts, largest first: its five
    highest-weighted centre terms and the ``examples`` texts nearest the centre. Rows without
    logged votes or text cannot be judged and are left out."""
    unsure_below = (1 + 1 / k) / 2
    texts = []
    for r in rows:
        if r.get("text") is None or not r.get("lf_votes"):
            continue
        if all(v == -1 for v in json.loads(r["lf_votes"])) and max(json.loads(r["probabilities"])) < unsure_below:
            texts.append(r["text"])
    n_clusters = min(MAX_CANDIDATE_CLUSTERS, len(texts) // MIN_CANDIDATE_CLUSTER)
    if n_clusters < 1:
        return ()
    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(token_pattern=r"(?u)\b[^\W\d_]{2,}\b", stop_words="english")
    try:
        X = vectorizer.fit_transform(texts)
    except ValueError:  # no word left (only digits, stop words): nothing to name a class by
        return ()
    X = X.tocsr()
    distinct = len({(tuple(X.indices[a:b]), tuple(np.round(X.data[a:b], 9))) for a, b in zip(X.indptr, X.indptr[1:])})
    n_clusters = min(n_clusters, distinct)  # k-means cannot place more centres than distinct texts
    model = KMeans(n_clusters=n_clusters, n_init=10, random_state=seed).fit(X)
    vocabulary = vectorizer.get_feature_names_out()
    distances = model.transform(X)
    out = []
    for c in range(n_clusters):
        members = np.flatnonzero(model.labels_ == c)
        if len(members) < MIN_CANDIDATE_CLUSTER:
            continue
        centre = model.cluster_centers_[c]
        terms = [str(vocabulary[j]) for j in np.argsort(-centre)[:5] if centre[j] > 0]
        nearest = members[np.argsort(distances[members, c], kind="stable")[:examples]]
        out.append({"size": int(len(members)), "terms": terms, "examples": [texts[i] for i in nearest]})
    return tuple(sorted(out, key=lambda c: -c["size"]))


def served_rows(log, run_id: str, window: int) -> list[dict]:
    """The latest ``window`` predictions the server made with ``run_id``.

    Latest by rowid (the order the server committed them), not by ``created_at``:
    the index on ``model_version`` holds rowids in order, so SQLite reads only the
    window instead of sorting every prediction of the run.
    """
    return log.latest_predictions(run_id, window)


def check_drift(store_path: str | Path, settings: MonitorConfig, run_id: str | None = None, *,
                project: str | None = None) -> MonitorReport:
    """Compare the served traffic of ``run_id`` (default: the champion, else the latest run)
    with its recorded reference profile. ``project``: also note when the run's label schema is
    older than the project's (a class was added, renamed, merged, split or retired since)."""
    from ..store.runs import RunStore
    from ..store.serving import FeedbackLog
    from .registry import CHAMPION

    with FeedbackLog(store_path) as log:
        run_id = run_id or log.get_alias(CHAMPION) or log.latest_run_id()
        if not run_id:
            raise MonitorError(f"no runs in {store_path}")
        rows = served_rows(log, run_id, settings.window)
        schema = log.label_schema(project) if project else None
        served_schema = log.run_schema_version(run_id)
        others = log.other_labels()
    with RunStore(store_path) as store:
        reference = store.get_documents(run_id).get("monitor_reference")
    if reference is None:
        raise MonitorError(f"run {run_id} has no monitoring reference profile (recorded before monitoring existed)")
    if reference.get("kind") == "spans":
        report = compare_spans(reference, served_span_profile(rows, reference), settings, run_id=run_id)
    else:
        report = compare(reference, served_profile(rows, reference), settings, run_id=run_id)
        report = replace(report, candidates=new_class_candidates(rows, len(reference["classes"])))
    report = replace(report, other_labels=others)
    if schema is not None and served_schema is not None and served_schema != schema["version"]:
        report = replace(report, notes=report.notes + (
            f"run {run_id} has label schema {served_schema}, older than the project's {schema['version']} "
            f"{schema['classes']}: retrain and promote to serve the new classes",))
    return report
