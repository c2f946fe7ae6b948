from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from snorkel.labeling import PandasLFApplier

import labeling.lf.apply as apply_module
from labeling import LFApplicationError, apply_lfs, discover_lfs, labeling_function
from labeling.lf.declarative import keyword_lf, length_lf, lf_spec, regex_lf
from labeling.matrix import label_matrix_hash

from ..conftest import FIXTURES, REPO


@pytest.fixture(scope="module")
def youtube_lfs():
    return discover_lfs(["labeling_functions.youtube_spam"], root=REPO)


@pytest.fixture(scope="module")
def imdb_lfs():
    return discover_lfs(["labeling_functions.imdb_sentiment"], root=REPO)


@pytest.fixture(scope="module")
def imdb_sample(data_dir):
    from labeling.data.datasets import load_imdb

    frame = load_imdb(data_dir)
    # every 25th review: both splits and labels, 200+ with non-ASCII characters
    return frame.iloc[::25].reset_index(drop=True)


@pytest.fixture(scope="module")
def parses(tmp_path_factory):
    """spaCy parses shared by this module's tests (parsing is most of their time)."""
    from labeling.lf.parse_cache import ParseCache

    return ParseCache(tmp_path_factory.mktemp("parses"))


@pytest.fixture
def parallel(monkeypatch):
    """Make the applier use worker processes even for small inputs."""
    monkeypatch.setattr(apply_module, "_MIN_PARALLEL_CELLS", 0)
    monkeypatch.setattr(apply_module, "_MIN_PARALLEL_SCAN", 0)
    from labeling.lf import workers

    monkeypatch.setattr(workers, "CHUNK_ROWS", 64)


def test_matrix_equals_snorkel_pandas_applier_on_youtube(youtube_lfs, youtube_splits, parses):
    # Snorkel parses per row and per spaCy LF (about 60 ms a row here), so compare on 200 real rows.
    frame = youtube_splits.train.iloc[:200]
    ours = apply_lfs(youtube_lfs, frame, cardinality=2, cache=parses)
    theirs = PandasLFApplier(list(youtube_lfs)).apply(frame, progress_bar=False)
    assert ours.L.dtype == np.int64 and ours.L.shape == (200, len(youtube_lfs))
    np.testing.assert_array_equal(ours.L, theirs)
    assert set(ours.seconds_per_lf) == {lf.name for lf in youtube_lfs}
    assert all(s >= 0 or np.isnan(s) for s in ours.seconds_per_lf.values())
    assert ours.rows_computed == {lf.name: 200 for lf in youtube_lfs} and ours.errors == {}


def test_worker_processes_give_the_same_matrix(youtube_lfs, youtube_splits, parses, parallel):
    frame = youtube_splits.train.iloc[:400]
    one = apply_lfs(youtube_lfs, frame, cardinality=2, n_jobs=1, cache=parses)
    two = apply_lfs(youtube_lfs, frame, cardinality=2, n_jobs=2, cache=parses)
    assert label_matrix_hash(one.L) == label_matrix_hash(two.L)


def test_declarative_lfs_equal_snorkel_on_imdb(imdb_lfs, imdb_sample):
    assert all(lf_spec(lf) is not None for lf in imdb_lfs), "the IMDB set is all declarative"
    ours = apply_lfs(imdb_lfs, imdb_sample, cardinality=2)
    theirs = PandasLFApplier(list(imdb_lfs)).apply(imdb_sample, progress_bar=False)
    np.testing.assert_array_equal(ours.L, theirs)
    assert (ours.L != -1).any(axis=0).all(), "every LF votes somewhere in the sample"


