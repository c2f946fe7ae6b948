"""Distribution shift between two samples of texts: the tests behind split-drift
verification (``verify``) and the drift verdicts of ``labeling monitor``.

Every comparison is a two-sample test of a categorical distribution: a 2 x C table
of counts (sample a, sample b over C categories). ``contingency_test`` computes
Pearson's chi-square statistic; its p-value is the chi-square distribution's when
every expected count is at least 5 (Cochran's rule), else a Monte Carlo
permutation p-value: under the null hypothesis, with the table's margins fixed,
sample b's counts are a multivariate hypergeometric draw from the pooled counts
(the conditional test of Fisher's exact test, sampled; Hope 1968), seeded so that
reports are reproducible. ``holm`` corrects a family of such tests (Holm 1979:
family-wise error <= alpha under any dependence between the tests).
``detectable_shift`` gives the smallest change of a share that a test would find
at the given sizes (two-proportion z-test, normal approximation), and
``total_variation`` the effect size verification reports and floors.

``SplitProfile`` keeps, per split and in one streaming pass over its texts, the
counts verification tests (``split_differences``): casing, length (powers of 2 of
characters), first token, ASCII-only; bounded by ``MAX_CATEGORIES`` distinct
first tokens (later new tokens count as one "other"), and a sample of
``VOCABULARY_ROWS`` rows per split for the vocabulary (the rows containing each
token).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

MIN_EXPECTED = 5.0
PERMUTATIONS = 9999
MAX_CATEGORIES = 20_000  # distinct first tokens counted per split; later new ones count as "other"
VOCABULARY_ROWS = 2_000  # rows sampled per split for the vocabulary comparison (its tokenizing is the cost)
FIRST_CHARS = 200  # the first token is looked for in a text's first characters
OTHER = "<other>"
RESIDUAL_Z = 4.0  # a category is named in a difference when its share differs by this many standard errors

_WORD = re.compile(r"[^\W_]+")
_LETTER = re.compile(r"[^\W\d_]")


@dataclass(frozen=True)
class TestResult:
    statistic: float  # Pearson's chi-square
    p_value: float
    method: str  # "chi-square", "permutation" or "none" (fewer than two categories)


def contingency_test(a: Sequence[float], b: Sequence[float], *, permutations: int = PERMUTATIONS,
                     seed: int | str = 0) -> TestResult:
    """Do counts ``a`` (C,) and ``b`` (C,) come from one categorical distribution?

    Pearson's chi-square on the 2 x C table; asymptotic p-value when every expected
    count is >= ``MIN_EXPECTED``, else the Monte Carlo permutation p-value from
    ``permutations`` draws (``(1 + draws at least as extreme) / (1 + permutations)``),
    seeded by ``seed`` (a string is hashed with CRC-32). ``permutations=0``: always
    asymptotic. Categories empty in both samples are dropped."""
    table = np.vstack([np.asarray(a, dtype=float), np.asarray(b, dtype=float)])
    table = table[:, table.sum(axis=0) > 0]
    rows = table.sum(axis=1)
    if table.shape[1] < 2 or (rows == 0).any():
        return TestResult(0.0, 1.0, "none")
    columns = table.sum(axis=0)
    total = rows.sum()
    expected = np.outer(rows, columns) / total

    def chi2(served: np.ndarray) -> np.ndarray:  # (draws, C) counts of sample b -> (draws,) statistics
        other = columns - served
        return (((other - expected[0]) ** 2 / expected[0]).sum(axis=-1)
                + ((served - expected[1]) ** 2 / expected[1]).sum(axis=-1))

    statistic = float(chi2(table[1]))
    if expected.min() >= MIN_EXPECTED or not permutations:
        return TestResult(statistic, float(stats.chi2.sf(statistic, table.shape[1] - 1)), "chi-square")
    if isinstance(seed, str):
        seed = zlib.crc32(seed.encode("utf-8"))
    rng = np.random.default_rng(seed)
    draws = rng.multivariate_hypergeometric(columns.astype(np.int64), int(rows[1]), size=permutations)
    extreme = int((chi2(draws.astype(float)) >= statistic * (1 - 1e-9)).sum())
    return TestResult(statistic, (1 + extreme) / (1 + permutations), "permutation")


RATE_PERMUTATIONS = 1999
_RATE_CHUNK = 250  # permutations drawn at once: (chunk, units) floats in memory


def rate_test(counts_a: Sequence[float], sizes_a: Sequence[float], counts_b: Sequence[float],
              sizes_b: Sequence[float], *, permutations: int = RATE_PERMUTATIONS, seed: int | str = 0) -> TestResult:
    """Do two samples of units (texts) share one rate of events per size (entities per token)?

    Units, not the events in them, are exchangeable: the events of one text are not
    independent draws, so a count test over tokens would find drift in any large sample. The
    statistic is the absolute difference of the pooled rates ``sum(counts) / sum(sizes)``;
    the p-value is the Monte Carlo permutation one over the units' assignment to the two
    samples, ``(1 + draws at least as extreme) / (1 + permutations)``, seeded by ``seed`` (a
    string is hashed with CRC-32). ``statistic`` is the rate difference b - a; method "none"
    (p 1) when a sample has no size or no unit has an event."""
    c = np.concatenate([np.asarray(counts_a, dtype=float), np.asarray(counts_b, dtype=float)])
    z = np.concatenate([np.asarray(sizes_a, dtype=float), np.asarray(sizes_b, dtype=float)])
    n_b = len(counts_b)
    total_c, total_z = c.sum(), z.sum()
    size_b = z[len(c) - n_b:].sum()
    if n_b == 0 or size_b <= 0 or size_b >= total_z or total_c == 0:
        return TestResult(0.0, 1.0, "none")

    def difference(count_b, size_b):
        return count_b / size_b - (total_c - count_b) / (total_z - size_b)

    observed = float(difference(c[len(c) - n_b:].sum(), size_b))
    if isinstance(seed, str):
        seed = zlib.crc32(seed.encode("utf-8"))
    rng = np.random.default_rng(seed)
    extreme = 0
    for start in range(0, permutations, _RATE_CHUNK):
        draws = min(_RATE_CHUNK, permutations - start)
        # a uniform random subset of n_b units per draw (argpartition: linear, no full sort)
        picked = np.argpartition(rng.random((draws, len(c))), n_b - 1, axis=1)[:, :n_b]
        sizes = z[picked].sum(axis=1)
        ok = (sizes > 0) & (sizes < total_z)
        diffs = np.abs(difference(c[picked].sum(axis=1)[ok], sizes[ok]))
        extreme += int((diffs >= abs(observed) * (1 - 1e-9)).sum())
    return TestResult(observed, (1 + extreme) / (1 + permutations), "permutation")


def holm(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (same order as given): reject where < alpha."""
    p = np.asarray(p_values, dtype=float)
    m = len(p)
    if not m:
        return p
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (m - np.arange(m))))
    out = np.empty(m)
    out[order] = adjusted
    return out


