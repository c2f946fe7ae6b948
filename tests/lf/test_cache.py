from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from snorkel.labeling import LabelingFunction, labeling_function

from labeling import apply_lfs
from labeling.lf.cache import LFCache, forget_loaded, row_keys, text_column_digest
from labeling.lf.declarative import keyword_lf, length_lf, regex_lf


def _frame(n: int, start: int = 0) -> pd.DataFrame:
    words = ["great fun", "awful plot", "so boring", "a classic", "meh", "great but dull"]
    return pd.DataFrame({"id": [f"r{i}" for i in range(start, start + n)],
                         "text": [f"{words[i % len(words)]} #{i}" for i in range(start, start + n)]})


def _lfs(scorn=("awful",)):
    @labeling_function()
    def has_hash(x):
        return 1 if "#1" in x.text else -1

    return [keyword_lf("praise", ["great"], 1), keyword_lf("scorn", list(scorn), 0),
            regex_lf("classic", r"\bclassic\b", 1), length_lf("short", 0, max_words=2), has_hash]


def test_second_apply_reads_everything_from_the_cache(tmp_path):
    frame = _frame(50)
    cold = apply_lfs(_lfs(), frame, cardinality=2, cache=tmp_path)
    warm = apply_lfs(_lfs(), frame, cardinality=2, cache=tmp_path)
    np.testing.assert_array_equal(cold.L, warm.L)
    np.testing.assert_array_equal(cold.L, apply_lfs(_lfs(), frame, cardinality=2).L)
    assert set(cold.rows_computed.values()) == {50} and set(warm.rows_computed.values()) == {0}


def test_editing_one_lf_recomputes_only_its_column(tmp_path):
    frame = _frame(60)
    apply_lfs(_lfs(), frame, cardinality=2, cache=tmp_path)
    edited = apply_lfs(_lfs(scorn=("awful", "boring")), frame, cardinality=2, cache=tmp_path)
    assert edited.rows_computed == {"praise": 0, "scorn": 60, "classic": 0, "short": 0, "has_hash": 0}
    np.testing.assert_array_equal(edited.L, apply_lfs(_lfs(scorn=("awful", "boring")), frame, cardinality=2).L)
    assert len(LFCache(tmp_path).versions("scorn")) == 2


def test_appended_rows_are_the_only_rows_computed(tmp_path):
    apply_lfs(_lfs(), _frame(40), cardinality=2, cache=tmp_path)
    grown = pd.concat([_frame(40, start=40), _frame(40)], ignore_index=True)  # new rows first: keys, not positions
    result = apply_lfs(_lfs(), grown, cardinality=2, cache=tmp_path)
    assert set(result.rows_computed.values()) == {40}
    np.testing.assert_array_equal(result.L, apply_lfs(_lfs(), grown, cardinality=2).L)


