"""Verification at ingestion: small frames for each check, the real YouTube split for leakage."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from labeling import load_config, run_retrain
from labeling.config import VerifyConfig
from labeling.data.datasets import Splits
from labeling.errors import LabelError, VerificationError
from labeling.pipeline.store import RunStore
from labeling.data.verify import (
    jaccard,
    near_duplicate_pairs,
    normalize_text,
    raise_on_errors,
    shingles,
    verify_dataset,
    verify_splits,
)

from ..conftest import FIXTURES, write_project

CLASSES = ("ham", "spam")


def _frame(rows, prefix):
    return pd.DataFrame([{"id": f"{prefix}{i}", "text": t, "label": y} for i, (t, y) in enumerate(rows)])


def _splits(train, dev, test):
    return Splits(train=_frame(train, "tr"), dev=_frame(dev, "dv"), test=_frame(test, "te"), classes=CLASSES, source="unit")


TRAIN = [("check out my channel now", 1), ("love this song so much", 0), ("subscribe to me please", 1),
         ("this video is great", 0), ("best song of the year", 0), ("free gift cards here", 1)]
DEV = [("what a voice she has", 0), ("visit my page for prizes", 1)]
TEST = [("i really like the chorus", 0), ("win money at my site", 1)]


def _codes(report):
    return {(f.code, f.split): f for f in report.findings}


def test_clean_data_has_no_findings():
    report = verify_splits(_splits(TRAIN, DEV, TEST))
    assert report.ok and report.findings == ()
    assert report.class_counts["train"] == {"ham": 3, "spam": 3, "unlabelled": 0}


def test_exact_and_near_duplicates_and_conflicting_labels():
    train = TRAIN + [("Check out  my CHANNEL now\ufeff", 0),  # exact after normalization, other label
                     ("check out my channel now!!", 1)]  # near duplicate
    found = _codes(verify_splits(_splits(train, DEV, TEST)))
    assert found[("exact_duplicates", "train")].count == 1
    assert found[("exact_duplicates", "train")].examples == ("tr6",)
    assert found[("conflicting_labels", "train")].count == 1
    near = found[("near_duplicates", "train")]
    assert near.count >= 1 and any("tr7" in e for e in near.examples)


def test_train_test_leakage_is_reported_exact_and_near():
    test = TEST + [("LOVE this song so much", 0), ("subscribe to me please!!", 1)]
    report = verify_splits(_splits(TRAIN, DEV, test))
    leak = _codes(report)[("train_test_leakage", "test")]
    assert leak.severity == "warning" and leak.count == 2
    assert report.stats["train_test_leakage_exact"] == 1 and report.stats["train_test_leakage_near"] == 1
    assert "te2 = tr1" in leak.examples


def test_leakage_can_be_made_fatal_and_stops_before_writing():
    test = TEST + [("love this song so much", 0)]
    report = verify_splits(_splits(TRAIN, DEV, test), VerifyConfig(fail_on=("train_test_leakage",)))
    with pytest.raises(VerificationError, match="train_test_leakage in test.*te2"):
        raise_on_errors(report)


@pytest.mark.parametrize(
    "mutate, code",
    [
        (lambda f: f.assign(text=[None] + f["text"].tolist()[1:]), "null_texts"),
        (lambda f: f.assign(text=[3.5] + f["text"].tolist()[1:]), "text_type"),
        (lambda f: f.assign(id=["x"] * len(f)), "duplicate_ids"),
        (lambda f: f.assign(label=[7] + f["label"].tolist()[1:]), "unknown_labels"),
        (lambda f: f.drop(columns="text"), "schema"),
        (lambda f: f.assign(text=[" "] * 4 + f["text"].tolist()[4:]), "empty_texts"),
    ],
    ids=["null", "not-text", "repeated-ids", "label-out-of-range", "missing-column", "mostly-empty"],
)
def test_fatal_problems_raise_with_the_row(mutate, code):
    splits = _splits(TRAIN, DEV, TEST)
    broken = Splits(train=mutate(splits.train), dev=splits.dev, test=splits.test, classes=CLASSES, source="unit")
    report = verify_splits(broken)
    assert code in {f.code for f in report.errors}
    with pytest.raises(VerificationError, match=code):
        raise_on_errors(report)


def test_few_empty_texts_and_rare_classes_are_warnings():
    train = TRAIN + [("   ", 0)]
    test = [("i like it", 0)] * 1 + [(f"great tune number {i}", 0) for i in range(12)] + [("buy now", 1)]
    report = verify_splits(_splits(train, DEV, test))
    found = _codes(report)
    assert report.ok
    assert found[("empty_texts", "train")].severity == "warning"
    assert "spam 7.1%" in found[("class_imbalance", "test")].message


def test_missing_class_in_test_is_reported():
    found = _codes(verify_splits(_splits(TRAIN, DEV, [("nice", 0), ("good song", 0)])))
    assert "spam" in found[("missing_class", "test")].message


def _csv_project(tmp_path, rows, dataset_extra: str = ""):
    """A ham/spam project over ``rows`` (text, label) written as a user's CSV file."""
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(tmp_path / "data.csv", index=False)
    return load_config(write_project(tmp_path, f"""
[project]
name = "verify"
classes = ["ham", "spam"]
[dataset]
path = "data.csv"
label_field = "label"
{dataset_extra}[lfs]
modules = ["lf_modules.broken"]
root = "{FIXTURES}"
"""))