def detectable_shift(share: float, n_a: int, n_b: int, alpha: float, power: float = 0.8) -> float:
    """Smallest change of a share (from ``share`` in sample a) that a two-sided
    two-proportion test at level ``alpha`` finds with probability ``power`` at sizes
    ``n_a`` and ``n_b`` (normal approximation, the larger of an upward and a downward shift)."""
    if n_a <= 0 or n_b <= 0:
        return float("nan")
    z = stats.norm.isf(alpha / 2) + stats.norm.isf(1 - power)
    worst = 0.0
    for sign in (1.0, -1.0):
        d = z * np.sqrt(0.25 * (1 / n_a + 1 / n_b))
        for _ in range(20):  # fixed point of d = z * se(share, share + d)
            q = min(max(share + sign * d, 0.0), 1.0)
            d = z * np.sqrt(share * (1 - share) / n_a + q * (1 - q) / n_b) or 1 / max(n_a, n_b)
        worst = max(worst, d)
    return float(min(worst, 1.0))


def total_variation(a: Sequence[float], b: Sequence[float]) -> float:
    """Total variation distance of the distributions of counts ``a`` and ``b``, in [0, 1]."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if not a.sum() or not b.sum():
        return 0.0
    return float(0.5 * np.abs(a / a.sum() - b / b.sum()).sum())


def format_p(p: float) -> str:
    return "p < 1e-300" if p <= 0 else f"p = {p:.2g}"


# -- split profiles: what verification counts of each split's texts ------------------------------

CASINGS = ("lowercase", "uppercase", "mixed case, first letter uppercase", "mixed case, first letter lowercase",
           "no cased letters", "no letters")


def casing(text: str) -> str:
    """The text's casing class (one of ``CASINGS``)."""
    if text.islower():
        return "lowercase"
    if text.isupper():
        return "uppercase"
    for c in text:  # neither: mixed case, or no cased letter at all; the first cased letter decides
        if c.isupper():
            return "mixed case, first letter uppercase"
        if c.islower():
            return "mixed case, first letter lowercase"
    return "no letters" if _LETTER.search(text) is None else "no cased letters"