def test_changing_a_resource_file_invalidates_the_lf(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("plot\n", encoding="utf-8")

    def from_file(x, path: Path):
        return 0 if any(w in x.text for w in path.read_text(encoding="utf-8").split()) else -1

    def lf():
        return LabelingFunction("from_file", f=from_file, resources={"path": words})

    frame = _frame(12)
    first = apply_lfs([lf()], frame, cardinality=2, cache=tmp_path / "cache")
    words.write_text("plot\nboring\n", encoding="utf-8")
    second = apply_lfs([lf()], frame, cardinality=2, cache=tmp_path / "cache")
    assert second.rows_computed == {"from_file": 12}
    assert (second.L == 0).sum() > (first.L == 0).sum()


def test_errors_are_not_cached(tmp_path):
    @labeling_function()
    def picky(x):
        if x.text.startswith("meh"):
            raise ValueError("no opinion")
        return -1

    frame = _frame(12)
    first = apply_lfs([picky], frame, cardinality=2, cache=tmp_path, fault_tolerant=True)
    again = apply_lfs([picky], frame, cardinality=2, cache=tmp_path, fault_tolerant=True)
    assert first.errors["picky"].count == again.errors["picky"].count == 2
    assert again.rows_computed == {"picky": 2}


def test_row_keys_depend_on_content_not_position():
    frame = _frame(5)
    keys = row_keys(frame)
    assert len(np.unique(keys, axis=0)) == 5
    np.testing.assert_array_equal(row_keys(frame.iloc[::-1].reset_index(drop=True)), keys[::-1])
    changed = frame.assign(text=frame["text"].str.replace("#2", "#22"))
    assert (row_keys(changed) != keys).any(axis=1).tolist() == [False, False, True, False, False]
    assert (row_keys(frame.astype({"text": object})) != keys).all(), "dtype is part of the key"


@pytest.mark.parametrize("n", [1, 20])
def test_clear_removes_every_column(tmp_path, n):
    apply_lfs(_lfs(), _frame(n), cardinality=2, cache=tmp_path)
    assert LFCache(tmp_path).clear() == 5
    assert apply_lfs(_lfs(), _frame(n), cardinality=2, cache=tmp_path).rows_computed["praise"] == n


def test_retrain_fills_the_project_cache_and_the_cli_clears_it(youtube_config_path, tmp_path, capsys):
    import json

    from labeling import load_config, run_retrain
    from labeling.lf.cache import project_cache_dir
    from labeling.cli import main

    overrides = [f'project.store="{tmp_path / "store.db"}"', f'project.artifacts="{tmp_path / "artifacts"}"',
                 'label_model.type="majority_vote"']
    config = load_config(youtube_config_path, overrides)
    folder = project_cache_dir(config)
    assert folder == tmp_path / "lf_cache"
    result = run_retrain(config, record=False)
    assert sorted(p.name for p in (folder / "lf").iterdir()) == sorted(name for name, _ in result.lfs)
    assert any((folder / "spacy").rglob("*.spacy"))
    # another project sharing the folder: its LF columns and its pipeline's parses must stay
    apply_lfs(_lfs(), _frame(3), cardinality=2, cache=folder)
    other_lfs = sorted(p.name for p in (folder / "lf").iterdir() if p.name not in dict(result.lfs))
    (folder / "spacy" / "other_pipeline_key").mkdir()
    (folder / "spacy" / "other_pipeline_key" / "x.spacy").write_bytes(b"")
    args = ["clear-cache", "--config", str(youtube_config_path), "--json"] + [a for o in overrides for a in ("--set", o)]
    assert main(args) == 0
    removed = json.loads(capsys.readouterr().out)["removed"]
    assert removed["lf_columns"] == len(result.lfs) and removed["spacy_segments"] >= 1
    assert other_lfs and sorted(p.name for p in (folder / "lf").iterdir()) == other_lfs
    assert [p.name for p in (folder / "spacy").iterdir()] == ["other_pipeline_key"]
    off = load_config(youtube_config_path, [*overrides, 'lfs.cache="none"'])
    assert project_cache_dir(off) is None


_DISTINCT_CELLS = [1, "1", 1.0, True, None, np.nan, pd.NA, pd.NaT, 0, False, 0.0, -0.0, "", b"1",
                   [1, 2], (1, 2), [1, "2"], {"a": 1}, {"a": 1.0}, {1, 2}, np.int64(1), np.float32(1)]


def test_row_keys_are_type_exact():
    frame = pd.DataFrame({"v": pd.Series(_DISTINCT_CELLS, dtype=object)})
    keys, keyed = row_keys(frame, with_mask=True)
    assert keyed.all()
    assert len({tuple(k) for k in keys.tolist()}) == len(_DISTINCT_CELLS)


def test_cached_votes_follow_the_cell_type_and_unhashable_cells_work(tmp_path):
    @labeling_function()
    def by_type(x):
        return {int: 0, str: 1, float: 0, bool: 1, list: 1, dict: 0}.get(type(x.v), -1)

    frame = pd.DataFrame({"v": pd.Series([1, "1", 1.0, True, None, np.nan, pd.NA, [1], {"a": 1}, object()],
                                         dtype=object)})
    fresh = apply_lfs([by_type], frame, cardinality=2).L
    assert fresh[:, 0].tolist() == [0, 1, 0, 1, -1, 0, -1, 1, 0, -1]
    first = apply_lfs([by_type], frame, cardinality=2, cache=tmp_path)
    # the rows in another order: each one is looked up by what it holds, not where it is
    again = apply_lfs([by_type], frame.iloc[::-1].reset_index(drop=True), cardinality=2, cache=LFCache(tmp_path))
    np.testing.assert_array_equal(first.L, fresh)
    np.testing.assert_array_equal(again.L, fresh[::-1])
    # an object with no exact byte form is computed every time, never stored
    assert again.rows_computed == {"by_type": 1}


def test_a_strict_failure_caches_only_cells_that_ran(tmp_path):
    @labeling_function()
    def breaks(x):
        if x.id == "r3":
            raise ValueError("typo")
        return 1

    @labeling_function()
    def later(x):
        return 0

    frame = _frame(8)
    with pytest.raises(Exception, match="typo"):
        apply_lfs([breaks, later], frame, cardinality=2, cache=tmp_path)

    @labeling_function(name="breaks")
    def fixed(x):
        return 1

    result = apply_lfs([fixed, later], frame, cardinality=2, cache=tmp_path)
    assert result.L[:, 1].tolist() == [0] * 8  # not the -1 of cells the failed run never reached


def test_the_cell_a_strict_run_failed_on_is_not_cached(tmp_path):
    @labeling_function(name="neg")
    def neg(x):
        return -2

    frame = _frame(1)
    for _ in range(2):  # the second run must fail again, not read a -1 stored by the first
        with pytest.raises(Exception, match="returned -2"):
            apply_lfs([neg], frame, cardinality=2, cache=tmp_path)


def test_lookup_of_exactly_the_stored_keys_in_any_order_returns_their_votes(tmp_path):
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, size=(500, 2), dtype=np.uint64)
    votes = rng.integers(-1, 3, size=500)
    cache = LFCache(tmp_path)
    cache.store("lf", "v1", keys, votes)
    shuffled = rng.permutation(500)
    got, found = cache.lookup("lf", "v1", keys[shuffled])  # every stored key: the no-search path
    assert found.all() and got.tolist() == votes[shuffled].tolist()
    got, found = cache.lookup("lf", "v1", keys[shuffled[:499]])  # one fewer: the searched path agrees
    assert found.all() and got.tolist() == votes[shuffled[:499]].tolist()
    other = keys.copy()
    other[7, 1] += np.uint64(1)  # same first halves, one second half differs: not found
    got, found = cache.lookup("lf", "v1", other)
    assert found.sum() == 499 and not found[7]


