"""Many Python regexes over many texts at once, with exactly ``re.search``'s answers.

``PatternMatcher(patterns).search(texts)[i, j]`` is ``bool(patterns[j].search(texts[i]))``.
With the optional ``hyperscan`` package, every pattern is scanned in one SIMD pass
per text; without it (or for a pattern it cannot take) Python's ``re`` answers.

Hyperscan's regex dialect is not Python's (``{,3}``, ``[[:alpha:]]``, ``\\s``, case
folding and Unicode classes all differ), so patterns are never handed over as
written. Each one is parsed by Python's own ``re`` parser and re-emitted with every
character class spelled out as explicit bytes, its membership computed by Python's
``re`` itself, leaving hyperscan only the structure (sequence, alternation,
repetition, ``^ $ \\b``), where the two agree:

- ASCII texts (most of them) are scanned with that exact translation; no Python
  regex runs.
- Other texts are mapped to ASCII, one byte per character (letters and digits ->
  ``_``, anything else -> ``\\x01``, so ``\\w`` and ``\\b`` keep their answers) and
  scanned with a *widened* translation whose classes also accept those bytes and
  whose lookarounds are dropped: it can only report too much, never too little,
  and each hit is confirmed with Python's ``re``.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence

import numpy as np

try:  # optional: fall back to Python's re without it
    import hyperscan
except ImportError:  # pragma: no cover - depends on the environment
    hyperscan = None

from re import _constants as C
from re import _parser as sre_parse

__all__ = ["PatternMatcher", "hyperscan_available"]

_WORDISH = ord("_")  # placeholder for a non-ASCII letter/digit (a \w character)
_OTHER = 0x01  # placeholder for any other non-ASCII character
_PLACEHOLDERS = frozenset({_WORDISH, _OTHER})
_ASCII = range(128)
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# ASCII letters that Python's re.IGNORECASE also matches to a non-ASCII letter
# (dotless i, long s, Kelvin sign).
_FOLDS_OUTSIDE_ASCII = frozenset(map(ord, "iskISK"))


_SCAN_LOCK = threading.Lock()


def _new_scan_lock() -> None:
    global _SCAN_LOCK
    _SCAN_LOCK = threading.Lock()


# A forked child starts with one thread; a lock copied while held would never open.
os.register_at_fork(after_in_child=_new_scan_lock)


def scan_lock() -> threading.Lock:
    """Held around every scan: a hyperscan database has one scratch space, for one
    scan at a time (threads in a server), and must not be copied mid-scan (fork)."""
    return _SCAN_LOCK


def hyperscan_available() -> bool:
    return hyperscan is not None


class _Unsupported(Exception):
    """The pattern uses a construct the translation does not reproduce exactly."""


def _category_members(category) -> set[int]:
    probe = {
        C.CATEGORY_DIGIT: r"\d", C.CATEGORY_NOT_DIGIT: r"\D",
        C.CATEGORY_SPACE: r"\s", C.CATEGORY_NOT_SPACE: r"\S",
        C.CATEGORY_WORD: r"\w", C.CATEGORY_NOT_WORD: r"\W",
    }.get(category)
    if probe is None:
        raise _Unsupported(f"category {category}")
    compiled = re.compile(probe)
    return {c for c in _ASCII if compiled.fullmatch(chr(c))}


def _swapcase(members: set[int]) -> set[int]:
    return members | {ord(chr(c).swapcase()) for c in members if chr(c).isalpha()}


class _Translator:
    def __init__(self, flags: int, widened: bool):
        if flags & (re.MULTILINE | re.ASCII | re.LOCALE):
            raise _Unsupported("MULTILINE/ASCII/LOCALE flags")
        self.ignorecase = bool(flags & re.IGNORECASE)
        self.dotall = bool(flags & re.DOTALL)
        self.widened = widened

    # -- character classes: a set of byte values, emitted explicitly

    def _class(self, op, av) -> set[int]:
        widen = False
        if op is C.LITERAL:
            if av > 127:
                raise _Unsupported("non-ASCII literal")
            members = _swapcase({av}) if self.ignorecase else {av}
            widen = self.ignorecase and av in _FOLDS_OUTSIDE_ASCII
        elif op is C.NOT_LITERAL:
            if av > 127:
                raise _Unsupported("non-ASCII literal")
            members = set(_ASCII) - (_swapcase({av}) if self.ignorecase else {av})
            widen = True
        elif op is C.ANY:
            members = set(_ASCII) if self.dotall else set(_ASCII) - {ord("\n")}
            widen = True
        elif op is C.IN:
            members, negate = set(), False
            for item_op, item_av in av:
                if item_op is C.NEGATE:
                    negate = True
                elif item_op is C.LITERAL:
                    if item_av > 127:
                        raise _Unsupported("non-ASCII literal in a class")
                    members.add(item_av)
                elif item_op is C.RANGE:
                    lo, hi = item_av
                    if hi > 127:
                        raise _Unsupported("non-ASCII range")
                    members |= set(range(lo, hi + 1))
                elif item_op is C.CATEGORY:
                    members |= _category_members(item_av)
                    widen = True
                else:
                    raise _Unsupported(f"class item {item_op}")
            if self.ignorecase:
                widen = widen or bool(members & _FOLDS_OUTSIDE_ASCII)
                members = _swapcase(members)
            if negate:
                members, widen = set(_ASCII) - members, True
        else:
            raise _Unsupported(f"opcode {op}")
        if self.widened and widen:
            members |= _PLACEHOLDERS
        if not members:
            raise _Unsupported("empty class")
        return members

    @staticmethod
    def _emit_class(members: set[int]) -> str:
        values = sorted(members)
        runs, start = [], values[0]
        for prev, cur in zip(values, values[1:] + [-1]):
            if cur != prev + 1:
                runs.append(f"\\x{start:02x}" if start == prev else f"\\x{start:02x}-\\x{prev:02x}")
                start = cur
        return "[" + "".join(runs) + "]"

    # -- structure

    def sequence(self, items, top: bool = False) -> str:
        items = list(items)
        out = []
        for pos, (op, av) in enumerate(items):
            if op in (C.ASSERT, C.ASSERT_NOT):
                out.append(self._lookaround(op, av, first=top and pos == 0, last=top and pos == len(items) - 1))
            else:
                out.append(self.node(op, av))
        return "".join(out)

    def _lookaround(self, op, av, *, first: bool, last: bool) -> str:
        direction, body = av
        if self.widened:
            return ""  # dropping an assertion only admits more matches
        body = list(body)
        if len(body) != 1 or body[0][0] not in (C.LITERAL, C.NOT_LITERAL, C.IN, C.ANY):
            raise _Unsupported("lookaround that is not one character")
        members = self._class(*body[0])
        if (direction == -1 and not first) or (direction == 1 and not last):
            raise _Unsupported("lookaround inside the pattern")
        # Only the existence of a match matters, so consuming the neighbour is fine.
        if op is C.ASSERT:
            return self._emit_class(members)
        rest = set(_ASCII) - members
        other = self._emit_class(rest) if rest else None
        if direction == -1:
            return f"(?:^|{other})" if other else "^"
        return f"(?:{other}|\\z)" if other else "\\z"

    def node(self, op, av) -> str:
        if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
            return self._emit_class(self._class(op, av))
        if op is C.BRANCH:
            return "(?:" + "|".join(self.sequence(alt) for alt in av[1]) + ")"
        if op is C.SUBPATTERN:
            _group, add_flags, del_flags, body = av
            if add_flags or del_flags:
                raise _Unsupported("scoped inline flags")
            return "(?:" + self.sequence(body) + ")"
        if op in (C.MAX_REPEAT, C.MIN_REPEAT):  # laziness does not change whether a match exists
            lo, hi, body = av
            bound = f"{{{lo},}}" if hi is C.MAXREPEAT else f"{{{lo},{hi}}}"
            return "(?:" + self.sequence(body) + ")" + bound
        if op is C.AT:
            anchors = {
                C.AT_BEGINNING: "^", C.AT_BEGINNING_STRING: "^", C.AT_END: "$", C.AT_END_STRING: "\\z",
                C.AT_BOUNDARY: "\\b", C.AT_NON_BOUNDARY: "\\B",
            }
            if av not in anchors:
                raise _Unsupported(f"anchor {av}")
            return anchors[av]
        raise _Unsupported(f"opcode {op}")


def translate(pattern: re.Pattern, *, widened: bool = False) -> bytes:
    """Hyperscan source for ``pattern`` (see the module docstring); raises ``_Unsupported``."""
    if not isinstance(pattern.pattern, str):
        raise _Unsupported("bytes pattern")
    parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    translator = _Translator(parsed.state.flags, widened)
    return translator.sequence(parsed, top=True).encode("ascii")


def _compile_db(sources: dict[int, bytes]):
    if not sources:
        return None
    flags = hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
    db = hyperscan.Database()
    db.compile(expressions=list(sources.values()), ids=list(sources), flags=[flags] * len(sources))
    return db


def _compiles(source: bytes) -> bool:
    try:
        _compile_db({0: source})
    except hyperscan.error:  # e.g. a repeat bound beyond hyperscan's limit
        return False
    return True


class PatternMatcher:
    """``search(texts)[i, j] == bool(patterns[j].search(texts[i]))``, computed in bulk."""

    def __init__(self, patterns: Sequence[re.Pattern]):
        self.patterns = [p if isinstance(p, re.Pattern) else re.compile(p) for p in patterns]
        exact: dict[int, bytes] = {}
        widened: dict[int, bytes] = {}
        if hyperscan is not None:
            for j, pattern in enumerate(self.patterns):
                try:
                    exact[j], widened[j] = translate(pattern), translate(pattern, widened=True)
                except (_Unsupported, re.error, UnicodeEncodeError):
                    continue
        try:
            self._exact, self._widened = _compile_db(exact), _compile_db(widened)
        except hyperscan.error:  # e.g. a repeat bound beyond hyperscan's limit: find which
            exact = {j: src for j, src in exact.items() if _compiles(src) and _compiles(widened[j])}
            widened = {j: widened[j] for j in exact}
            self._exact, self._widened = _compile_db(exact), _compile_db(widened)
        self.scanned = sorted(exact)
        #: patterns Python's re runs on every text
        self.fallback = [j for j in range(len(self.patterns)) if j not in exact]

    def search(self, texts: Sequence[str]) -> np.ndarray:
        hits = np.zeros((len(texts), len(self.patterns)), dtype=bool)
        if self._exact is not None:
            with scan_lock():
                self._scan(texts, hits)
        for j in self.fallback:
            search = self.patterns[j].search
            hits[:, j] = [search(t) is not None for t in texts]
        return hits

    def _scan(self, texts: Sequence[str], hits: np.ndarray) -> None:
        found: list[int] = []
        on_match = lambda pattern_id, start, end, flags, context: found.append(pattern_id)
        exact_scan, widened_scan = self._exact.scan, self._widened.scan
        for i, text in enumerate(texts):
            if text.isascii():
                exact_scan(text.encode("ascii"), match_event_handler=on_match)
                if found:
                    hits[i, found] = True
                    found.clear()
                continue
            mapped = _NON_ASCII.sub(lambda m: "_" if m.group().isalnum() else "\x01", text)
            widened_scan(mapped.encode("ascii"), match_event_handler=on_match)
            for j in found:  # candidates only: confirm with Python's re
                hits[i, j] = self.patterns[j].search(text) is not None
            found.clear()
