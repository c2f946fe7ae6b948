"""length_lf: bounds named by their unit (words or characters)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from labeling.lf.declarative import length_lf
from labeling.errors import ConfigError
from labeling.lf.core import lf_version


def test_length_bounds_say_their_unit():
    words = length_lf("long", 1, min_words=3)
    assert words(SimpleNamespace(text="one two three")) == 1
    assert words(SimpleNamespace(text="abcdefghijklmnop")) == -1  # 16 characters, one word
    chars = length_lf("long_chars", 1, min_chars=5, max_chars=6)
    assert chars(SimpleNamespace(text="abcde")) == 1 and chars(SimpleNamespace(text="a b c d e f g")) == -1


def test_old_min_len_still_works_with_a_deprecation_warning_and_the_same_version():
    with pytest.warns(DeprecationWarning, match="min_words"):
        old = length_lf("long", 1, min_len=400)
    assert lf_version(old) == lf_version(length_lf("long", 1, min_words=400))  # cached votes stay valid
    with pytest.warns(DeprecationWarning):
        old_chars = length_lf("c", 1, min_len=5, unit="chars")
    assert lf_version(old_chars) == lf_version(length_lf("c", 1, min_chars=5))


@pytest.mark.parametrize("kwargs", [{"min_words": 2, "max_chars": 9}, {"min_words": 5, "max_words": 2},
                                    {"min_chars": -1}])
def test_mixed_or_crossed_bounds_are_refused(kwargs):
    with pytest.raises(ConfigError, match="'x'"):
        length_lf("x", 1, **kwargs)