def length_bin(text: str) -> str:
    """The text's length in characters, as a power-of-2 range ("0", "1", "2-3", "4-7", ...)."""
    n = len(text)
    if n < 2:
        return str(n)
    lo = 1 << (n.bit_length() - 1)
    return f"{lo}-{2 * lo - 1}"


def first_token(text: str) -> str:
    """The text's first word token, case-folded ("" without one)."""
    match = _WORD.search(text[:FIRST_CHARS])
    return match.group().casefold() if match else ""


def word_set(text: str) -> set[str]:
    return set(_WORD.findall(text.casefold()))


def ascii_class(text: str) -> str:
    return "ASCII only" if text.isascii() else "non-ASCII"


#: feature name -> (what a row is classified by, how a set of its categories reads after "texts")
FEATURES: dict[str, tuple[Callable[[str], str], Callable[[list[str]], str]]] = {
    "first token": (first_token, lambda cats: "start with " + (
        f"the token {_token(cats[0])}" if len(cats) == 1 else "a token from {" + ", ".join(map(_token, cats[:6]))
        + (", ..." if len(cats) > 6 else "") + "}")),
    "casing": (casing, lambda cats: "are " + " or ".join(cats)),
    "length": (length_bin, lambda cats: "have " + _length_range(cats) + " characters"),
    "non-ASCII": (ascii_class, lambda cats: "are " + " or ".join(cats)),
}


def _token(category: str) -> str:
    return category or "(no word)"


def _length_range(bins: list[str]) -> str:
    bounds = sorted((int(b.split("-")[0]), int(b.split("-")[-1])) for b in bins)
    if all(hi + 1 == lo for (_, hi), (lo, _) in zip(bounds, bounds[1:])):
        return f"{bounds[0][0]}-{bounds[-1][1]}"
    return ", ".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in bounds)


@dataclass
class SplitProfile:
    """Counts of one split's rows per category of each feature (bounded: see the module)."""

    rows: int = 0
    counts: dict = field(default_factory=lambda: {name: Counter() for name in FEATURES})
    vocabulary: Counter = field(default_factory=Counter)  # token -> sampled rows containing it
    vocabulary_rows: int = 0

    def add(self, texts: Sequence[str]) -> None:
        self.rows += len(texts)
        for name, (classify, _) in FEATURES.items():
            counter = self.counts[name]
            for category, n in Counter(map(classify, texts)).items():
                if category in counter or len(counter) < MAX_CATEGORIES:
                    counter[category] += n
                else:
                    counter[OTHER] += n

    def add_vocabulary(self, texts: Sequence[str]) -> None:
        self.vocabulary_rows += len(texts)
        for text in texts:
            self.vocabulary.update(word_set(text))


