"""Keyword, regex and length LFs that are ordinary Snorkel LFs *and* data.

``keyword_lf``, ``regex_lf`` and ``length_lf`` return ``LabelingFunction`` objects:
call them on a row, hand them to Snorkel's ``PandasLFApplier``, version them with
``lf_version``, exactly like a hand-written ``@labeling_function``. They also carry
a ``spec`` that the fast applier reads to compute a whole column at once (all
pattern LFs in one multi-pattern scan, lengths in one pass over distinct texts)
instead of calling the function row by row. The spec is also what the function
computes, so both paths give the same votes by construction; the tests check it
against Snorkel's applier on real data.

The spec sits in the LF's resources (passed to the function as keywords), so
editing a keyword list or a pattern changes the LF's version.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

from snorkel.labeling import LabelingFunction

from ..errors import ConfigError
from ..matrix import ABSTAIN

__all__ = ["LengthSpec", "PatternSpec", "keyword_lf", "length_lf", "lf_spec", "regex_lf"]


@dataclass(frozen=True)
class PatternSpec:
    """Vote ``label`` where ``pattern.search(x[field])`` finds a match, else abstain."""

    field: str
    pattern: re.Pattern
    label: int


@dataclass(frozen=True)
class LengthSpec:
    """Vote ``label`` where ``lo <= n <= hi``; ``n`` = words (``str.split``) or characters."""

    field: str
    unit: str
    lo: int
    hi: int | None
    label: int

    def size(self, text: str) -> int:
        return len(text.split()) if self.unit == "words" else len(text)

    def vote(self, n: int) -> int:
        return self.label if self.lo <= n and (self.hi is None or n <= self.hi) else ABSTAIN


def _value(x, field: str):
    # pandas Series and mappings by key (a column may be named like a Series
    # method), anything else (a namedtuple row) by attribute
    return getattr(x, field) if isinstance(x, tuple) or not hasattr(x, "__getitem__") else x[field]


def _pattern_vote(x, field: str, pattern: re.Pattern, label: int) -> int:
    return label if pattern.search(_value(x, field)) else ABSTAIN


def _length_vote(x, field: str, unit: str, lo: int, hi: int | None, label: int) -> int:
    spec = LengthSpec(field, unit, lo, hi, label)
    return spec.vote(spec.size(_value(x, field)))


def _check_label(name: str, label: int) -> int:
    if isinstance(label, bool) or not isinstance(label, int) or label < 0:
        raise ConfigError(f"LF {name!r}: label must be a class index >= 0, got {label!r}")
    return label


def regex_lf(name: str, pattern: str | re.Pattern, label: int, *, flags: int = 0, field: str = "text") -> LabelingFunction:
    """An LF voting ``label`` when ``re.search(pattern, x[field], flags)`` matches."""
    try:
        compiled = pattern if isinstance(pattern, re.Pattern) else re.compile(pattern, flags)
    except re.error as exc:
        raise ConfigError(f"LF {name!r}: invalid regex {pattern!r}: {exc}") from exc
    resources = {"field": field, "pattern": compiled, "label": _check_label(name, label)}
    return LabelingFunction(name=name, f=_pattern_vote, resources=resources)


def keyword_lf(
    name: str,
    keywords: Iterable[str],
    label: int,
    *,
    case_sensitive: bool = False,
    whole_words: bool = True,
    field: str = "text",
) -> LabelingFunction:
    """An LF voting ``label`` when any keyword occurs in ``x[field]``.

    ``whole_words``: a keyword must not be glued to a letter, digit or ``_`` on
    either side ("bad" does not fire on "badly").
    """
    words = sorted({str(k) for k in keywords if str(k)}, key=lambda k: (-len(k), k))
    if not words:
        raise ConfigError(f"LF {name!r}: no keywords")
    body = "|".join(re.escape(k) for k in words)
    source = rf"(?<!\w)(?:{body})(?!\w)" if whole_words else f"(?:{body})"
    return regex_lf(name, source, label, flags=0 if case_sensitive else re.IGNORECASE, field=field)


def length_lf(
    name: str,
    label: int,
    *,
    min_words: int | None = None,
    max_words: int | None = None,
    min_chars: int | None = None,
    max_chars: int | None = None,
    field: str = "text",
    min_len: int | None = None,
    max_len: int | None = None,
    unit: str | None = None,
) -> LabelingFunction:
    """An LF voting ``label`` when ``x[field]`` has ``min_words..max_words`` words
    (``str.split``), or ``min_chars..max_chars`` characters; bounds are inclusive,
    a missing one is open. Give word bounds or character bounds, not both.

    ``min_len``/``max_len``/``unit`` are the old spelling (deprecated): they
    counted words unless ``unit="chars"``, which read as characters.
    Raises ``ConfigError`` for negative or crossed bounds or mixed units.
    """
    old = (min_len, max_len, unit) != (None, None, None)
    words, chars = (min_words, max_words) != (None, None), (min_chars, max_chars) != (None, None)
    if old:
        warnings.warn(f"length_lf({name!r}): min_len/max_len/unit are deprecated; use min_words/max_words "
                      "or min_chars/max_chars", DeprecationWarning, stacklevel=2)
        if words or chars:
            raise ConfigError(f"LF {name!r}: give min_words/max_words or min_chars/max_chars, not min_len/max_len too")
        unit = unit or "words"
        if unit not in ("words", "chars"):
            raise ConfigError(f"LF {name!r}: unit must be 'words' or 'chars', got {unit!r}")
        lo, hi = min_len or 0, max_len
    elif words and chars:
        raise ConfigError(f"LF {name!r}: give word bounds or character bounds, not both")
    else:
        unit = "chars" if chars else "words"
        lo, hi = (min_chars or 0, max_chars) if chars else (min_words or 0, max_words)
    if lo < 0 or (hi is not None and hi < lo):
        raise ConfigError(f"LF {name!r}: need 0 <= minimum <= maximum {unit}, got {lo}, {hi}")
    # The same resources as before the rename, so an LF keeps its version (and cached votes).
    resources = {"field": field, "unit": unit, "lo": lo, "hi": hi, "label": _check_label(name, label)}
    return LabelingFunction(name=name, f=_length_vote, resources=resources)


def lf_spec(lf: LabelingFunction) -> PatternSpec | LengthSpec | None:
    """The declarative spec of an LF built here, or ``None`` for any other LF.

    An LF with preprocessors is opaque: they may rewrite the row before it votes.
    """
    if getattr(lf, "_pre", ()):
        return None
    f, res = getattr(lf, "_f", None), dict(getattr(lf, "_resources", {}))
    if f is _pattern_vote:
        return PatternSpec(res["field"], res["pattern"], res["label"])
    if f is _length_vote:
        return LengthSpec(res["field"], res["unit"], res["lo"], res["hi"], res["label"])
    return None