def test_precompiled_specs_without_state_checks_give_the_same_votes(imdb_lfs, imdb_sample):
    """What a server passes per request (``serve.votes.lf_votes``): the same matrix."""
    @labeling_function()
    def mentions_actor(x):
        return 1 if "actor" in x.text else -1

    lfs = [*imdb_lfs, mentions_actor]
    specs = apply_module.lf_specs(lfs)
    assert set(specs) >= set(range(len(imdb_lfs)))
    fast = apply_lfs(lfs, imdb_sample, cardinality=2, n_jobs=1, specs=specs, check_state=False)
    np.testing.assert_array_equal(fast.L, apply_lfs(lfs, imdb_sample, cardinality=2, n_jobs=1).L)


def test_declarative_lfs_in_processes_and_mixed_with_plain_lfs(imdb_lfs, imdb_sample, parallel):
    @labeling_function()
    def mentions_actor(x):
        return 1 if "actor" in x.text else -1

    lfs = [*imdb_lfs, mentions_actor]
    ours = apply_lfs(lfs, imdb_sample, cardinality=2, n_jobs=2)
    expected = np.array([[lf(row) for lf in lfs] for row in imdb_sample.itertuples(index=False)])
    np.testing.assert_array_equal(ours.L, expected)


@pytest.mark.parametrize(
    "lf, text",
    [
        (keyword_lf("kw", ["bad"], 0), "Badly made, but not bad at all"),
        (keyword_lf("kw", ["bad"], 0, whole_words=False), "badly"),
        (keyword_lf("kw", ["Bad"], 0, case_sensitive=True), "bad Bad"),
        (regex_lf("re", r"\d{3,}", 1), "call 12345"),
        (length_lf("short", 1, max_words=3), "one two\u00a0three four"),  # NBSP splits words
        (length_lf("chars", 1, min_chars=5), "caf\u00e9s"),
    ],
)
def test_declarative_lf_called_on_a_row_equals_fast_path(lf, text):
    frame = pd.DataFrame({"id": ["a", "b"], "text": [text, "nothing here"]})
    fast = apply_lfs([lf], frame, cardinality=2).L[:, 0]
    assert fast.tolist() == [lf(row) for row in frame.itertuples(index=False)]


def test_declarative_lf_on_non_text_values_fails_like_the_lf():
    lf = keyword_lf("kw", ["x"], 1)
    frame = pd.DataFrame({"id": ["a", "b"], "text": ["x", None]})
    with pytest.raises(LFApplicationError, match="'kw'.*'b'.*TypeError"):
        apply_lfs([lf], frame, cardinality=2)


def test_lf_that_raises_names_lf_and_row():
    lfs = discover_lfs(["lf_modules.broken"], root=FIXTURES)
    frame = pd.DataFrame({"id": ["r1", "r2", "r3"], "text": ["check this out please", "ok", "x"], "label": -1})
    with pytest.raises(LFApplicationError) as info:
        apply_lfs(lfs, frame, cardinality=2)
    assert info.value.lf_name == "lf_divides_by_length"
    assert info.value.row_id == "r3"
    assert "ZeroDivisionError" in str(info.value) and "'r3'" in str(info.value)


def _frame_with_failures(n: int = 300) -> pd.DataFrame:
    # every 7th row is "x" (the fixture LF divides by len - 1 = 0 there)
    texts = ["x" if i % 7 == 3 else f"check row {i}" for i in range(n)]
    return pd.DataFrame({"id": [f"r{i}" for i in range(n)], "text": texts, "label": -1})