# --------------------------------------------------------------------------- a new process: texts kept by content

def _texts(n: int = 40) -> list[str]:
    words = ["great fun", "awful plot", "so boring", "a classic", "meh", "great but dull", "café awful",
             "\u212a classic", "naïve great", "great\u00a0fun is here"]  # non-ASCII: mapped, and left to re
    return [f"{words[i % len(words)]} #{i}" for i in range(n)]


def _text_frame(texts: list[str]) -> pd.DataFrame:
    # Arrow-backed strings, as pandas reads a CSV or parquet file
    return pd.DataFrame({"text": pd.Series(texts, dtype="str")})


def _text_lfs(scorn=("awful",)):
    return [keyword_lf("praise", ["great"], 1), keyword_lf("scorn", list(scorn), 0),
            regex_lf("classic", r"\bclassic\b", 1), length_lf("short", 0, max_words=2),
            length_lf("long_chars", 1, min_chars=13)]


def _as_new_process(frame: pd.DataFrame) -> pd.DataFrame:
    """The same rows in new Arrow arrays, with this process's memo of cached columns dropped:
    what an apply in a new process starts from."""
    forget_loaded()
    return _text_frame(frame["text"].tolist())


def _kept(tmp_path) -> dict[str, list[str]]:
    return {"texts": sorted(p.name.split(".", 1)[1] for p in (tmp_path / "texts").iterdir()),
            "votes": sorted({p.parent.parent.name for p in (tmp_path / "lf").rglob("*.votes.npy")})}


