from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from snorkel.labeling import PandasLFApplier

from labeling import LFApplicationError, apply_lfs, discover_lfs, labeling_function

from .conftest import FIXTURES, REPO


@pytest.fixture(scope="module")
def youtube_lfs():
    return discover_lfs(["labeling_functions.youtube_spam"], root=REPO)


def test_matrix_equals_snorkel_pandas_applier_on_youtube(youtube_lfs, youtube_splits):
    # Snorkel parses per row and per spaCy LF, so compare on 400 real rows.
    frame = youtube_splits.train.iloc[:400]
    ours = apply_lfs(youtube_lfs, frame, cardinality=2)
    theirs = PandasLFApplier(list(youtube_lfs)).apply(frame, progress_bar=False)
    assert ours.L.dtype == np.int64 and ours.L.shape == (400, len(youtube_lfs))
    np.testing.assert_array_equal(ours.L, theirs)
    assert set(ours.seconds_per_lf) == {lf.name for lf in youtube_lfs}
    assert all(s >= 0 for s in ours.seconds_per_lf.values())


def test_lf_that_raises_names_lf_and_row():
    lfs = discover_lfs(["lf_modules.broken"], root=FIXTURES)
    frame = pd.DataFrame({"id": ["r1", "r2", "r3"], "text": ["check this out please", "ok", "x"], "label": -1})
    with pytest.raises(LFApplicationError) as info:
        apply_lfs(lfs, frame, cardinality=2)
    assert info.value.lf_name == "lf_divides_by_length"
    assert info.value.row_id == "r3"
    assert "ZeroDivisionError" in str(info.value) and "'r3'" in str(info.value)


@pytest.mark.parametrize("bad_vote", [2, "spam", 1.0, True, None, -2])
def test_invalid_votes_are_refused(bad_vote):
    @labeling_function(name="lf_bad")
    def lf_bad(x):
        return bad_vote

    frame = pd.DataFrame({"id": ["a"], "text": ["t"], "label": [-1]})
    with pytest.raises(LFApplicationError, match="lf_bad.*'a'"):
        apply_lfs([lf_bad], frame, cardinality=2)


def test_spacy_lfs_get_docs_parsed_once_per_distinct_text(youtube_lfs, monkeypatch):
    import labeling.apply as apply_module

    spacy_lfs = [lf for lf in youtube_lfs if apply_module.uses_spacy(lf)]
    assert spacy_lfs, "the example project must have spaCy LFs"
    calls = []
    real = apply_module.load_spacy

    def counting_loader(name):
        nlp = real(name)

        class Counting:
            def pipe(self, texts, batch_size):
                texts = list(texts)
                calls.append(len(texts))
                return nlp.pipe(texts, batch_size=batch_size)

        return Counting()

    monkeypatch.setattr(apply_module, "load_spacy", counting_loader)
    frame = pd.DataFrame({"id": list("abc"), "text": ["Hi Taylor", "Hi Taylor", "subscribe to me"], "label": -1})
    result = apply_lfs(spacy_lfs, frame, cardinality=2)
    assert calls == [2]
    np.testing.assert_array_equal(result.L[0], result.L[1])