def test_first_failure_is_the_same_in_worker_processes(parallel):
    lfs = discover_lfs(["lf_modules.broken"], root=FIXTURES)
    with pytest.raises(LFApplicationError) as info:
        apply_lfs(lfs, _frame_with_failures(), cardinality=2, n_jobs=2)
    assert (info.value.lf_name, info.value.row_id) == ("lf_divides_by_length", "r3")
    assert "ZeroDivisionError" in str(info.value)


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_fault_tolerant_mode_records_errors_apart_from_abstains(n_jobs, parallel):
    lfs = discover_lfs(["lf_modules.broken"], root=FIXTURES)
    frame = _frame_with_failures()
    result = apply_lfs(lfs, frame, cardinality=2, fault_tolerant=True, n_jobs=n_jobs)
    failing = frame["text"].eq("x").to_numpy()
    assert set(result.errors) == {"lf_divides_by_length"}
    errors = result.errors["lf_divides_by_length"]
    assert errors.count == int(failing.sum()) == 43
    assert errors.row_ids == ("r3", "r10", "r17", "r24", "r31")
    assert all(m.startswith("ZeroDivisionError") for m in errors.messages)
    j = [lf.name for lf in lfs].index("lf_divides_by_length")
    assert (result.L[failing, j] == -1).all()
    ok = [lf(row) for row in frame[~failing].itertuples(index=False) for lf in [lfs[j]]]
    assert result.L[~failing, j].tolist() == ok
    others = [k for k in range(len(lfs)) if k != j]
    expected = np.array([[lfs[k](row) for k in others] for row in frame.itertuples(index=False)])
    np.testing.assert_array_equal(result.L[:, others], expected)


@pytest.mark.parametrize("bad_vote", [2, "spam", 1.5, float("nan"), None, -2, np.float64(0.5)])
def test_invalid_votes_are_refused_naming_lf_row_and_value(bad_vote):
    @labeling_function(name="lf_bad")
    def lf_bad(x):
        return bad_vote

    frame = pd.DataFrame({"id": ["a"], "text": ["t"], "label": [-1]})
    with pytest.raises(LFApplicationError, match=f"lf_bad.*'a'.*returned {re.escape(repr(bad_vote))}"):
        apply_lfs([lf_bad], frame, cardinality=2)


@pytest.mark.parametrize(("vote", "expected"), [(1.0, 1), (np.float64(0.0), 0), (True, 1), (np.bool_(False), 0),
                                                (-1.0, -1), (np.int32(1), 1)])
def test_integral_floats_and_bools_are_votes_as_in_snorkel(vote, expected):
    @labeling_function(name="lf_num")
    def lf_num(x):
        return vote

    frame = pd.DataFrame({"id": ["a"], "text": ["t"]})
    assert apply_lfs([lf_num], frame, cardinality=2).L.tolist() == [[expected]]
    assert PandasLFApplier([lf_num]).apply(frame, progress_bar=False).tolist() == [[expected]]


def test_declarative_label_outside_the_classes_is_refused():
    frame = pd.DataFrame({"id": ["a", "b"], "text": ["good", "meh"]})
    with pytest.raises(LFApplicationError, match="'kw'.*'a'.*class index 0..1"):
        apply_lfs([keyword_lf("kw", ["good"], 2)], frame, cardinality=2)
    result = apply_lfs([keyword_lf("kw", ["good"], 2)], frame, cardinality=2, fault_tolerant=True)
    assert result.L[:, 0].tolist() == [-1, -1] and result.errors["kw"].row_ids == ("a",)


def test_spacy_lfs_get_docs_parsed_once_per_distinct_text(youtube_lfs, monkeypatch):
    import labeling.lf.parse_cache as parse_module

    spacy_lfs = [lf for lf in youtube_lfs if apply_module.uses_spacy(lf)]
    assert spacy_lfs, "the example project must have spaCy LFs"
    calls = []
    real = parse_module.load_spacy

    def counting_loader(name):
        nlp = real(name)

        class Counting:
            meta, pipe_names = nlp.meta, nlp.pipe_names

            def pipe(self, texts, **kwargs):
                texts = list(texts)
                calls.append(len(texts))
                return nlp.pipe(texts, **kwargs)

        return Counting()

    monkeypatch.setattr(parse_module, "load_spacy", counting_loader)
    frame = pd.DataFrame({"id": list("abc"), "text": ["Hi Taylor", "Hi Taylor", "subscribe to me"], "label": -1})
    result = apply_lfs(spacy_lfs, frame, cardinality=2)
    assert calls == [2]
    np.testing.assert_array_equal(result.L[0], result.L[1])