def test_a_new_process_reads_keys_layout_and_whole_columns_kept_by_the_first(tmp_path):
    frame = _text_frame(_texts())
    first = apply_lfs(_text_lfs(), frame, cardinality=2, cache=tmp_path)
    assert _kept(tmp_path) == {"texts": ["keys.npy", "layout.npz", "mapped.bin"],
                               "votes": sorted(lf.name for lf in _text_lfs())}
    again = apply_lfs(_text_lfs(), _as_new_process(frame), cardinality=2, cache=tmp_path)
    assert set(again.rows_computed.values()) == {0}
    np.testing.assert_array_equal(again.L, first.L)
    edited_lfs = _text_lfs(scorn=("awful", "boring"))
    edited = apply_lfs(edited_lfs, _as_new_process(frame), cardinality=2, cache=tmp_path)
    assert edited.rows_computed == {"praise": 0, "scorn": 40, "classic": 0, "short": 0, "long_chars": 0}
    expected = apply_lfs(edited_lfs, frame, cardinality=2).L
    np.testing.assert_array_equal(edited.L, expected)
    assert (expected != first.L).any(), "the edit must change votes for this test to mean anything"


def _one_text_changed(texts):
    return [*texts[:3], texts[3].replace("classic", "classy"), *texts[4:]]


def _boundary_moved(texts):
    # the same bytes in the same order, split between two texts elsewhere: a digest of the
    # bytes alone would call this the same column
    return [texts[0][:-1], texts[0][-1] + texts[1], *texts[2:]]


def _one_text_appended(texts):
    return [*texts, "great great"]


@pytest.mark.parametrize("change", [_one_text_changed, _boundary_moved, _one_text_appended])
def test_a_changed_text_is_never_served_the_votes_kept_for_the_old_one(tmp_path, change):
    texts = _texts()
    first = apply_lfs(_text_lfs(), _text_frame(texts), cardinality=2, cache=tmp_path)
    frame = _as_new_process(_text_frame(change(texts)))
    result = apply_lfs(_text_lfs(), frame, cardinality=2, cache=tmp_path)
    expected = apply_lfs(_text_lfs(), frame, cardinality=2).L
    np.testing.assert_array_equal(result.L, expected)
    if change is not _one_text_appended:
        assert (expected != first.L).any(), "the change must change votes for this test to mean anything"
    # the texts that did not change are still read by their own keys
    assert set(result.rows_computed.values()) == {1 if change is not _boundary_moved else 2}


def test_a_changed_lf_is_never_served_the_votes_kept_for_the_old_version(tmp_path):
    frame = _text_frame(_texts())
    apply_lfs(_text_lfs(), frame, cardinality=2, cache=tmp_path)
    for scorn in [("awful", "boring"), ("awful",), ("plot",)]:  # back to the first version too
        result = apply_lfs(_text_lfs(scorn), _as_new_process(frame), cardinality=2, cache=tmp_path)
        np.testing.assert_array_equal(result.L, apply_lfs(_text_lfs(scorn), frame, cardinality=2).L)
    assert len(LFCache(tmp_path).versions("scorn")) == 3