def profile_texts(texts, *, chunk_rows: int = 20_000, seed: int = 0) -> SplitProfile:
    """A split's ``SplitProfile`` from its texts (a pandas Series of str), read ``chunk_rows`` at a time."""
    profile = SplitProfile()
    for lo in range(0, len(texts), chunk_rows):
        profile.add(texts.iloc[lo : lo + chunk_rows].tolist())
    n = len(texts)
    sample = np.sort(np.random.default_rng(seed).choice(n, VOCABULARY_ROWS, replace=False)) if n > VOCABULARY_ROWS \
        else np.arange(n)
    profile.add_vocabulary(texts.iloc[sample].tolist())
    return profile


@dataclass(frozen=True)
class SplitDifference:
    """One feature compared between two splits: the test, the effect and the strongest difference."""

    feature: str
    split_a: str
    split_b: str
    p_value: float
    effect: float  # total variation distance; for the vocabulary, the largest difference of a token's row share
    description: str  # e.g. "test texts start with a token from {desc, dist} in 100% of rows, train 0%"
    split: str  # the split whose rows show the described categories more often
    categories: tuple[str, ...]  # those categories (for the vocabulary: the tokens)
    p_adjusted: float = 1.0


def _pooled(a: Counter, b: Counter, n_a: int, n_b: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Categories whose expected count in the smaller split is >= ``MIN_EXPECTED``; the rest pooled in ``OTHER``."""
    keys = sorted(set(a) | set(b))
    small = min(n_a, n_b) / max(n_a + n_b, 1)
    kept = [c for c in keys if c != OTHER and (a.get(c, 0) + b.get(c, 0)) * small >= MIN_EXPECTED]
    rest_a, rest_b = n_a - sum(a.get(c, 0) for c in kept), n_b - sum(b.get(c, 0) for c in kept)
    ca = np.array([a.get(c, 0) for c in kept] + [rest_a], dtype=float)
    cb = np.array([b.get(c, 0) for c in kept] + [rest_b], dtype=float)
    return [*kept, OTHER], ca, cb


def _share(x: float) -> str:
    return f"{x:.0%}" if x == 0 or x >= 0.01 else f"{x:.1%}"


def _categorical(feature: str, name_a: str, a: SplitProfile, name_b: str, b: SplitProfile) -> SplitDifference:
    """The test and effect on the pooled table (``_pooled``); the description on every category."""
    _, ca, cb = _pooled(a.counts[feature], b.counts[feature], a.rows, b.rows)
    test = contingency_test(ca, cb, permutations=0)
    cats = sorted((set(a.counts[feature]) | set(b.counts[feature])) - {OTHER})
    n_a, n_b = max(a.rows, 1), max(b.rows, 1)
    pa = np.array([a.counts[feature].get(c, 0) for c in cats], dtype=float) / n_a
    pb = np.array([b.counts[feature].get(c, 0) for c in cats], dtype=float) / n_b
    # the categories that make the difference: standardized differences beyond RESIDUAL_Z
    pooled = (pa * n_a + pb * n_b) / (n_a + n_b)
    z = (pb - pa) / np.sqrt(np.maximum(pooled * (1 - pooled) * (1 / n_a + 1 / n_b), 1e-300))
    up, down = z > RESIDUAL_Z, z < -RESIDUAL_Z
    gain_up, gain_down = (pb - pa)[up].sum(), (pa - pb)[down].sum()
    more, less, pick = (name_b, name_a, up) if gain_up >= gain_down else (name_a, name_b, down)
    if not pick.any() and cats:  # no category stands out: the largest difference
        i = int(np.argmax(np.abs(pb - pa)))
        more, less = (name_b, name_a) if pb[i] >= pa[i] else (name_a, name_b)
        pick = np.arange(len(cats)) == i
    share = {name_a: pa[pick].sum(), name_b: pb[pick].sum()}
    order = np.argsort(-np.abs(pb - pa)[pick], kind="stable")
    chosen = [cats[i] for i in np.flatnonzero(pick)[order]]
    description = (f"{more} texts {FEATURES[feature][1](chosen)} in {_share(share[more])} of rows, "
                   f"{less} {_share(share[less])}") if chosen else ""
    return SplitDifference(feature, name_a, name_b, test.p_value, total_variation(ca, cb), description, more,
                           tuple(chosen))


def _vocabulary(name_a: str, a: SplitProfile, name_b: str, b: SplitProfile, min_effect: float) -> SplitDifference:
    """Per token, the share of (sampled) rows containing it; each token a 2 x 2 chi-square,
    Bonferroni over the tokens compared; the feature's p-value is the smallest adjusted
    p-value among tokens whose share differs by ``min_effect`` or more."""
    n_a, n_b = max(a.vocabulary_rows, 1), max(b.vocabulary_rows, 1)
    small = min(n_a, n_b) / (n_a + n_b)
    tokens = [t for t in set(a.vocabulary) | set(b.vocabulary)
              if (a.vocabulary.get(t, 0) + b.vocabulary.get(t, 0)) * small >= MIN_EXPECTED]
    none = SplitDifference("vocabulary", name_a, name_b, 1.0, 0.0, "", name_b, ())
    if not tokens:
        return none
    tokens.sort()
    ka = np.array([a.vocabulary.get(t, 0) for t in tokens], dtype=float)
    kb = np.array([b.vocabulary.get(t, 0) for t in tokens], dtype=float)
    pa, pb = ka / n_a, kb / n_b
    pooled = (ka + kb) / (n_a + n_b)
    var = pooled * (1 - pooled) * (1 / n_a + 1 / n_b)
    chi2 = np.where(var > 0, (pb - pa) ** 2 / np.maximum(var, 1e-300), 0.0)
    p = np.minimum(1.0, stats.chi2.sf(chi2, 1) * len(tokens))
    big = np.abs(pb - pa) >= min_effect
    if not big.any():
        return SplitDifference("vocabulary", name_a, name_b, float(p.min()), float(np.abs(pb - pa).max()), "",
                               name_b, ())
    order = np.flatnonzero(big)[np.argsort(-np.abs(pb - pa)[big], kind="stable")]
    best = order[0]
    more, less = (name_b, name_a) if pb[best] > pa[best] else (name_a, name_b)
    share = {name_a: pa, name_b: pb}
    same_way = [i for i in order if (pb[i] > pa[i]) == (pb[best] > pa[best])][:4]
    parts = [f"{tokens[i]!r} in {_share(share[more][i])} ({less} {_share(share[less][i])})" for i in same_way]
    description = f"{more} texts contain the token " + parts[0].replace(" (", " of rows (", 1)
    if len(parts) > 1:
        description += "; also " + ", ".join(parts[1:])
    return SplitDifference("vocabulary", name_a, name_b, float(p[big].min()), float(np.abs(pb - pa)[best]),
                           description, more, tuple(tokens[i] for i in same_way))


def split_differences(profiles: dict[str, SplitProfile], *, min_effect: float) -> list[SplitDifference]:
    """Every feature compared between every pair of splits (in the order given), with
    Holm-adjusted p-values over all of them, strongest effect first."""
    names = [n for n in profiles if profiles[n].rows]
    out = []
    for i, name_a in enumerate(names):
        for name_b in names[i + 1:]:
            a, b = profiles[name_a], profiles[name_b]
            out += [_categorical(feature, name_a, a, name_b, b) for feature in FEATURES]
            out.append(_vocabulary(name_a, a, name_b, b, min_effect))
    adjusted = holm([d.p_value for d in out])
    out = [SplitDifference(**{**d.__dict__, "p_adjusted": float(q)}) for d, q in zip(out, adjusted)]
    return sorted(out, key=lambda d: (-d.effect, d.p_adjusted))


def matches(difference: SplitDifference) -> Callable[[str], bool]:
    """Whether a text shows the categories ``difference`` describes (to pick example rows)."""
    chosen = set(difference.categories)
    if difference.feature == "vocabulary":
        return lambda text: bool(chosen & word_set(text))
    classify = FEATURES[difference.feature][0]
    return lambda text: classify(text) in chosen