def test_verify_dataset_lists_every_unknown_label_name(tmp_path):
    rows = [[f"text {i}", ["ham", "spam", "eggs", "Spam!"][i % 4]] for i in range(12)]
    config = _csv_project(tmp_path, rows)
    report = verify_dataset(config)
    assert not report.ok
    finding = report.errors[0]
    assert finding.code == "unknown_labels" and finding.count == 6
    assert "'eggs' (3 rows)" in finding.message and "'Spam!' (3 rows)" in finding.message
    with pytest.raises(LabelError):  # loading for a run stops at the first one, naming the row
        run_retrain(config)


def test_retrain_stops_on_fatal_findings_and_writes_nothing(tmp_path):
    rows = [[f"check this {i} out", "spam" if i % 2 else "ham"] for i in range(12)] + [["   ", "ham"]] * 20
    config = _csv_project(tmp_path, rows, "dev_size = 0.2\ntest_size = 0.2\n")
    with pytest.raises(VerificationError, match="empty_texts"):
        run_retrain(config)
    store = config.resolve(config.store)
    assert not store.exists() or RunStore(store).count_runs() == 0
    assert not config.resolve(config.artifacts).exists()


def test_youtube_tutorial_split_leaks_comments_from_train_into_test(youtube_splits):
    report = verify_splits(youtube_splits)
    assert report.ok
    leak = _codes(report)[("train_test_leakage", "test")]
    # Measured: 30 test comments repeat a train comment exactly, 6 more nearly (Jaccard >= 0.8).
    assert report.stats["train_test_leakage_exact"] == 30 and report.stats["train_test_leakage_near"] == 6
    assert leak.count == 36 and "9.7%" in leak.message
    assert report.class_counts["test"] == {"ham": 196, "spam": 174, "unlabelled": 0}
    assert report.to_dict() == type(report).from_dict(report.to_dict()).to_dict()


def test_normalization_ignores_case_width_and_invisible_characters():
    assert normalize_text("  Ｈello\ufeff  WORLD ") == normalize_text("hello world")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.text(alphabet="abcde ", min_size=0, max_size=30), min_size=0, max_size=25),
       st.floats(min_value=0.3, max_value=1.0))
def test_near_duplicate_pairs_are_confirmed_by_exact_jaccard(texts, threshold):
    pairs, _ = near_duplicate_pairs(texts, threshold)
    for i, j, score in pairs:
        assert i < j and score >= threshold - 1e-4
        assert abs(jaccard(shingles(texts[i]), shingles(texts[j])) - score) < 1e-4


