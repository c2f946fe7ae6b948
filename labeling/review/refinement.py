"""Refinement from gold labels: what the reviews say about the LFs and the labels.

Pure functions over the label matrix of the gold rows, their texts and labels:

- ``lf_accuracy_table``: each LF's empirical accuracy on gold with a Wilson
  score interval (small gold sets give wide intervals; say so rather than
  rank LFs on noise), and how often it votes wrong.
- ``wrong_examples``: the LFs that vote wrong most, with the rows.
- ``uncovered_gold``: gold rows no LF votes on: where new LFs are needed.
- ``suggest_keyword_lfs`` / ``format_lf_code``: discriminative words and
  n-grams with their precision and coverage on gold, as ready-to-paste LF code.
- ``likely_label_errors``: confident learning (Northcutt et al., 2021) on
  out-of-sample (cross-validated) end-model probabilities: a row whose
  confident class (probability above that class's average self-confidence)
  differs from its given label is a likely label error.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.model_selection import StratifiedKFold

from ..errors import LabelError, LabelMatrixError
from ..matrix import ABSTAIN, check_label_matrix


def _check_gold(L, y) -> tuple[np.ndarray, np.ndarray]:
    L = check_label_matrix(L)
    y = np.asarray(y)
    if y.shape != (len(L),):
        raise LabelMatrixError(f"gold labels have shape {y.shape}; expected ({len(L)},)")
    return L, y.astype(np.int64)


def wilson_interval(successes, n, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a binomial proportion, elementwise; (nan, nan) where n = 0."""
    k = np.asarray(successes, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    z = float(norm.ppf(0.5 + confidence / 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        p = k / n
        denom = 1 + z**2 / n
        centre = (p + z**2 / (2 * n)) / denom
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    low = np.where(n > 0, np.clip(centre - half, 0, 1), np.nan)
    high = np.where(n > 0, np.clip(centre + half, 0, 1), np.nan)
    return low, high


def lf_accuracy_table(L, y, names: Sequence[str], *, confidence: float = 0.95) -> pd.DataFrame:
    """Per LF on gold rows: votes, correct, wrong, accuracy and its Wilson interval."""
    L, y = _check_gold(L, y)
    if len(names) != L.shape[1]:
        raise LabelMatrixError(f"{len(names)} LF names for a matrix with {L.shape[1]} columns")
    voted = (L != ABSTAIN) & (y >= 0)[:, None]
    n = voted.sum(axis=0)
    correct = (voted & (L == y[:, None])).sum(axis=0)
    low, high = wilson_interval(correct, n, confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(n > 0, correct / np.maximum(n, 1), np.nan)
    return pd.DataFrame(
        {"votes": n, "correct": correct, "wrong": n - correct, "accuracy": accuracy, "ci_low": low, "ci_high": high},
        index=pd.Index(list(names), name="lf"),
    )


def wrong_examples(L, y, names: Sequence[str], texts: Sequence[str], *, top: int = 5, per_lf: int = 3,
                   ids: Sequence[str] | None = None) -> list[dict]:
    """The ``top`` LFs with the most wrong votes on gold, each with up to ``per_lf`` rows
    (``row``: the row's id from ``ids``, else its position)."""
    L, y = _check_gold(L, y)
    ids = _row_ids(ids, len(y))
    table = lf_accuracy_table(L, y, names)
    worst = table[table["wrong"] > 0].sort_values(["wrong", "accuracy"], ascending=[False, True]).head(top)
    out = []
    for name, row in worst.iterrows():
        j = list(names).index(name)
        rows = np.flatnonzero((L[:, j] != ABSTAIN) & (y >= 0) & (L[:, j] != y))[:per_lf]
        out.append({"lf": name, "wrong": int(row["wrong"]), "votes": int(row["votes"]), "accuracy": float(row["accuracy"]),
                    "examples": [{"row": ids[i], "text": str(texts[i]), "vote": int(L[i, j]), "gold": int(y[i])} for i in rows]})
    return out


def _row_ids(ids: Sequence[str] | None, n: int) -> list:
    if ids is None:
        return list(range(n))
    if len(ids) != n:
        raise LabelMatrixError(f"{len(ids)} row ids for {n} gold rows")
    return [str(i) for i in ids]


def uncovered_gold(L, y) -> np.ndarray:
    """Positions of gold rows on which every LF abstains."""
    L, y = _check_gold(L, y)
    return np.flatnonzero((y >= 0) & (L == ABSTAIN).all(axis=1))


@dataclass(frozen=True)
class KeywordSuggestion:
    ngram: str
    label: int
    precision: float  # share of gold rows containing the n-gram that have ``label``
    precision_low: float  # Wilson lower bound of the precision
    coverage: float  # share of gold rows containing the n-gram
    matches: int
    new_rows: int  # matching gold rows that no existing LF votes on


def suggest_keyword_lfs(
    texts: Sequence[str],
    y,
    *,
    L=None,
    ngram_range: tuple[int, int] = (1, 2),
    min_matches: int = 3,
    min_precision: float = 0.9,
    top: int = 10,
    exclude: Sequence[str] = (),
    stop_words: str | None = "english",
    max_jaccard: float = 0.5,
) -> list[KeywordSuggestion]:
    """Word n-grams whose gold rows mostly share one class, ranked by Wilson lower bound x matches.

    With ``L`` (the gold rows' votes), n-grams that only fire where LFs already
    vote rank lower: ``new_rows`` counts the uncovered rows an LF would add.
    Overlapping n-grams ("check", "check out") are kept once, the best first,
    and so are n-grams that fire on mostly the same gold rows ("http", "www":
    Jaccard above ``max_jaccard``): near-copies of one LF would be counted as
    independent evidence by the label model.
    """
    y = np.asarray(y).astype(np.int64)
    keep = y >= 0
    texts = [str(t) for t, k in zip(texts, keep) if k]
    y = y[keep]
    if len(texts) == 0:
        return []
    uncovered = np.ones(len(y), dtype=bool)
    if L is not None:
        L_gold, _ = _check_gold(L, np.where(keep, 0, -1))
        uncovered = (L_gold[keep] == ABSTAIN).all(axis=1)
    vec = CountVectorizer(ngram_range=ngram_range, binary=True, lowercase=True, stop_words=stop_words,
                          token_pattern=r"(?u)\b\w[\w']+\b")
    try:
        X = vec.fit_transform(texts).tocsc()
    except ValueError:  # no tokens at all
        return []
    vocab = vec.get_feature_names_out()
    matches = np.asarray(X.sum(axis=0)).ravel()
    classes = np.unique(y)
    candidates = []
    for c in classes:
        in_class = np.asarray(X[y == c].sum(axis=0)).ravel()
        new = np.asarray(X[(y == c) & uncovered].sum(axis=0)).ravel()
        low, _ = wilson_interval(in_class, matches)
        for i in np.flatnonzero((matches >= min_matches) & (in_class / np.maximum(matches, 1) >= min_precision)):
            if vocab[i] in exclude:
                continue
            candidates.append((KeywordSuggestion(str(vocab[i]), int(c), float(in_class[i] / matches[i]), float(low[i]),
                                                 float(matches[i] / len(y)), int(matches[i]), int(new[i])), i))
    candidates.sort(key=lambda t: (-(t[0].precision_low * (t[0].matches + t[0].new_rows)), -t[0].precision, t[0].ngram))
    chosen: list[KeywordSuggestion] = []
    rows_of: list[set] = []
    for s, col in candidates:
        rows = set(X[:, col].indices.tolist())
        if any(_overlaps(s.ngram, c.ngram) for c in chosen) or any(
                len(rows & r) / len(rows | r) > max_jaccard for r in rows_of):
            continue
        chosen.append(s)
        rows_of.append(rows)
        if len(chosen) == top:
            break
    return chosen


def keyword_pattern(ngram: str) -> str:
    """The regex an LF for ``ngram`` searches (case-insensitive): its words, any spacing between."""
    return r"\b" + r"\s+".join(re.escape(w) for w in ngram.split()) + r"\b"


def held_out_precision(suggestions: Sequence[KeywordSuggestion], texts: Sequence[str], y) -> pd.DataFrame:
    """Each suggestion checked on labelled rows it was not found on (e.g. the dev split):
    columns ngram, label, matches, precision (NaN without matches)."""
    y = np.asarray(y).astype(np.int64)
    rows = []
    for s in suggestions:
        pattern = re.compile(keyword_pattern(s.ngram), re.IGNORECASE)
        hit = np.array([bool(pattern.search(str(t))) for t in texts], dtype=bool) & (y >= 0)
        n = int(hit.sum())
        rows.append({"ngram": s.ngram, "label": s.label, "matches": n,
                     "precision": float((y[hit] == s.label).mean()) if n else float("nan")})
    return pd.DataFrame(rows, columns=["ngram", "label", "matches", "precision"])


def _overlaps(a: str, b: str) -> bool:
    wa, wb = a.split(), b.split()
    return set(wa) <= set(wb) or set(wb) <= set(wa)


def _name_part(text: str, prefix: str) -> str:
    """``text`` as the tail of an identifier starting with ``prefix``: word characters kept,
    runs of others made "_". NFKC first, as Python reads identifiers in NFKC (two names
    that differ before it are one name after); ASCII only if that is still no identifier."""
    name = re.sub(r"\W+", "_", unicodedata.normalize("NFKC", text)).strip("_")
    if not (prefix + name).isidentifier() or unicodedata.normalize("NFKC", name) != name:
        name = re.sub(r"[^0-9A-Za-z]+", "_", name).strip("_")
    return name


def _unique(base: str, taken: set[str]) -> str:
    """``base``, or ``base_2``, ``base_3``... : the first one not in ``taken`` (then added to it)."""
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}_{n}"
    taken.add(name)
    return name


# names the generated module defines or imports besides the LFs and class constants
_MODULE_NAMES = frozenset({"re", "labeling_function", "ABSTAIN"})


def class_constants(classes: Sequence[str]) -> dict[int, str]:
    """A valid, distinct Python constant per class index: the upper-cased name with other
    characters made "_" (``SPAM``), ``CLASS_<i>`` when no identifier is left (``1st``, a
    keyword), a numbered suffix when two classes would share one (``Spam`` and ``spam``,
    ``a b`` and ``a-b``) or one would shadow a name of the module (``ABSTAIN``)."""
    taken = set(_MODULE_NAMES) | set(keyword.kwlist)
    out = {}
    for i, name in enumerate(classes):
        base = _name_part(unicodedata.normalize("NFKC", str(name)).upper(), "")
        if not base or not base.isidentifier() or keyword.iskeyword(base):
            base = f"CLASS_{i}"
        out[i] = _unique(base, taken)
    return out


def format_lf_code(
    suggestions: Sequence[KeywordSuggestion], classes: Sequence[str], *, header: bool = True, taken: Sequence[str] = ()
) -> str:
    """Python source of one Snorkel LF per suggestion, importable as a module.

    Every class name and n-gram reaches the code only through ``repr`` or as a sanitised,
    NFKC-checked identifier, so any name (quotes, backslashes, spaces, keywords, non-ASCII) gives
    code that compiles, and distinct classes and LFs keep distinct names.
    ``taken``: names already in use (the project's LFs), which new LFs avoid."""
    constants = class_constants(classes)
    lines = []
    if header:
        lines += ['"""Keyword LFs suggested from gold labels (labeling.refine.suggest_keyword_lfs)."""', "",
                  "import re", "", "from snorkel.labeling import labeling_function", "", "ABSTAIN = -1"]
        lines += [f"{constants[i]} = {i}  # {str(c)!r}" for i, c in enumerate(classes)]
    names: set[str] = set(taken) | set(_MODULE_NAMES) | set(constants.values())
    for s in suggestions:
        name = _unique(f"keyword_{_name_part(s.ngram.lower(), 'keyword_') or 'ngram'}", names)
        pattern = keyword_pattern(s.ngram)
        doc = (f"{s.ngram!r} -> {str(classes[s.label])!r}: precision {s.precision:.2f} (>= {s.precision_low:.2f}), "
               f"coverage {s.coverage:.1%} on gold ({s.matches} rows, {s.new_rows} not covered by any LF).")
        lines += [
            "", "",
            "@labeling_function()",
            f"def {name}(x):",
            f"    {doc!r}",
            f"    return {constants[s.label]} if re.search({pattern!r}, str(x.text), re.IGNORECASE) else ABSTAIN",
        ]
    return "\n".join(lines) + "\n"


def out_of_sample_probs(
    texts: Sequence[str],
    y,
    make_model: Callable[[], object],
    *,
    n_folds: int = 5,
    random_state: int = 0,
) -> np.ndarray:
    """Cross-validated class probabilities: each row scored by a model that never saw it."""
    y = np.asarray(y).astype(np.int64)
    if (y < 0).any():
        raise LabelError("out-of-sample probabilities need a label on every row")
    counts = np.bincount(y)
    n_folds = int(min(n_folds, counts[counts > 0].min()))
    if n_folds < 2:
        raise LabelError("each class needs at least two gold rows for cross-validated probabilities")
    texts = [str(t) for t in texts]
    probs = None
    folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=random_state)
    for fit_idx, held_idx in folds.split(np.zeros(len(y)), y):
        model = make_model().fit([texts[i] for i in fit_idx], y[fit_idx])
        p = model.predict_proba([texts[i] for i in held_idx])
        if probs is None:
            probs = np.zeros((len(y), p.shape[1]))
        probs[held_idx] = p
    return probs


def likely_label_errors(y, probs) -> pd.DataFrame:
    """Confident learning's off-diagonal rule on out-of-sample ``probs``.

    Per class j the threshold t_j is the mean probability of j over rows labelled
    j. A row's confident class is the most probable class whose probability
    reaches its threshold; a row whose confident class is not its label is
    flagged. Sorted by self-confidence (probability of the given label), lowest
    first. Columns: row, given, suggested, p_suggested (the model's probability
    of the suggested class), self_confidence (its probability of the given label).
    """
    y = np.asarray(y).astype(np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) != len(y):
        raise LabelMatrixError(f"probs must have shape ({len(y)}, k), got {probs.shape}")
    k = probs.shape[1]
    thresholds = np.array([probs[y == j, j].mean() if (y == j).any() else np.inf for j in range(k)])
    above = probs >= thresholds[None, :] - 1e-12
    masked = np.where(above, probs, -np.inf)
    confident = np.where(above.any(axis=1), masked.argmax(axis=1), -1)
    flagged = np.flatnonzero((confident >= 0) & (confident != y))
    self_conf = probs[np.arange(len(y)), y]
    table = pd.DataFrame({"row": flagged, "given": y[flagged], "suggested": confident[flagged],
                          "p_suggested": probs[flagged, confident[flagged]], "self_confidence": self_conf[flagged]})
    return table.sort_values("self_confidence", kind="stable").reset_index(drop=True)


def check_label_errors(
    texts: Sequence[str],
    y,
    classes: Sequence[str],
    make_model: Callable[[], object] | None,
    *,
    random_state: int = 0,
) -> tuple[pd.DataFrame, str]:
    """``likely_label_errors`` over the gold rows that can be checked, and a note on the rest.

    A row is checked out of sample: its class must keep a gold row in the other folds,
    so classes with a single gold row are left out (their rows named in the note), and
    with fewer than two such classes nothing is checked and the note says why.
    Returns ``(errors, note)``; errors has columns row, text, given, suggested,
    self_confidence (``row`` indexes ``texts``); note is "" when every gold row was checked.
    """
    y = np.asarray(y).astype(np.int64)
    texts = [str(t) for t in texts]
    empty = pd.DataFrame(columns=["row", "text", "given", "suggested", "p_suggested", "self_confidence"])
    if make_model is None:
        return empty, "not computed: no model to score the gold rows with"
    labelled = y >= 0
    counts = np.bincount(y[labelled], minlength=len(classes))
    checkable = counts >= 2
    lone = [str(classes[c]) for c in np.flatnonzero((counts > 0) & ~checkable)]
    if checkable.sum() < 2:
        per_class = ", ".join(f"{classes[c]} {counts[c]}" for c in range(len(classes)))
        return empty, ("not computed: cross-validated probabilities need two or more classes with at least two gold "
                       f"rows each; gold rows per class: {per_class}")
    rows = np.flatnonzero(labelled & checkable[np.where(labelled, y, 0)])
    probs = out_of_sample_probs([texts[i] for i in rows], y[rows], make_model, random_state=random_state)
    errors = likely_label_errors(y[rows], probs)
    errors["row"] = rows[errors["row"].to_numpy()]
    errors.insert(1, "text", [texts[i] for i in errors["row"]])
    skipped = np.flatnonzero(labelled & ~checkable[np.where(labelled, y, 0)])
    note = (f"{len(skipped)} gold row(s) not checked (rows {skipped.tolist()[:10]}): class(es) {lone} have a single "
            "gold row, which cannot be held out and still be learned" if len(skipped) else "")
    return errors, note


# A suggested LF is offered as ready to paste only when the evidence says it is right
# far more often than wrong where it votes. Found on a few dozen gold rows, an n-gram
# often fits them by chance, so it must hold on dev rows it was not found on, and
# the pooled evidence must be strong: the 95% Wilson lower bound of its precision
# over gold and dev together is at least READY_MIN_WILSON (0.6: with 95% confidence
# it is right at least 3 times in 5, i.e. it adds signal, not noise, to the label model).
READY_MIN_DEV_MATCHES = 2
READY_MIN_DEV_PRECISION = 0.9
READY_MIN_WILSON = 0.6


def readiness(suggestions: Sequence[KeywordSuggestion], held_out: pd.DataFrame | None) -> list[str | None]:
    """Per suggestion: None when it is ready to paste, else why not (one line)."""
    out = []
    for i, s in enumerate(suggestions):
        correct, n = s.precision * s.matches, s.matches
        why = []
        if held_out is not None:
            row = held_out.iloc[i]
            dev_n = int(row["matches"])
            if dev_n < READY_MIN_DEV_MATCHES:
                why.append(f"matches {dev_n} dev row(s), fewer than {READY_MIN_DEV_MATCHES}")
            elif row["precision"] < READY_MIN_DEV_PRECISION:
                why.append(f"dev precision {row['precision']:.2f} < {READY_MIN_DEV_PRECISION:.2f}")
            if dev_n:
                correct, n = correct + row["precision"] * dev_n, n + dev_n
        low = float(wilson_interval(round(correct), n)[0])
        if not low >= READY_MIN_WILSON:
            why.append(f"95% Wilson lower bound of precision {low:.2f} < {READY_MIN_WILSON:.2f} "
                       f"({round(correct)} of {n} {'gold+dev' if held_out is not None else 'gold'} rows)")
        out.append("; ".join(why) or None)
    return out


@dataclass(frozen=True)
class RefineReport:
    lf_table: pd.DataFrame
    worst: list
    uncovered: pd.DataFrame  # text, label of gold rows no LF covers
    suggestions: list
    lf_code: str
    label_errors: pd.DataFrame  # row, text, given, suggested, self_confidence
    n_gold: int
    held_out: pd.DataFrame | None = None  # the suggestions checked on other labelled rows (dev)
    label_errors_note: str = ""  # gold rows the label-error check skipped, and why ("" = all checked)

    def accepted(self) -> list[KeywordSuggestion]:
        """Suggestions ready to paste (``readiness``): the only ones in ``lf_code``."""
        return [s for s, why in zip(self.suggestions, readiness(self.suggestions, self.held_out)) if why is None]

    def rejected(self) -> list[tuple[KeywordSuggestion, str]]:
        """Suggestions not offered as code, each with the reason."""
        return [(s, why) for s, why in zip(self.suggestions, readiness(self.suggestions, self.held_out)) if why]


def refine(
    L,
    y,
    texts: Sequence[str],
    names: Sequence[str],
    classes: Sequence[str],
    *,
    make_model: Callable[[], object] | None = None,
    random_state: int = 0,
    top: int = 10,
    taken: Sequence[str] = (),
    held_out: tuple[Sequence[str], Sequence[int]] | None = None,
    ids: Sequence[str] | None = None,
) -> RefineReport:
    """Every refinement view over the gold rows (``L`` = their votes).

    ``held_out``: (texts, labels) of labelled rows that are not gold rows (the
    dev split): suggestions found on gold are checked there, since n-grams
    picked on a few dozen rows overfit them. ``ids``: the gold rows' ids, which
    the report names rows by (positions when None). ``lf_code`` holds only the
    suggestions ``readiness`` accepts."""
    L, y = _check_gold(L, y)
    texts = [str(t) for t in texts]
    row_ids = _row_ids(ids, len(y))
    holes = uncovered_gold(L, y)
    suggestions = suggest_keyword_lfs(texts, y, L=L, top=top)
    errors, errors_note = check_label_errors(texts, y, classes, make_model, random_state=random_state)
    errors["row"] = [row_ids[i] for i in errors["row"]]
    checked = None if held_out is None else held_out_precision(suggestions, *held_out)
    ready = [s for s, why in zip(suggestions, readiness(suggestions, checked)) if why is None]
    return RefineReport(
        lf_table=lf_accuracy_table(L, y, names),
        worst=wrong_examples(L, y, names, texts, top=5, ids=row_ids),
        uncovered=pd.DataFrame({"row": [row_ids[i] for i in holes], "text": [texts[i] for i in holes],
                                "label": y[holes]}),
        suggestions=suggestions,
        lf_code=format_lf_code(ready, classes, taken=taken),
        label_errors=errors,
        n_gold=int((y >= 0).sum()),
        held_out=checked,
        label_errors_note=errors_note,
    )


def _short(text: str, width: int = 90) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_report(report: RefineReport, classes: Sequence[str], *, examples: int = 5) -> str:
    """The refinement report for the terminal."""
    table = report.lf_table.copy()
    lines = [f"Refinement from {report.n_gold} gold rows", "",
             "LF accuracy on gold (95% Wilson interval):",
             table.to_string(float_format=lambda v: f"{v:.2f}"), ""]
    lines.append("LFs voting wrong most:" if report.worst else "No LF votes wrong on gold.")
    for w in report.worst:
        lines.append(f"  {w['lf']}: {w['wrong']} wrong of {w['votes']} votes")
        lines += [f"    {e['row']}: voted {classes[e['vote']]}, gold {classes[e['gold']]}: {_short(e['text'])}"
                  for e in w["examples"]]
    lines += ["", f"Gold rows no LF covers: {len(report.uncovered)}"]
    lines += [f"  [{classes[r.label]}] {_short(r.text)}" for r in report.uncovered.head(examples).itertuples()]
    not_computed = report.label_errors_note.startswith("not computed")
    lines += ["", "Likely label errors in gold (confident learning, cross-validated end model): "
              + (report.label_errors_note if not_computed else str(len(report.label_errors)))]
    lines += [f"  {report.label_errors_note}"] if report.label_errors_note and not not_computed else []
    lines += [f"  {r.row}: gold says {classes[r.given]}; model gives {classes[r.suggested]} p={r.p_suggested:.2f} "
              f"({classes[r.given]} p={r.self_confidence:.2f}): {_short(r.text)}"
              for r in report.label_errors.head(examples).itertuples()]
    if report.held_out is not None:
        lines += ["", "Suggestions checked on held-out labelled rows (dev):",
                  report.held_out.to_string(index=False, float_format=lambda v: f"{v:.2f}")]
    accepted, rejected = report.accepted(), report.rejected()
    lines += ["", f"Suggested LFs: {len(report.suggestions)} found on gold, {len(accepted)} ready to paste. Ready means "
                  f"precision >= {READY_MIN_DEV_PRECISION:.2f} on at least {READY_MIN_DEV_MATCHES} dev rows and a 95% "
                  f"Wilson lower bound >= {READY_MIN_WILSON:.2f} over gold and dev together (right at least 3 times "
                  "in 5 with 95% confidence); n-grams fitted to a few gold rows often fail that."]
    lines += [f"  not offered: {s.ngram!r} -> {classes[s.label]}: {why}" for s, why in rejected]
    if accepted:
        lines += ["", report.lf_code]
    return "\n".join(lines)


__all__ = [
    "KeywordSuggestion",
    "RefineReport",
    "check_label_errors",
    "class_constants",
    "format_lf_code",
    "format_report",
    "held_out_precision",
    "keyword_pattern",
    "lf_accuracy_table",
    "likely_label_errors",
    "out_of_sample_probs",
    "readiness",
    "refine",
    "suggest_keyword_lfs",
    "uncovered_gold",
    "wilson_interval",
    "wrong_examples",
]
