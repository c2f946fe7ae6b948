"""Verification at ingestion: is the data what the project says it is?

``verify_splits`` checks canonical splits (after ``load_dataset``) and returns a
``VerificationReport``; ``raise_on_errors`` stops a run on fatal findings before
anything is written. Findings:

- errors (fatal): missing canonical columns, non-text or null texts, repeated
  ids within a split, labels outside the project's classes, more empty texts
  than ``verify.max_empty_share``; plus any warning code named in
  ``verify.fail_on``.
- warnings: empty texts, exact and near duplicates within a split, texts with
  conflicting gold labels, test rows duplicated in train or dev (leakage),
  class imbalance and classes missing from a split, and split drift: train, dev
  and test texts that differ in casing, length, first token, vocabulary or share of
  non-ASCII texts (``split_drift``, below).

Split drift (``labeling.data.drift``): every pair of splits is compared on each of
those features by a chi-square test of the category counts (rare categories pooled,
so that expected counts are >= 5; for the vocabulary, one 2 x 2 test per token on the
share of rows containing it, Bonferroni over the tokens), Holm-corrected over every
feature and pair at ``verify.drift_alpha``; a difference is reported when it is
significant and at least ``verify.drift_min_effect`` large (total variation distance,
or a token's row share), so that huge splits do not flag trivia. One warning per
pair of splits names the strongest difference with example rows, e.g. WRENCH trec:
``test texts start with a token from {desc, dist, city, ...} in 100% of rows, train
0%``. What it keeps: per split, counts per category (at most ``MAX_CATEGORIES``
distinct first tokens) and the token counts of a sample of ``VOCABULARY_ROWS`` rows.

The texts are read once, a chunk of rows at a time (``text_keys``): each row keeps
only the index of its normalized text among the distinct ones (told apart by a
128-bit digest), each distinct text its MinHash signature and first row. Exact
duplicates, conflicting labels and exact leakage are computed on those indices;
no normalized copy of the texts is kept (at 1M IMDB rows that copy and a dict
keyed by it were 2 GB).

Near duplicates, on every row: character 5-gram shingles, MinHash signatures
(64 bins of one-permutation hashing, computed with numpy in batches) and LSH
banding (the band shape that best separates the threshold; each band's keys
sorted, no bucket dict of every row) propose candidate pairs, and the exact Jaccard of the shingle
sets confirms them. Cost is near-linear, memory 256 bytes per distinct text
plus the candidate pairs (8 bytes each); above ``verify.max_near_duplicate_rows``
(default: no limit) the search is skipped and the report says so. Shingle hashes
and permutations are fixed, so reports are reproducible across processes.
"""

from __future__ import annotations

import functools
import hashlib
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from ..config import VerifyConfig
from .datasets import SPLIT_NAMES, Splits
from .drift import format_p, matches, profile_texts, split_differences
from ..errors import VerificationError

SHINGLE = 5
N_HASHES = 64
MAX_BUCKET = 200  # a bucket bigger than this is boilerplate; its pairs are not enumerated
ALL_PAIRS_BUCKET = 8  # a bigger bucket links its members to its first only (linear, not quadratic)
SURE_MARGIN = 0.15  # MinHash agreement this far from the threshold decides without the exact Jaccard
MAX_SHINGLED_CHARS = 2000
MAX_EXAMPLES = 5
_INVISIBLE = "\ufeff\u200b\u200c\u200d\u2060"


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str  # "error" | "warning"
    message: str
    split: str = ""
    count: int = 0
    examples: tuple[str, ...] = ()  # row ids (or "test id ~ train id" pairs)