def test_verify_command_prints_the_youtube_report(youtube_config_path, capsys):
    import json

    from labeling.cli import main

    assert main(["verify", "--config", str(youtube_config_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert {f["code"] for f in report["findings"]} >= {"train_test_leakage", "exact_duplicates"}
    assert report["rows"] == {"train": 1586, "dev": 100, "test": 370}


def test_near_duplicates_are_searched_on_every_row_above_the_old_20000_cap():
    from labeling.config import VerifyConfig
    from labeling.data.verify import minhash_signatures

    rng = np.random.default_rng(0)
    letters = rng.integers(ord("a"), ord("z") + 1, (21_000, 60), dtype=np.uint8)
    texts = [row.tobytes().decode() for row in letters]
    texts[20_999] = texts[3][:-2] + "!!"  # near copy of row 3, far apart in the list
    assert VerifyConfig().max_near_duplicate_rows == 0  # no cap by default
    pairs, _ = near_duplicate_pairs(texts, 0.8)
    assert (3, 20_999) in {(i, j) for i, j, _ in pairs}
    # batches are an implementation detail: any batch size gives the same signatures
    np.testing.assert_array_equal(minhash_signatures(texts[:500], batch_chars=1_000), minhash_signatures(texts[:500]))


def test_a_cluster_of_many_copies_is_linked_through_its_first_member_not_every_pair():
    from labeling.data.verify import ALL_PAIRS_BUCKET, near_duplicate_pairs

    base = ("a long review of a film that drags on and on about the plot, the actors, the score, "
            "the camera work and the ending, which nobody asked for ")
    copies = [base + f"copy{c}" for c in range(40)]  # Jaccard ~0.95 with each other
    pairs, skipped = near_duplicate_pairs(copies + ["something else entirely, nothing alike"], 0.8)
    assert skipped == 0 and 40 > ALL_PAIRS_BUCKET
    linked = {i for p in pairs for i in p[:2]}
    assert linked == set(range(40))  # every copy found, the odd text not
    assert len(pairs) < 40 * 39 // 2  # not the square of the cluster
    assert all(score >= 0.8 for _, _, score in pairs)
    # leakage through the cluster: a test copy is flagged even when its bucket's first member is a train row
    train = [(t, 0) for t in copies[:39]]
    report = verify_splits(_splits(train, DEV, [(copies[39], 0)] + TEST))
    assert report.leaked_test_ids == {"te0"}


# --------------------------------------------------------------------------- chunked verification (issue 15)

# few words: texts repeat exactly, nearly (one word apart), after normalization (case, spaces) and as empty
_WORDS = ["great film", "awful plot", "GREAT  film", "the actors shine", "", " ", "a slow dull ending", "loved it"]
_text = st.lists(st.sampled_from(_WORDS), min_size=1, max_size=4).map(" ".join)


def _rows(label_values):
    return st.lists(st.tuples(_text, st.sampled_from(label_values)), min_size=1, max_size=14)


@settings(max_examples=30, deadline=None, derandomize=True)
@given(_rows([-1, 0, 1]), _rows([0, 1]), _rows([0, 1]), st.sampled_from([1, 2, 3, 5]), st.sampled_from([0, 4]))
def test_chunked_verification_equals_the_one_chunk_result(train, dev, test, chunk_rows, cap):
    splits = _splits(train, dev, test)
    config = VerifyConfig(max_near_duplicate_rows=cap, max_empty_share=1.0)
    whole = verify_splits(splits, config, chunk_rows=10_000)
    chunked = verify_splits(splits, config, chunk_rows=chunk_rows)
    assert chunked == whole and chunked.leaked_test_ids == whole.leaked_test_ids


def _whole_column_exact_findings(splits: Splits) -> dict:
    """The exact-duplicate, conflict and exact-leakage answers off a Series of normalized
    texts per split (the whole-column computation verification used to do)."""
    norms = {n: getattr(splits, n)["text"].map(normalize_text) for n in ("train", "dev", "test")}
    out = {}
    for name, norm in norms.items():
        frame = getattr(splits, name)
        dup = norm.duplicated() & (norm != "")
        out[name] = (int(dup.sum()), tuple(frame["id"][dup][:5]))
        gold = frame["label"] >= 0
        n_labels = pd.DataFrame({"n": norm[gold], "y": frame["label"][gold]}).groupby("n")["y"].nunique()
        out[f"{name}_conflicts"] = int((n_labels > 1).sum())
    for other in ("train", "dev"):
        first = {}
        for t, i in zip(norms[other], getattr(splits, other)["id"]):
            first.setdefault(t, i)
        order = sorted(range(len(norms["test"])), key=lambda r: list(dict.fromkeys(
            [t for n in ("train", "dev", "test") for t in norms[n] if t])).index(norms["test"][r])
            if norms["test"][r] else -1)
        exact = {}
        for r in order:
            t = norms["test"][r]
            if t and t in first:
                exact.setdefault(splits.test["id"][r], first[t])
        out[f"{other}_leak"] = exact
    return out


@settings(max_examples=30, deadline=None, derandomize=True)
@given(_rows([-1, 0, 1]), _rows([0, 1]), _rows([0, 1]))
def test_keyed_exact_checks_equal_the_normalized_text_column(train, dev, test):
    splits = _splits(train, dev, test)
    report = verify_splits(splits, VerifyConfig(max_empty_share=1.0), chunk_rows=2)
    expected = _whole_column_exact_findings(splits)
    found = _codes(report)
    for name in ("train", "dev", "test"):
        count, examples = expected[name]
        assert report.stats[f"{name}_exact_duplicates"] == count
        if count:
            assert found[("exact_duplicates", name)].examples == examples
        conflicts = found.get(("conflicting_labels", name))
        assert (conflicts.count if conflicts else 0) == expected[f"{name}_conflicts"]
    for other in ("train", "dev"):
        exact = expected[f"{other}_leak"]
        assert report.stats[f"{other}_test_leakage_exact"] == len(exact)
        if exact:
            examples = found[(f"{other}_test_leakage", "test")].examples
            assert examples[: len(exact)] == tuple(f"{t} = {o}" for t, o in list(exact.items())[:5])


def _bucket_loop_candidates(signatures: np.ndarray, threshold: float) -> tuple[set, int]:
    """LSH candidate pairs enumerated bucket by bucket in Python (the reference)."""
    from labeling.data.verify import ALL_PAIRS_BUCKET, MAX_BUCKET, lsh_shape

    bands, rows = lsh_shape(threshold)
    candidates, skipped = set(), 0
    for band in range(bands):
        buckets: dict = {}
        for i, key in enumerate(map(bytes, signatures[:, band * rows : (band + 1) * rows])):
            buckets.setdefault(key, []).append(i)
        for members in buckets.values():
            if len(members) > MAX_BUCKET:
                skipped += 1
            elif len(members) > ALL_PAIRS_BUCKET:
                candidates.update((members[0], y) for y in members[1:])
            else:
                candidates.update((x, y) for n, x in enumerate(members) for y in members[n + 1 :])
    return candidates, skipped


@pytest.mark.parametrize("cluster", [2, 5, 8, 9, 40, 201])
def test_vectorized_lsh_buckets_propose_the_bucket_loops_pairs(cluster):
    from labeling.data.verify import N_HASHES, SURE_MARGIN, near_pairs_from_signatures

    rng = np.random.default_rng(cluster)
    signatures = rng.integers(0, 2**32, (300, N_HASHES), dtype=np.uint32)
    rows = rng.choice(300, cluster, replace=False) if cluster < 300 else np.arange(300)
    signatures[rows[1:]] = signatures[rows[0]]  # a cluster of identical signatures
    signatures[rows[1], : N_HASHES // 4] ^= 1  # and one member that differs on a quarter of the bins
    expected, skipped = _bucket_loop_candidates(signatures, 0.8)
    # every text reads as "" (Jaccard 1 with any other): a candidate is kept iff its estimate
    # is not surely below the threshold, so the pairs kept are the candidates, so filtered
    first, second, score, got_skipped = near_pairs_from_signatures(signatures, 0.8, lambda i: "")
    pairs = list(zip(first.tolist(), second.tolist()))
    assert got_skipped == skipped
    assert pairs == sorted(p for p in expected if (signatures[p[0]] == signatures[p[1]]).mean() > 0.8 - SURE_MARGIN)
    assert pairs and all(s >= 0.8 for s in score)


# -- split drift ---------------------------------------------------------------------------------

WRENCH_TREC = """
[project]
name = "trec"
classes = ["desc", "enty", "hum", "abbr", "loc", "num"]
[dataset]
source = "wrench"
path = "{path}"
"""


def _drift(report):
    return [f for f in report.findings if f.code == "split_drift"]


def test_wrench_trec_test_prefix_is_found_as_split_drift(data_dir, tmp_path):
    """WRENCH trec's released test split keeps TREC's casing and starts each text with its
    fine gold label; train and dev are lowercased without it. Found with no rule about TREC."""
    path = write_project(tmp_path, WRENCH_TREC.format(path=data_dir / "wrench" / "trec"))
    report = verify_dataset(load_config(path))
    assert report.ok
    by_pair = {f.message.split(":")[0]: f for f in _drift(report)}
    assert set(by_pair) == {"test vs train", "test vs dev"}  # train and dev agree
    found = by_pair["test vs train"]
    assert found.split == "test" and found.severity == "warning"
    # measured: casing 100% vs 0% (effect 1.00), first token 99% vs 0% (0.98), vocabulary, length
    assert "test texts are mixed case, first letter lowercase in 100% of rows, train 0%" in found.message
    first = re.search(r"test texts start with a token from \{([^}]*)\} in (\d+)% of rows, train 0%", found.message)
    assert first and int(first.group(2)) >= 95 and {"def", "ind", "city"} <= set(first.group(1).split(", "))
    assert "'dist How far is it from Denver to Aspen ?'" in found.message
    assert found.examples[:2] == ("test-0", "test-1")
    assert {d["feature"] for d in report.stats["split_drift"]} >= {"casing", "first token"}


def _sentences(n, seed):
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(300)] + ["the", "a", "song", "video", "great", "check", "my", "channel"]
    return [" ".join(rng.choice(words, rng.integers(4, 16))) for _ in range(n)]


@pytest.mark.parametrize("shift, feature", [
    (str.upper, "casing"),
    (lambda t: f"{t} {t} {t}", "length"),
    (lambda t: f"{t} café", "non-ASCII"),
    (lambda t: f"urgent {t}", "first token"),
])
def test_synthetic_drift_in_test_is_found(shift, feature):
    texts = _sentences(1000, 0)
    test = [(shift(t), 0) for t in texts[800:]]
    report = verify_splits(_splits([(t, 0) for t in texts[:700]], [(t, 0) for t in texts[700:800]], test))
    found = [f for f in _drift(report) if f.message.startswith("test vs train")]
    assert found and f"({feature}: effect " in found[0].message, report.format()
    assert not any(f.message.startswith("dev vs train") for f in _drift(report))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_splits_of_the_same_data_show_no_drift(data_dir, seed):
    """Random train/dev/test of one data set (WRENCH trec's train, 5,033 questions; and
    synthetic sentences): no split_drift finding (no false alarm)."""
    from labeling.data.wrench import load_wrench

    for texts in (list(load_wrench(data_dir / "wrench" / "trec").train.texts), _sentences(3000, seed)):
        order = np.random.default_rng(seed).permutation(len(texts))
        rows = [(texts[i], 0) for i in order]
        half, dev = len(rows) // 2, len(rows) // 10
        report = verify_splits(_splits(rows[:half], rows[half : half + dev], rows[half + dev :]))
        assert not _drift(report), report.format()
        assert report.stats["split_drift"] == []


def test_split_drift_needs_both_significance_and_size():
    """Large splits with a small real difference (2% more texts in capitals): significant,
    yet under verify.drift_min_effect, so not reported; with the floor lowered it is."""
    texts = _sentences(20_200, 3)
    test = [(t.upper() if i % 50 == 0 else t, 0) for i, t in enumerate(texts[10_200:])]
    splits = _splits([(t, 0) for t in texts[:10_000]], [(t, 0) for t in texts[10_000:10_200]], test)
    assert not _drift(verify_splits(splits))
    low = verify_splits(splits, VerifyConfig(drift_min_effect=0.01))
    assert any("(casing: effect 0.02" in f.message for f in _drift(low))
