"""The GoEmotions example LFs (labeling_functions/goemotions.py): discovered, and their votes decode as written."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from labeling.lf.core import discover_lfs
from labeling.multilabel.votes import NO, YES, decode_votes, encode_vote

from .conftest import REPO


@pytest.fixture(scope="module")
def lfs():
    return {lf.name: lf for lf in discover_lfs(["labeling_functions.goemotions"], root=REPO)}


def _votes(lf, text: str) -> list[int]:
    return decode_votes(np.array([[encode_vote(lf(SimpleNamespace(text=text)))]]), 28)[0, 0].tolist()


def test_every_keyword_lf_and_python_lf_is_discovered(lfs):
    from labeling_functions import goemotions

    assert len(lfs) == len(goemotions.KEYWORD_LFS) + len(goemotions.PYTHON_LFS)
    assert all(lf.__doc__ or name.startswith("kw_") for name, lf in lfs.items())


@pytest.mark.parametrize("name, text, yes, no", [
    ("question_curiosity", "Why would anyone do that?", [7], [27]),
    ("sorry_for_loss", "So sorry for your loss.", [5, 25], [24]),
    ("plain_statement_neutral", "The game starts at noon", [27], []),
    ("plain_statement_neutral", "This is amazing", [], [27]),
    ("thanks_and_love", "Thank you, love this", [15, 18], []),
])
def test_python_lfs_vote_as_documented(lfs, name, text, yes, no):
    votes = _votes(lfs[name], text)
    assert [c for c, v in enumerate(votes) if v == YES] == yes
    assert [c for c, v in enumerate(votes) if v == NO] == no