@pytest.mark.parametrize("damage", ["truncate", "other_shape", "altered_layout"])
def test_damaged_kept_files_are_misses_not_votes(tmp_path, damage):
    frame = _text_frame(_texts())
    first = apply_lfs(_text_lfs(), frame, cardinality=2, cache=tmp_path)
    votes = sorted((tmp_path / "lf").rglob("*.votes.npy"))
    if damage == "truncate":
        for path in [*votes, *(tmp_path / "texts").iterdir()]:
            path.write_bytes(path.read_bytes()[:100])
    elif damage == "other_shape":
        for path in votes:
            np.save(path, np.zeros(3, dtype=np.int32))
    else:  # the texts' bytes changed, sizes kept: the layout's own check refuses it
        mapped = next((tmp_path / "texts").glob("*.mapped.bin"))
        mapped.write_bytes(mapped.read_bytes().replace(b"a", b"b"))
        for path in votes:
            path.unlink()
    fresh = _as_new_process(frame)
    forget_loaded()
    result = apply_lfs(_text_lfs(), fresh, cardinality=2, cache=tmp_path)
    np.testing.assert_array_equal(result.L, first.L)
    result = apply_lfs(_text_lfs(scorn=("awful", "boring")), _as_new_process(frame), cardinality=2, cache=tmp_path)
    np.testing.assert_array_equal(result.L, apply_lfs(_text_lfs(scorn=("awful", "boring")), frame, cardinality=2).L)


def test_text_column_digest_names_the_content_whatever_the_chunks():
    texts = _texts(12)
    whole = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([pa.array(texts, pa.large_string())])))
    chunked = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array(
        [pa.array(texts[:5], pa.large_string()), pa.array([], pa.large_string()),
         pa.array(texts[5:], pa.large_string())])))
    sliced = pd.Series(pd.arrays.ArrowStringArray(pa.chunked_array([pa.array(["x", *texts], pa.large_string())[1:]])))
    assert text_column_digest(whole) == text_column_digest(chunked) == text_column_digest(sliced) is not None
    for other in (_boundary_moved(texts), texts[:-1], [*texts[:-1], texts[-1] + " "], [*texts, ""]):
        assert text_column_digest(_text_frame(other)["text"]) != text_column_digest(whole)
    assert text_column_digest(pd.Series(texts, dtype=object)) is None  # no Arrow buffers to name it by
    assert text_column_digest(pd.Series([*texts, None], dtype="str")) is None


def test_kept_text_columns_are_bounded(tmp_path, monkeypatch):
    import labeling.lf.cache as cache_module

    monkeypatch.setattr(cache_module, "_MAX_TEXT_COLUMNS", 2)
    for n in (5, 6, 7):
        apply_lfs(_text_lfs(), _text_frame(_texts(n)), cardinality=2, cache=tmp_path)
    assert len({p.name.split(".")[0] for p in (tmp_path / "texts").iterdir()}) == 2
    assert LFCache(tmp_path).clear() > 0 and not (tmp_path / "texts").exists()


@pytest.mark.parametrize("repeats", [0, 2, 30])  # none; few: the column is scanned whole; many: distinct texts taken
def test_repeated_texts_give_the_votes_of_a_cold_apply_in_a_new_process(tmp_path, repeats):
    texts = _texts()
    frame = _text_frame([*texts, *texts[5 : 5 + repeats]] if repeats <= 2 else texts + texts[:30] * 2)
    expected = apply_lfs(_text_lfs(), frame, cardinality=2).L
    np.testing.assert_array_equal(apply_lfs(_text_lfs(), frame, cardinality=2, cache=tmp_path).L, expected)
    edited_lfs = _text_lfs(scorn=("awful", "boring"))
    edited = apply_lfs(edited_lfs, _as_new_process(frame), cardinality=2, cache=tmp_path)
    assert edited.rows_computed["scorn"] == len(frame) and edited.rows_computed["praise"] == 0
    np.testing.assert_array_equal(edited.L, apply_lfs(edited_lfs, frame, cardinality=2).L)


def test_the_texts_kept_are_named_by_the_library_code_too(monkeypatch):
    import labeling.lf.cache as cache_module

    # a changed mapping rule in patterns.py must not find layouts the old rule made
    texts = _texts(6)
    before = text_column_digest(_text_frame(texts)["text"])
    monkeypatch.setattr(cache_module, "library_digest", lambda: "another-library")
    assert text_column_digest(_text_frame(texts)["text"]) not in (before, None)