def test_concurrent_applies_from_threads_agree(imdb_lfs, imdb_sample, parallel):
    # a model server applies LFs from several threads: scans and worker state must not mix
    from concurrent.futures import ThreadPoolExecutor

    @labeling_function()
    def says_film(x):
        return 0 if "film" in x.text else -1

    lfs = [*imdb_lfs, says_film]
    parts = [imdb_sample.iloc[i::4].reset_index(drop=True) for i in range(4)]
    expected = [apply_lfs(lfs, part, cardinality=2, n_jobs=1).L for part in parts]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda part: apply_lfs(lfs, part, cardinality=2, n_jobs=2).L, parts * 2))
    for got, want in zip(results, expected * 2):
        np.testing.assert_array_equal(got, want)


@given(texts=st.lists(st.text(alphabet=list("ab \t\n\x0b\x0c\r\x1c\x1f\x85\u00a0\u2009_.\x01\x02\xff\u00e9\u2019\u0131"), max_size=15),
                      max_size=20))
def test_word_counts_equal_str_split(texts):
    assert apply_module._word_counts(texts).tolist() == [len(t.split()) for t in texts]


def test_scanned_lfs_report_their_shared_scan_not_one_made_up_number_each():
    @labeling_function()
    def plain(x):  # a shape the compiler leaves to row-by-row calls
        return 1 if len(set(x.text)) > 4 else -1

    lfs = [keyword_lf("kw", ["great"], 1), regex_lf("re", r"\bbad\b", 0), length_lf("short", 0, max_words=2), plain]
    frame = pd.DataFrame({"text": ["great song", "bad bad day", "wow!", "great"] * 50})
    result = apply_lfs(lfs, frame, cardinality=2, n_jobs=1)
    # before: kw, re and short each got the same share of the scan's time
    assert all(np.isnan(result.seconds_per_lf[name]) for name in ("kw", "re", "short"))
    assert result.seconds_per_lf["plain"] >= 0
    assert result.shared_by == {"scan of text": ("kw", "re", "short")}
    assert result.shared_seconds["scan of text"] > 0


def test_plain_lfs_run_without_cyclic_gc_collections_and_gc_is_back_on_after():
    # the records live through the run: collections during it would move them to the oldest
    # generation and, in a long-lived process, set off full collections of everything it holds
    import gc

    calls, seen, kept = [0], [], []  # LF calls so far at each collection

    def on_gc(phase, info):
        if phase == "start":
            seen.append(calls[0])

    @labeling_function()
    def odd_count(x):
        calls[0] += 1
        kept.append([calls[0]])  # allocations that live on: with the collector on, it would run every 10
        return 1 if x.text.count("o") % 2 else -1

    @labeling_function()
    def breaks(x):
        raise ValueError("typo")

    frame = pd.DataFrame({"text": [f"row {i} of foo" for i in range(300)]})
    threshold = gc.get_threshold()
    gc.set_threshold(10, 1, 1)
    gc.callbacks.append(on_gc)
    try:
        L = apply_lfs([odd_count], frame, cardinality=2, n_jobs=1).L
        during = [c for c in seen if 0 < c < len(frame)]  # between the first call and the last
        assert gc.isenabled()
        with pytest.raises(LFApplicationError, match="typo"):
            apply_lfs([breaks], frame, cardinality=2, n_jobs=1)
        assert gc.isenabled(), "a failing run turns the collector back on too"
        gc.disable()
        apply_lfs([odd_count], frame, cardinality=2, n_jobs=1)
        assert not gc.isenabled(), "a collector the caller turned off stays off"
    finally:
        gc.enable()
        gc.callbacks.remove(on_gc)
        gc.set_threshold(*threshold)
    assert during == [] and L[:, 0].tolist() == [1 if t.count("o") % 2 else -1 for t in frame["text"]]