@dataclass(frozen=True)
class VerificationReport:
    source: str
    dataset_version: str
    rows: dict  # split -> rows
    class_counts: dict  # split -> {class name: gold rows, "unlabelled": rows}
    findings: tuple[Finding, ...] = ()
    stats: dict = field(default_factory=dict)  # duplicate and leakage counts for the report
    # ids of the test rows with an exact or near duplicate in train or dev: for the run's
    # leakage-free metrics (not recorded: the findings hold examples and counts)
    leaked_test_ids: frozenset = field(default=frozenset(), compare=False, repr=False)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")

    @property
    def warnings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "warning")

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_dict(self) -> dict:
        out = asdict(self)
        del out["leaked_test_ids"]
        return out

    @classmethod
    def from_dict(cls, data: dict) -> VerificationReport:
        findings = tuple(Finding(**{**f, "examples": tuple(f["examples"])}) for f in data.get("findings", ()))
        return cls(**{**data, "findings": findings})

    def format(self) -> str:
        lines = [f"verification of {self.source} (dataset {self.dataset_version}): "
                 f"{len(self.errors)} error(s), {len(self.warnings)} warning(s)",
                 "rows: " + ", ".join(f"{k} {v}" for k, v in self.rows.items())]
        for split, counts in self.class_counts.items():
            lines.append(f"gold classes in {split}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for f in self.findings:
            where = f" [{f.split}]" if f.split else ""
            example = f" e.g. {', '.join(f.examples)}" if f.examples else ""
            lines.append(f"{f.severity.upper():7} {f.code}{where}: {f.message}{example}")
        return "\n".join(lines)


def normalize_text(text: str) -> str:
    """What "the same text" means for duplicates: Unicode NFKC, case-folded,
    invisible characters dropped, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text)
    for ch in _INVISIBLE:  # str.translate with a dict costs a lookup per character (4x slower)
        if ch in text:
            text = text.replace(ch, "")
    # str.split() splits on exactly what the regex \s+ matched (Unicode whitespace), ~10x faster
    return " ".join(text.casefold().split())


def _shingle_hashes(codes: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """32-bit hashes of the character k-grams of texts laid end to end in ``codes``
    (code points), and the text each belongs to. A text of k characters or fewer is
    one shingle (itself)."""
    n, k = len(codes), SHINGLE
    h = np.full(n, 0xCBF29CE484222325, dtype=np.uint64)  # FNV-1a over the gram's code points
    for t in range(k):  # in place: no temporary array of n per step (the positions past the end XOR 0)
        if t < n:
            np.bitwise_xor(h[: n - t], codes[t:], out=h[: n - t])
        np.multiply(h, np.uint64(0x100000001B3), out=h)
    h ^= h >> np.uint64(29)
    keep = np.ones(n, dtype=bool)  # a gram starting in the last k-1 characters of its text runs past it
    ends = starts + lengths
    for t in range(1, k):
        at = ends - t
        keep[at[at >= starts]] = False
    owner = np.repeat(np.arange(len(starts), dtype=np.int64), lengths)
    hashes, owners = [h[keep]], [owner[keep]]
    short = np.flatnonzero(lengths <= k)
    if len(short):  # each short text: its whole code points, hashed the same way
        whole = np.full(len(short), 0xCBF29CE484222325, dtype=np.uint64)
        codes = np.append(codes, np.uint32(0))  # an empty text reads one padding position, unused
        for t in range(k):
            has = t < lengths[short]
            at = np.where(has, starts[short] + t, 0)
            whole = np.where(has, (whole ^ codes[at].astype(np.uint64)) * np.uint64(0x100000001B3), whole)
        whole ^= whole >> np.uint64(29)
        hashes.append(whole)
        owners.append(short)
    return np.concatenate(hashes) & np.uint64(0xFFFFFFFF), np.concatenate(owners)


def _layout(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cut = [t[:MAX_SHINGLED_CHARS] for t in texts]
    codes = np.frombuffer("".join(cut).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    lengths = np.fromiter(map(len, cut), dtype=np.int64, count=len(cut))
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    return codes, starts, lengths


def shingles(text: str, k: int = SHINGLE) -> frozenset[int]:
    """Hashes of the character ``SHINGLE``-grams of a normalized text (its first ``MAX_SHINGLED_CHARS``)."""
    if k != SHINGLE:
        raise ValueError(f"shingles are {SHINGLE}-grams")
    hashes, _ = _shingle_hashes(*_layout([text]))
    return frozenset(hashes.tolist())


def jaccard(a: frozenset, b: frozenset) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


_BIN_BITS = 26  # a 32-bit shingle hash: top 6 bits pick one of 64 bins, the rest is the value
_EMPTY = np.uint32(0xFFFFFFFF)


def minhash_signatures(texts: Sequence[str], *, batch_chars: int = 1_000_000) -> np.ndarray:
    """(n, N_HASHES) uint32 MinHash signatures of the texts' shingle sets.

    One-permutation MinHash (Li, Owen & Zhang 2012) with rotation densification
    (Shrivastava & Li 2014): each shingle is hashed once and kept as the minimum
    of its bin, so the cost is one hash per shingle where 64 permutations
    (datasketch's ``MinHash``) cost 64 (measured: 92 s for 25,000 IMDB reviews,
    against a few seconds). Two texts agree on a bin with probability about their
    Jaccard similarity, as with k permutations. Computed over batches of about
    ``batch_chars`` characters: memory is the signatures plus a few arrays of a batch
    (about 80 bytes a character; 1M characters ran faster than 4M, in cache).
    """
    out = np.empty((len(texts), N_HASHES), dtype=np.uint32)
    lo = 0
    while lo < len(texts):
        hi, size = lo, 0
        while hi < len(texts) and (hi == lo or size + min(len(texts[hi]), MAX_SHINGLED_CHARS) <= batch_chars):
            size += min(len(texts[hi]), MAX_SHINGLED_CHARS)
            hi += 1
        hashes, owners = _shingle_hashes(*_layout(texts[lo:hi]))
        sig = np.full((hi - lo) * N_HASHES, _EMPTY, dtype=np.uint32)
        np.minimum.at(sig, owners * N_HASHES + (hashes >> np.uint64(_BIN_BITS)).astype(np.int64),
                      (hashes & np.uint64((1 << _BIN_BITS) - 1)).astype(np.uint32))
        out[lo:hi] = _densify(sig.reshape(hi - lo, N_HASHES))
        lo = hi
    return out


def _densify(sig: np.ndarray) -> np.ndarray:
    """Each empty bin takes the next non-empty bin's value (circularly), tagged with the
    distance so that borrowed values only match values borrowed from as far."""
    if not (sig == _EMPTY).any():
        return sig
    k = sig.shape[1]
    twice = np.concatenate([sig, sig], axis=1)
    position = np.where(twice != _EMPTY, np.arange(2 * k), 2 * k)
    nearest = np.minimum.accumulate(position[:, ::-1], axis=1)[:, ::-1][:, :k]  # next non-empty at or after j
    rows = np.arange(len(sig))[:, None]
    found = nearest < 2 * k
    source = np.where(found, nearest, 0)
    distance = (source - np.arange(k)).astype(np.uint32)
    return np.where(found, twice[rows, source] + (distance << np.uint32(_BIN_BITS)), _EMPTY).astype(np.uint32)


@functools.lru_cache(maxsize=16)
def lsh_shape(threshold: float) -> tuple[int, int]:
    """(bands, rows per band), bands x rows <= N_HASHES, minimizing the mean of the
    false-positive and false-negative areas around ``threshold`` (datasketch's rule)."""
    s = np.linspace(0.0, 1.0, 401)
    best = None
    for bands in range(1, N_HASHES + 1):
        rows = N_HASHES // bands
        caught = 1.0 - (1.0 - s**rows) ** bands  # chance a pair of Jaccard s shares a band
        fp = np.trapezoid(np.where(s <= threshold, caught, 0.0), s)
        fn = np.trapezoid(np.where(s >= threshold, 1.0 - caught, 0.0), s)
        if best is None or 0.5 * (fp + fn) < best[0] - 1e-12:
            best = (0.5 * (fp + fn), bands, rows)
    return best[1], best[2]


def near_duplicate_pairs(texts: Sequence[str], threshold: float) -> tuple[list[tuple[int, int, float]], int]:
    """Pairs ``(i, j, jaccard)`` (i < j) of distinct texts with shingle Jaccard >= ``threshold``,
    and the number of oversized LSH buckets skipped.

    The texts' MinHash signatures (``minhash_signatures``) through ``near_pairs_from_signatures``;
    the pairs come sorted by ``(i, j)``.
    """
    if len(texts) < 2:
        return [], 0
    first, second, score, skipped = near_pairs_from_signatures(minhash_signatures(texts), threshold,
                                                               lambda i: texts[i])
    return [(i, j, round(s, 4)) for i, j, s in zip(first.tolist(), second.tolist(), score.tolist())], skipped


def _band_candidates(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Candidate pairs ``(i, j)``, i < j, of one LSH band's keys (n,), and the buckets skipped.

    Sorting the keys puts each bucket's members side by side, in ascending row order (the
    sort is stable): a bucket of up to ``ALL_PAIRS_BUCKET`` proposes all its pairs, a
    bigger one (up to ``MAX_BUCKET``) links its members to its first, a bigger one still
    is skipped. Vectorized per bucket size: no Python step per row."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    edges = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1], True])
    starts, sizes = edges[:-1], np.diff(edges)
    firsts, seconds = [], []
    for size in range(2, min(ALL_PAIRS_BUCKET, MAX_BUCKET) + 1):
        lo = starts[sizes == size]
        if len(lo):
            a, b = np.triu_indices(size, 1)
            firsts.append(order[lo[:, None] + a].ravel())
            seconds.append(order[lo[:, None] + b].ravel())
    big = (sizes > ALL_PAIRS_BUCKET) & (sizes <= MAX_BUCKET)
    if big.any():
        lo, n = starts[big], sizes[big] - 1
        at = np.repeat(lo, n) + np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n) + 1
        firsts.append(order[np.repeat(lo, n)])
        seconds.append(order[at])
    if not firsts:
        return np.empty(0, np.int64), np.empty(0, np.int64), int((sizes > MAX_BUCKET).sum())
    return np.concatenate(firsts), np.concatenate(seconds), int((sizes > MAX_BUCKET).sum())


def near_pairs_from_signatures(signatures: np.ndarray, threshold: float,
                               text_of) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Near-duplicate pairs of distinct texts from their MinHash signatures (n, ``N_HASHES``):
    ``(i (m,) int64, j (m,) int64, jaccard (m,) float64, oversized LSH buckets skipped)``,
    i < j, sorted by ``(i, j)``, jaccard >= ``threshold``. ``text_of(i)`` gives text ``i``
    (normalized), read only for the pairs whose estimate is not decisive.

    MinHash LSH (band shape from ``lsh_shape``) proposes candidates: each band's keys
    are sorted, so memory is a signature per text plus the candidate pairs as int64
    keys, never a bucket dict of every row. A bucket of up to ``ALL_PAIRS_BUCKET`` texts
    proposes every pair in it; a bigger one (many copies of one text) links each member
    to the bucket's first only, so candidates grow linearly with rows, not with the
    square of a cluster's size (the rest of the cluster is near through that first member).
    Candidates whose signatures agree on a share of bins ``SURE_MARGIN`` or more above
    or below the threshold (about 3 standard errors of the estimate at 64 bins near
    0.8) are decided by that estimate, which is then the pair's reported score; the rest
    by the exact Jaccard of their shingle sets, computed for those pairs only and not
    kept (a cache of every candidate's shingle set took 10 GB at 200k IMDB rows).
    """
    n = len(signatures)
    none = (np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))
    if n < 2:
        return (*none, 0)
    bands, rows = lsh_shape(threshold)
    candidates = np.empty(0, np.int64)  # i * n + j: sorted, as the (i, j) pairs
    skipped = 0
    for band in range(bands):
        keys = np.ascontiguousarray(signatures[:, band * rows : (band + 1) * rows]).view(f"V{4 * rows}").ravel()
        first, second, band_skipped = _band_candidates(keys)
        skipped += band_skipped
        if len(first):  # merged band by band: memory is the distinct candidates, not every band's
            candidates = np.union1d(candidates, first * n + second)
    if not len(candidates):
        return (*none, skipped)
    first, second = candidates // n, candidates % n
    del candidates
    estimate = np.empty(len(first))
    for lo in range(0, len(first), 100_000):  # bounded: one block of signature pairs at a time
        i, j = first[lo : lo + 100_000], second[lo : lo + 100_000]
        estimate[lo : lo + len(i)] = (signatures[i] == signatures[j]).mean(axis=1)
    score = np.where(estimate >= threshold + SURE_MARGIN, estimate, np.nan)
    unsure = np.flatnonzero((estimate > threshold - SURE_MARGIN) & (estimate < threshold + SURE_MARGIN))
    shingled = functools.lru_cache(maxsize=4096)(lambda i: shingles(text_of(i)))
    for at in unsure.tolist():
        exact = jaccard(shingled(int(first[at])), shingled(int(second[at])))
        if exact >= threshold:
            score[at] = exact
    keep = ~np.isnan(score)
    return first[keep], second[keep], score[keep], skipped


def _finding(code: str, severity: str, message: str, *, split: str = "", count: int = 0, examples=()) -> Finding:
    return Finding(code, severity, message, split, int(count), tuple(str(e) for e in list(examples)[:MAX_EXAMPLES]))


def _schema_findings(name: str, frame: pd.DataFrame, k: int) -> list[Finding]:
    missing = [c for c in ("id", "text", "label") if c not in frame.columns]
    if missing:
        return [_finding("schema", "error", f"missing canonical column(s) {missing}", split=name)]
    out = []
    ids = frame["id"].astype(str)
    repeated = ids[ids.duplicated()]
    if len(repeated):
        out.append(_finding("duplicate_ids", "error", f"{len(repeated)} repeated id(s)", split=name,
                            count=len(repeated), examples=repeated))
    texts = frame["text"]
    null = texts.isna()
    if null.any():
        out.append(_finding("null_texts", "error", f"{int(null.sum())} null text(s)", split=name,
                            count=int(null.sum()), examples=ids[null]))
    # a string dtype holds only str (or missing): no Python call per row
    not_text = (pd.Series(False, index=texts.index) if isinstance(texts.dtype, pd.StringDtype)
                else ~null & ~texts.map(lambda t: isinstance(t, str)))
    if not_text.any():
        out.append(_finding("text_type", "error", f"{int(not_text.sum())} text(s) are not strings", split=name,
                            count=int(not_text.sum()), examples=ids[not_text]))
    labels = pd.to_numeric(frame["label"], errors="coerce")
    bad = labels.isna() | (labels != labels.round()) | (labels < -1) | (labels >= k)
    if bad.any():
        out.append(_finding("unknown_labels", "error",
                            f"{int(bad.sum())} label(s) are not a class index 0..{k - 1} (or -1 for none): "
                            f"{sorted(map(str, frame['label'][bad].unique()))[:MAX_EXAMPLES]}",
                            split=name, count=int(bad.sum()), examples=ids[bad]))
    return out


#: rows normalized at a time by ``verify_splits``: only this many normalized texts are ever held
VERIFY_CHUNK_ROWS = 20_000


@dataclass(frozen=True)
class TextKeys:
    """What verification keeps of the texts, a fixed size per row: each row's distinct
    normalized text, and each distinct text's MinHash signature and first row.

    ``text_id``: split -> (rows,) int64, the index of the row's normalized text among the
    distinct non-empty ones in order of first occurrence (train, then dev, then test), -1
    for an empty text. Texts are told apart by a 128-bit BLAKE2b digest of the normalized
    text (a false match between two texts has probability ~n^2 / 2^129).
    ``signatures``: (distinct, ``N_HASHES``) uint32, or None when not computed.
    ``first_split``, ``first_row``: (distinct,) where each distinct text first occurs."""

    text_id: dict
    signatures: np.ndarray | None
    first_split: np.ndarray
    first_row: np.ndarray

    @property
    def n_distinct(self) -> int:
        return len(self.first_row)


def text_keys(splits: Splits, *, max_signed: int = 0, chunk_rows: int = 0) -> TextKeys:
    """One pass over every split's texts, ``chunk_rows`` (default ``VERIFY_CHUNK_ROWS``)
    at a time: normalize (``normalize_text``), key and, for each text not seen before,
    sign. Memory: the keys of the distinct texts, the signatures (256 bytes a distinct
    text) and one chunk's normalized texts. Signatures are dropped (None) once the distinct
    texts exceed ``max_signed`` (0: no limit)."""
    chunk_rows = chunk_rows or VERIFY_CHUNK_ROWS
    seen: dict[bytes, int] = {}
    text_id: dict[str, np.ndarray] = {}
    signed: list[np.ndarray] | None = []
    first_split: list[int] = []
    first_row: list[int] = []
    for s, name in enumerate(SPLIT_NAMES):
        texts = getattr(splits, name)["text"]
        ids = np.empty(len(texts), dtype=np.int64)
        for lo in range(0, len(texts), chunk_rows):
            fresh = []
            for pos, text in enumerate(texts.iloc[lo : lo + chunk_rows].tolist(), start=lo):
                norm = normalize_text(text)
                if not norm:
                    ids[pos] = -1
                    continue
                key = hashlib.blake2b(norm.encode("utf-8", "surrogatepass"), digest_size=16).digest()
                got = seen.setdefault(key, len(seen))
                ids[pos] = got
                if got == len(first_row):
                    first_split.append(s)
                    first_row.append(pos)
                    fresh.append(norm)
            if signed is not None and max_signed and len(seen) > max_signed:
                signed = None  # the search will be skipped: stop paying for it
            if signed is not None and fresh:
                signed.append(minhash_signatures(fresh))
        text_id[name] = ids
    signatures = None
    if signed is not None:
        signatures = np.concatenate(signed) if signed else np.empty((0, N_HASHES), dtype=np.uint32)
    return TextKeys(text_id, signatures, np.array(first_split, dtype=np.int8), np.array(first_row, dtype=np.int64))


def _duplicate_findings(name: str, frame: pd.DataFrame, text_id: np.ndarray, config: VerifyConfig,
                        classes: Sequence[str], stats: dict) -> list[Finding]:
    out = []
    ids = frame["id"].astype(str)
    keys = pd.Series(text_id, index=frame.index)
    empty = keys < 0
    stats[f"{name}_empty"] = int(empty.sum())
    if empty.any():
        share = float(empty.mean())
        severity = "error" if share > config.max_empty_share else "warning"
        out.append(_finding("empty_texts", severity, f"{int(empty.sum())} empty or whitespace-only text(s) ({share:.1%})",
                            split=name, count=int(empty.sum()), examples=ids[empty]))
    dup = keys.duplicated() & ~empty
    stats[f"{name}_exact_duplicates"] = int(dup.sum())
    if dup.any():
        out.append(_finding("exact_duplicates", "warning",
                            f"{int(dup.sum())} row(s) repeat an earlier text (after normalization)",
                            split=name, count=int(dup.sum()), examples=ids[dup]))
    gold = frame["label"].to_numpy() >= 0
    labelled = pd.DataFrame({"key": keys[gold], "label": frame["label"][gold]})  # -1: the empty text
    n_labels = labelled.groupby("key")["label"].nunique()
    conflicting = n_labels[n_labels > 1].index
    if len(conflicting):
        rows = ids[gold][labelled["key"].isin(conflicting).to_numpy()]
        out.append(_finding("conflicting_labels", "warning",
                            f"{len(conflicting)} text(s) carry different gold labels ({', '.join(classes)})",
                            split=name, count=len(conflicting), examples=rows))
    return out


def _near_findings(splits: Splits, keys: TextKeys, config: VerifyConfig, stats: dict,
                   leaked_ids: set | None = None) -> list[Finding]:
    """Near duplicates within each split, and test rows near a train or dev row (leakage),
    whose ids are added to ``leaked_ids``."""
    row_ids = {name: getattr(splits, name)["id"].astype(str).to_numpy(dtype=object) for name in SPLIT_NAMES}
    # the rows of each distinct text, split by split in row order: distinct text d's rows
    # are (owner_split, owner_row)[owner_start[d] : owner_start[d + 1]]
    all_ids = np.concatenate([keys.text_id[name] for name in SPLIT_NAMES])
    split_of = np.repeat(np.arange(len(SPLIT_NAMES), dtype=np.int8), [len(keys.text_id[n]) for n in SPLIT_NAMES])
    row_of = np.concatenate([np.arange(len(keys.text_id[n]), dtype=np.int64) for n in SPLIT_NAMES])
    present = np.flatnonzero(all_ids >= 0)
    order = present[np.argsort(all_ids[present], kind="stable")]
    owner_split, owner_row = split_of[order], row_of[order]
    owner_start = np.searchsorted(all_ids[order], np.arange(keys.n_distinct + 1))
    del all_ids, split_of, row_of, present, order

    def owners(d: int) -> list[tuple[str, str]]:
        at = slice(owner_start[d], owner_start[d + 1])
        return [(SPLIT_NAMES[s], row_ids[SPLIT_NAMES[s]][r]) for s, r in zip(owner_split[at].tolist(), owner_row[at].tolist())]

    out: list[Finding] = []
    first = second = score = np.empty(0)
    if keys.signatures is None:
        stats["near_duplicates_skipped"] = True
        out.append(_finding("near_duplicates_skipped", "warning",
                            f"{keys.n_distinct} distinct texts exceed verify.max_near_duplicate_rows "
                            f"({config.max_near_duplicate_rows}); near duplicates were not searched"))
    else:
        def text_of(d: int) -> str:
            return normalize_text(getattr(splits, SPLIT_NAMES[keys.first_split[d]])["text"].iloc[int(keys.first_row[d])])

        first, second, score, skipped = near_pairs_from_signatures(keys.signatures, config.near_duplicate_jaccard, text_of)
        stats["lsh_buckets_skipped"] = skipped
    within: dict[str, int] = dict.fromkeys(SPLIT_NAMES, 0)
    within_examples: dict[str, list[str]] = {name: [] for name in SPLIT_NAMES}
    near_leak: dict[str, dict[str, str]] = {"train": {}, "dev": {}}
    single = np.diff(owner_start) == 1
    test_split = SPLIT_NAMES.index("test")
    for i, j, pair_score in zip(first.tolist(), second.tolist(), score.tolist()):
        if single[i] and single[j]:  # the common case, without building owner lists
            s1, s2 = int(owner_split[owner_start[i]]), int(owner_split[owner_start[j]])
            if s1 == s2:
                name = SPLIT_NAMES[s1]
                within[name] += 1
                if len(within_examples[name]) < MAX_EXAMPLES:
                    within_examples[name].append(f"{row_ids[name][owner_row[owner_start[i]]]} ~ "
                                                 f"{row_ids[name][owner_row[owner_start[j]]]} ({round(pair_score, 4):.2f})")
                continue
            if test_split not in (s1, s2):
                continue
        for s1, id1 in owners(i):
            for s2, id2 in owners(j):
                if s1 == s2:
                    within[s1] += 1
                    if len(within_examples[s1]) < MAX_EXAMPLES:
                        within_examples[s1].append(f"{id1} ~ {id2} ({round(pair_score, 4):.2f})")
                elif "test" in (s1, s2) and {s1, s2} != {"test"}:
                    other, test_id, other_id = (s2, id1, id2) if s1 == "test" else (s1, id2, id1)
                    near_leak[other].setdefault(test_id, other_id)
    for name in SPLIT_NAMES:
        stats[f"{name}_near_duplicate_pairs"] = within[name]
        if within[name]:
            out.append(_finding("near_duplicates", "warning",
                                f"{within[name]} row pair(s) with different texts of character 5-gram Jaccard >= "
                                f"{config.near_duplicate_jaccard}", split=name, count=within[name],
                                examples=within_examples[name]))
    n_test = len(set(row_ids["test"]))
    test_keys = keys.text_id["test"]
    for other in ("train", "dev"):
        # each distinct text's first row in ``other``; test rows in the order of their text's first
        # occurrence, then their own: the first test row of each id takes its text's first other row
        first_other = np.full(keys.n_distinct + 1, -1, dtype=np.int64)
        other_keys = keys.text_id[other]
        present = np.flatnonzero(other_keys >= 0)
        distinct, first_at = np.unique(other_keys[present], return_index=True)
        first_other[distinct] = present[first_at]
        matched = np.flatnonzero(first_other[test_keys] >= 0)  # an empty text (-1) reads the padding, -1
        matched = matched[np.argsort(test_keys[matched], kind="stable")]
        exact: dict[str, str] = {}
        for t, o in zip(row_ids["test"][matched].tolist(), row_ids[other][first_other[test_keys[matched]]].tolist()):
            exact.setdefault(t, o)
        near = {t: o for t, o in near_leak[other].items() if t not in exact}
        leaked = len(exact) + len(near)
        if leaked_ids is not None:
            leaked_ids.update(exact, near)
        stats[f"{other}_test_leakage_exact"] = len(exact)
        stats[f"{other}_test_leakage_near"] = len(near)
        if leaked:
            share = leaked / max(n_test, 1)
            pairs_text = [f"{t} = {o}" for t, o in list(exact.items())[:MAX_EXAMPLES]]
            pairs_text += [f"{t} ~ {o}" for t, o in list(near.items())[: MAX_EXAMPLES - len(pairs_text)]]
            out.append(_finding(f"{other}_test_leakage", "warning",
                                f"{leaked} test row(s) ({share:.1%}) have a duplicate in {other}: "
                                f"{len(exact)} exact, {len(near)} near (Jaccard >= {config.near_duplicate_jaccard})",
                                split="test", count=leaked, examples=pairs_text))
    return out


def _class_findings(splits: Splits, config: VerifyConfig) -> tuple[dict, list[Finding]]:
    counts, out = {}, []
    for name in SPLIT_NAMES:
        labels = getattr(splits, name)["label"].to_numpy()
        gold = labels[labels >= 0]
        per_class = {c: int((gold == i).sum()) for i, c in enumerate(splits.classes)}
        counts[name] = {**per_class, "unlabelled": int((labels < 0).sum())}
        if not len(gold):
            continue
        missing = [c for c, n in per_class.items() if n == 0]
        if missing and name != "train":
            out.append(_finding("missing_class", "warning", f"no gold rows of class(es) {missing}", split=name))
        rare = {c: n / len(gold) for c, n in per_class.items() if 0 < n / len(gold) < config.min_class_share}
        if rare:
            shares = ", ".join(f"{c} {s:.1%}" for c, s in rare.items())
            out.append(_finding("class_imbalance", "warning",
                                f"gold class share below {config.min_class_share:.0%}: {shares}", split=name))
    return counts, out


def _drift_findings(splits: Splits, config: VerifyConfig, stats: dict, chunk_rows: int) -> list[Finding]:
    """Split drift: one warning per pair of splits with a significant, large enough difference."""
    profiles = {name: profile_texts(getattr(splits, name)["text"], chunk_rows=chunk_rows or VERIFY_CHUNK_ROWS)
                for name in SPLIT_NAMES}
    differences = split_differences(profiles, min_effect=config.drift_min_effect)
    found = [d for d in differences if d.p_adjusted < config.drift_alpha and d.effect >= config.drift_min_effect]
    stats["split_drift"] = [{"splits": f"{d.split_a}/{d.split_b}", "feature": d.feature, "effect": round(d.effect, 4),
                             "p_adjusted": d.p_adjusted} for d in found]
    out = []
    for a, b in dict.fromkeys((d.split_a, d.split_b) for d in found):
        pair = [d for d in found if (d.split_a, d.split_b) == (a, b)]
        best = pair[0]  # the largest effect (split_differences sorts them)
        frame = getattr(splits, best.split)
        shows = matches(best)
        rows = []
        for lo in range(0, len(frame), 1000):  # stops at the first examples
            part = frame.iloc[lo : lo + 1000]
            rows += [i for i, t in zip(part["id"].astype(str), part["text"].tolist()) if shows(t)][:MAX_EXAMPLES]
            if len(rows) >= MAX_EXAMPLES:
                break
        example = ""
        if rows:
            text = str(frame["text"].iloc[int(np.flatnonzero(frame["id"].astype(str).to_numpy() == rows[0])[0])])
            example = f" (e.g. {text[:80] + ('...' if len(text) > 80 else '')!r})"
        detail = [f"{best.description}{example} ({best.feature}: effect {best.effect:.2f}, "
                  f"{format_p(best.p_adjusted)} Holm-adjusted)"]
        detail += [f"{d.description} ({d.feature}: effect {d.effect:.2f}, {format_p(d.p_adjusted)})"
                   for d in pair[1:3]]
        others = ", ".join(f"{d.feature} {d.effect:.2f}" for d in pair[3:])
        message = f"{b} vs {a}: " + "; ".join(detail) + (f"; also {others}" if others else "")
        out.append(_finding("split_drift", "warning", message, split=b, count=len(pair), examples=rows))
    return out


def verify_splits(splits: Splits, config: VerifyConfig | None = None, *, chunk_rows: int = 0) -> VerificationReport:
    """Check canonical splits; pure (reads nothing, writes nothing).

    The texts are normalized ``chunk_rows`` (default ``VERIFY_CHUNK_ROWS``) at a time
    (``text_keys``): memory is a few numbers per row and a signature per distinct text,
    not a copy of the texts. The report does not depend on ``chunk_rows``."""
    config = config or VerifyConfig()
    k = len(splits.classes)
    findings: list[Finding] = []
    for name in SPLIT_NAMES:
        findings += _schema_findings(name, getattr(splits, name), k)
    rows = splits.sizes()
    if any(f.code in ("schema", "null_texts", "text_type") for f in findings):
        # Text checks need text; report what is known.
        return VerificationReport(splits.source, "", rows, {}, tuple(findings))
    stats: dict = {}
    keys = text_keys(splits, max_signed=config.max_near_duplicate_rows, chunk_rows=chunk_rows)
    for name in SPLIT_NAMES:
        findings += _duplicate_findings(name, getattr(splits, name), keys.text_id[name], config, splits.classes, stats)
    leaked: set[str] = set()
    findings += _near_findings(splits, keys, config, stats, leaked)
    class_counts, class_findings = _class_findings(splits, config)
    findings += class_findings
    findings += _drift_findings(splits, config, stats, chunk_rows)
    fatal = set(config.fail_on)
    findings = [Finding(**{**asdict(f), "severity": "error"}) if f.code in fatal else f for f in findings]
    try:
        version = splits.version
    except (KeyError, ValueError, TypeError):
        version = ""
    return VerificationReport(splits.source, version, rows, class_counts, tuple(findings), stats, frozenset(leaked))


def raise_on_errors(report: VerificationReport) -> VerificationReport:
    """Stop the run (``VerificationError``) when the report has a fatal finding."""
    if report.errors:
        first = report.errors[0]
        where = f" in {first.split}" if first.split else ""
        example = f" (e.g. row {first.examples[0]!r})" if first.examples else ""
        more = f"; {len(report.errors) - 1} more error(s)" if len(report.errors) > 1 else ""
        raise VerificationError(f"{report.source}: {first.code}{where}: {first.message}{example}{more}", report)
    return report


def unknown_label_names(values: pd.Series, classes: Sequence[str]) -> dict[str, int]:
    """Raw gold-label values that are neither a class name nor a class index, with counts."""
    known = set(classes) | {str(i) for i in range(len(classes))}
    present = values.dropna().map(lambda v: str(v).strip())
    present = present[present != ""]
    counts = present[~present.isin(known) & ~present.map(lambda v: _as_index(v, len(classes)))].value_counts()
    return {str(k): int(v) for k, v in counts.items()}


def _as_index(value: str, k: int) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    return number.is_integer() and 0 <= number < k


def verify_dataset(config) -> VerificationReport:
    """The ``verify`` command: check the project's dataset as loaded for a run.

    A file's raw label column is checked first, so every label name missing
    from the config is listed (loading stops at the first one).
    """
    from .datasets import load_dataset, read_table

    ds = config.dataset
    if ds.source == "file" and ds.label_field and ds.path:
        path = config.resolve(ds.path)
        raw = read_table(path, format=ds.format, delimiter=ds.delimiter, columns=ds.columns, quoted=ds.quoted)
        if ds.label_field in raw.columns:
            unknown = unknown_label_names(raw[ds.label_field], config.classes)
            if unknown:
                listing = ", ".join(f"{name!r} ({n} rows)" for name, n in unknown.items())
                finding = _finding("unknown_labels", "error",
                                   f"label(s) not among the project's classes {list(config.classes)}: {listing}",
                                   count=sum(unknown.values()), examples=list(unknown))
                return VerificationReport(str(path), "", {"raw": len(raw)}, {}, (finding,))
    return verify_splits(load_dataset(config), config.verify)
