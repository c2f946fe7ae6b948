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
- Other texts are mapped to one byte per character: a non-ASCII letter or digit
  becomes ``_``, a non-ASCII space ``\\x80`` and any other non-ASCII character
  ``\\x01`` (so ``\\w``, ``\\s`` and ``\\b`` keep their answers). They are scanned
  with a *mapped* translation whose classes also accept a placeholder where they
  accept some non-ASCII character. Where every class treats a placeholder exactly
  as it treats the characters it stands for (``\\w``, ``\\W``, ``\\s``, ``.``, ``[^a]``,
  ASCII letters: keyword patterns), a hit is an answer; otherwise (``\\d``, a
  literal ``_`` or ``\\x01``) the mapped scan can only report too much, and each
  hit is confirmed with Python's ``re``.
- The four non-ASCII letters that case-insensitive Python matches to ASCII letters
  (dotless and dotted i, long s, Kelvin sign) send their text to Python's ``re``.
"""

from __future__ import annotations

import codecs
import itertools
import os
import re
import threading
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

try:  # optional: fall back to Python's re without it
    import hyperscan
except ImportError:  # pragma: no cover - depends on the environment
    hyperscan = None

from re import _constants as C
from re import _parser as sre_parse

__all__ = ["ArrowTexts", "PatternMatcher", "ScanTexts", "hyperscan_available"]

_WORDISH = ord("_")  # placeholder for a non-ASCII letter/digit (a \w character)
_OTHER = 0x01  # placeholder for any other non-ASCII character
_SPACE = 0x80  # placeholder for a non-ASCII space (str.isspace; never a byte of an ASCII text)
_TO_RE = 0x02  # marks a character that sends its text to Python's re
_ASCII = range(128)
# Non-ASCII letters that Python's re.IGNORECASE matches to ASCII letters (i, s, k).
_FOLDS_INTO_ASCII = frozenset("\u0130\u0131\u017f\u212a")

# How a class treats the non-ASCII characters a placeholder stands for (the four
# folding letters aside): none of them, all of them, or some.
NONE, ALL, SOME = 0, 1, 2
_CATEGORIES = {  # (letters and digits, spaces, other characters); tests/lf/test_patterns.py checks these
    C.CATEGORY_WORD: (ALL, NONE, NONE), C.CATEGORY_NOT_WORD: (NONE, ALL, ALL),
    C.CATEGORY_DIGIT: (SOME, NONE, NONE), C.CATEGORY_NOT_DIGIT: (SOME, ALL, ALL),
    C.CATEGORY_SPACE: (NONE, ALL, NONE), C.CATEGORY_NOT_SPACE: (ALL, NONE, ALL),
}
_PLACEHOLDERS = (_WORDISH, _SPACE, _OTHER)  # in the order of the states above


def _union(a: int, b: int) -> int:
    return ALL if ALL in (a, b) else max(a, b)


def _negate(a: int) -> int:
    return {NONE: ALL, ALL: NONE, SOME: SOME}[a]


_PLACEHOLDER_RUNS: dict[str, bytes] = {}


def _placeholder(c: str) -> int:
    if c in _FOLDS_INTO_ASCII:
        return _TO_RE
    return _WORDISH if c.isalnum() else _SPACE if c.isspace() else _OTHER


def _placeholders(error: UnicodeEncodeError) -> tuple[bytes, int]:
    """Codec error handler: each non-ASCII character of a run -> its placeholder
    (bytes: the encoder copies them as they are)."""
    run = error.object[error.start : error.end]
    mapped = _PLACEHOLDER_RUNS.get(run)
    if mapped is None:
        if len(_PLACEHOLDER_RUNS) > 100_000:
            _PLACEHOLDER_RUNS.clear()
        mapped = _PLACEHOLDER_RUNS[run] = bytes(map(_placeholder, run))
    return mapped, error.end


# encode() with it runs at C speed over the ASCII stretches of a text
codecs.register_error("labeling-placeholders", _placeholders)


def map_to_ascii(text: str) -> bytes:
    """One byte per character; see the module docstring."""
    return text.encode("ascii", "labeling-placeholders")


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
    """``mapped=False``: for ASCII texts, exact. ``mapped=True``: for mapped texts;
    ``exact`` says afterwards whether its hits need no confirmation."""

    def __init__(self, flags: int, mapped: bool, block: bool = False):
        if flags & (re.MULTILINE | re.ASCII | re.LOCALE):
            raise _Unsupported("MULTILINE/ASCII/LOCALE flags")
        self.ignorecase = bool(flags & re.IGNORECASE)
        self.dotall = bool(flags & re.DOTALL)
        self.mapped = mapped
        # block: for many texts in one buffer, each followed by _SEPARATOR, which no
        # class accepts: a text's start or end is the buffer's or a separator.
        self.block = block
        self.exact = True

    # -- character classes: a set of byte values, emitted explicitly

    def _class(self, op, av) -> tuple[set[int], tuple[int, int, int]]:
        """(ASCII members, states of the non-ASCII letters/digits, spaces, other characters)."""
        if op is C.LITERAL:
            if av > 127:
                raise _Unsupported("non-ASCII literal")
            return (_swapcase({av}) if self.ignorecase else {av}), (NONE, NONE, NONE)
        if op is C.NOT_LITERAL:
            if av > 127:
                raise _Unsupported("non-ASCII literal")
            return set(_ASCII) - (_swapcase({av}) if self.ignorecase else {av}), (ALL, ALL, ALL)
        if op is C.ANY:
            return (set(_ASCII) if self.dotall else set(_ASCII) - {ord("\n")}), (ALL, ALL, ALL)
        if op is not C.IN:
            raise _Unsupported(f"opcode {op}")
        members, states, negate = set(), (NONE, NONE, NONE), False
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
                states = tuple(_union(a, b) for a, b in zip(states, _CATEGORIES[item_av]))
            else:
                raise _Unsupported(f"class item {item_op}")
        if self.ignorecase:
            members = _swapcase(members)
        if negate:
            members, states = set(_ASCII) - members, tuple(map(_negate, states))
        return members, states

    def _bytes(self, op, av) -> tuple[set[int], bool]:
        """(bytes the emitted class accepts, whether exactly): placeholders included when mapped."""
        members, states = self._class(op, av)
        exact = True
        if self.mapped:
            for byte, state in zip(_PLACEHOLDERS, states):
                # inexact where the byte stands for characters the class splits, or where an
                # ASCII text character equal to the byte is not treated as those characters
                exact = exact and state != SOME and (byte not in _ASCII or (byte in members) == (state == ALL))
                if state != NONE:
                    members = members | {byte}
        if not members:
            raise _Unsupported("empty class")
        self.exact = self.exact and exact
        return members, exact

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

    def sequence(self, items, start: bool = False, end: bool = False) -> str:
        """``start``/``end``: the items begin/end every match (anchors may sit there)."""
        items = list(items)
        out = []
        for pos, (op, av) in enumerate(items):
            first, last = start and pos == 0, end and pos == len(items) - 1
            if op in (C.ASSERT, C.ASSERT_NOT):
                out.append(self._lookaround(op, av, first=first, last=last))
            else:
                out.append(self.node(op, av, first, last))
        return "".join(out)

    def _text_start(self) -> str:
        return "(?:^|\\xff)" if self.block else "^"

    def _text_end(self) -> str:
        return "(?:\\xff|\\z)" if self.block else "\\z"

    def _lookaround(self, op, av, *, first: bool, last: bool) -> str:
        direction, body = av
        body = list(body)
        if len(body) != 1 or body[0][0] not in (C.LITERAL, C.NOT_LITERAL, C.IN, C.ANY):
            raise _Unsupported("lookaround that is not one character")
        if (direction == -1 and not first) or (direction == 1 and not last):
            raise _Unsupported("lookaround inside the pattern")
        members, exact = self._bytes(*body[0])
        if op is C.ASSERT:  # only the existence of a match matters, so consuming the neighbour is fine
            return self._emit_class(members)
        if not exact:  # its complement would report too little: drop it, and report too much
            return ""
        rest = set(_ASCII).union({_SPACE} if self.mapped else ()) - members
        if not rest:
            return self._text_start() if direction == -1 else self._text_end()
        other = self._emit_class(rest)
        if direction == -1:
            return f"(?:{self._text_start()}|{other})"
        return f"(?:{other}|{self._text_end()})"

    def _anchor(self, av, first: bool, last: bool) -> str:
        if av in (C.AT_BOUNDARY, C.AT_NON_BOUNDARY):  # the separator is a non-word byte, like a text's edge
            return "\\b" if av is C.AT_BOUNDARY else "\\B"
        if av in (C.AT_BEGINNING, C.AT_BEGINNING_STRING):
            if self.block and not first:
                raise _Unsupported("^ inside the pattern")
            return self._text_start()
        if av in (C.AT_END, C.AT_END_STRING):
            if not self.block:
                return "$" if av is C.AT_END else "\\z"
            if not last:
                raise _Unsupported("$ inside the pattern")
            # consuming what $ looks at is fine at the end of a match
            return f"(?:\\n?{self._text_end()})" if av is C.AT_END else self._text_end()
        raise _Unsupported(f"anchor {av}")

    def node(self, op, av, first: bool = False, last: bool = False) -> str:
        if op in (C.LITERAL, C.NOT_LITERAL, C.ANY, C.IN):
            return self._emit_class(self._bytes(op, av)[0])
        if op is C.BRANCH:
            return "(?:" + "|".join(self.sequence(alt, first, last) for alt in av[1]) + ")"
        if op is C.SUBPATTERN:
            _group, add_flags, del_flags, body = av
            if add_flags or del_flags:
                raise _Unsupported("scoped inline flags")
            return "(?:" + self.sequence(body, first, last) + ")"
        if op in (C.MAX_REPEAT, C.MIN_REPEAT):  # laziness does not change whether a match exists
            lo, hi, body = av
            bound = f"{{{lo},}}" if hi is C.MAXREPEAT else f"{{{lo},{hi}}}"
            return "(?:" + self.sequence(body) + ")" + bound
        if op is C.AT:
            return self._anchor(av, first, last)
        raise _Unsupported(f"opcode {op}")


def _translate(pattern: re.Pattern, mapped: bool, block: bool = False) -> tuple[bytes, bool]:
    if not isinstance(pattern.pattern, str):
        raise _Unsupported("bytes pattern")
    parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    if block and parsed.getwidth()[0] == 0:
        raise _Unsupported("a pattern that can match nothing has no place in a buffer")
    translator = _Translator(parsed.state.flags, mapped, block)
    return translator.sequence(parsed, True, True).encode("ascii"), translator.exact


def translate(pattern: re.Pattern, *, mapped: bool = False) -> bytes:
    """Hyperscan source for ``pattern`` (see the module docstring); raises ``_Unsupported``."""
    return _translate(pattern, mapped)[0]


def _compile_db(sources: dict[int, bytes], *, block: bool = False):
    if not sources:
        return None
    # per text: one report per pattern is all we need; a buffer: every match, to place it in its text
    flags = 0 if block else hyperscan.HS_FLAG_SINGLEMATCH | hyperscan.HS_FLAG_ALLOWEMPTY
    db = hyperscan.Database()
    db.compile(expressions=list(sources.values()), ids=list(sources), flags=[flags] * len(sources))
    return db


def _compiles(source: bytes) -> bool:
    try:
        _compile_db({0: source})
    except hyperscan.error:  # e.g. a repeat bound beyond hyperscan's limit
        return False
    return True


_SEPARATOR = b"\xff"
_COUNT_BLOCK = 1 << 21  # measured: 2 MiB blocks count fastest (0.08 s against 0.17 s unblocked, IMDB)
# bytes.translate table for word counts: 0 for what str.split splits on (and the separator), else 1
_NOT_SPACE = bytes(0 if chr(c).isspace() or c in (_SEPARATOR[0], _SPACE) else 1 for c in range(256))
_FIRST_BITS = np.array([((1 << 64) - 1) ^ ((1 << (64 - k)) - 1) for k in range(64)], dtype=np.uint64)  # k top bits


def _count_before(flags: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``[flags[:p].sum() for p in positions]`` (``flags`` bool, ``positions`` <= len(flags)),
    from a bit-packed copy: popcounts of 64-bit words, no per-byte int array."""
    packed = np.packbits(flags)  # big-endian: flag p is bit 63 - p % 64 of word p // 64, read as >u8
    words = np.zeros(len(packed) // 8 + 1, dtype=">u8")  # p // 64 may be one past the last full word
    words.view(np.uint8)[: len(packed)] = packed
    prefix = np.zeros(len(words), dtype=np.int64)
    np.cumsum(np.bitwise_count(words[:-1]), dtype=np.int64, out=prefix[1:])
    word, bit = positions >> 6, positions & 63
    return prefix[word] + np.bitwise_count(words[word] & _FIRST_BITS[bit])


# A buffer scan reports every match, in Python; past this many per text, a per-text
# scan (one report per pattern) is cheaper, so the buffer scan stops and hands over.
_MAX_MATCHES_PER_TEXT = 4


class ArrowTexts(Sequence):
    """An Arrow string array as a sequence of Python strings, each made when first read:
    a scan reads few of them (non-ASCII texts, hits to confirm)."""

    def __init__(self, array: pa.Array | pa.ChunkedArray):
        self.array = array
        self._all: list[str] | None = None

    def __len__(self) -> int:
        return len(self.array)

    def __getitem__(self, i):
        if self._all is not None:
            return self._all[i]
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self.array))
            return self.array[start:stop].to_pylist() if step == 1 else self.tolist()[i]
        return self.array[range(len(self.array))[i]].as_py()

    def __iter__(self):
        return iter(self.tolist())

    def tolist(self) -> list[str]:
        if self._all is None:
            self._all = self.array.to_pylist()
        return self._all


class ScanTexts:
    """Texts laid out for buffer scans, built once and reused for every matcher.

    ASCII texts go in one buffer, mapped non-ASCII texts in another, each text
    followed by a separator byte; texts with a letter folding into ASCII are left
    to Python's ``re``. Laid out by Arrow, the ASCII buffers are one per chunk, and
    a non-ASCII text is an empty text there (``ascii_only`` says which texts their
    answers hold for): no copy of the ASCII texts is made to leave the others out.
    """

    def __init__(self, texts: Sequence[str], *, arrow: pa.Array | pa.ChunkedArray | None = None):
        """``arrow``: the same texts as an Arrow string array with no nulls, when at hand:
        the ASCII buffers are then laid out by Arrow, and only non-ASCII texts become Python
        strings (``texts`` may be lazy, as ``ArrowTexts``)."""
        self.texts = texts
        self.re_idx: list[int] = []
        #: texts whose answers from the ASCII buffers hold (None: all texts in them)
        self.ascii_only: np.ndarray | None = None
        if arrow is not None:
            is_ascii = pc.string_is_ascii(arrow).to_numpy(zero_copy_only=False)
            others = np.flatnonzero(~is_ascii).tolist()
            self.mapped = self._map(others, arrow.filter(pa.array(~is_ascii)).to_pylist())
            self.ascii_parts = self._arrow_layouts(is_ascii, arrow)
            self.ascii_only = None if is_ascii.all() else is_ascii
            return
        ascii_idx, others = [], []
        for i, text in enumerate(texts):
            (ascii_idx if text.isascii() else others).append(i)
        ascii_texts = [texts[i] for i in ascii_idx]
        # ASCII text and a 0xff separator: latin-1 gives one byte per character
        self.ascii_parts = [self._layout(ascii_idx, ascii_texts,
                                         ("\xff".join(ascii_texts) + "\xff").encode("latin-1"))]
        self.mapped = self._map(others, [texts[i] for i in others])

    def _map(self, positions: list[int], texts: list[str]) -> tuple[np.ndarray, bytes, np.ndarray]:
        """The layout of the non-ASCII ``texts`` (at ``positions``), mapped; those with a
        letter folding into ASCII go to ``re_idx`` instead."""
        mapped_idx, mapped = [], []
        to_re = bytes([_TO_RE])
        for i, text in zip(positions, texts):
            m = map_to_ascii(text)
            if to_re in m:
                self.re_idx.append(i)
            else:
                mapped_idx.append(i)
                mapped.append(m)
        return self._layout(mapped_idx, mapped, _SEPARATOR.join(mapped) + _SEPARATOR)

    @staticmethod
    def _arrow_layouts(is_ascii: np.ndarray, texts: pa.Array | pa.ChunkedArray) -> list[tuple]:
        """``_layout`` of each chunk of ``texts``, each text followed by the separator,
        joined by Arrow; a text that is not ASCII (``is_ascii``) is left empty."""
        chunks = texts.chunks if isinstance(texts, pa.ChunkedArray) else [texts]
        empty, separator = pa.scalar(b"", pa.large_binary()), pa.scalar(_SEPARATOR, pa.large_binary())
        out, base = [], 0
        for chunk in chunks:
            n = len(chunk)
            if not n:
                continue
            binary = chunk.cast(pa.large_binary())  # 64-bit offsets: no limit of 2 GiB; the bytes are shared
            keep = is_ascii[base : base + n]
            if not keep.all():  # the others as nulls (a validity bitmap over the same buffers), joined as ""
                bits = np.packbits(np.concatenate([np.zeros(binary.offset, dtype=bool), keep]), bitorder="little")
                binary = pa.Array.from_buffers(pa.large_binary(), n, [pa.py_buffer(bits), *binary.buffers()[1:]],
                                               offset=binary.offset)
            # text + separator + "": a null text gives just the separator
            joined = pc.binary_join_element_wise(binary, empty, separator, null_handling="replace",
                                                 null_replacement=b"")
            _, offsets, data = joined.buffers()
            offsets = np.frombuffer(offsets, dtype=np.int64)[joined.offset : joined.offset + n + 1]
            # a view of Arrow's buffer, not a copy: hyperscan and the word counts read any bytes-like object
            buffer = memoryview(data.slice(int(offsets[0]), int(offsets[-1] - offsets[0])))
            starts = (offsets[:-1] - offsets[0]).astype(np.int64)
            out.append((np.arange(base, base + n, dtype=np.int64), buffer, starts))
            base += n
        return out

    def non_ascii_parts(self) -> dict:
        """The costly part of the layout, for keeping it: the mapped non-ASCII texts
        (``mapped_idx`` and ``mapped_starts``, int64, and ``mapped_buffer``) and the texts
        left to Python's ``re`` (``re_idx``). ``restore`` takes it back."""
        return {"mapped_idx": np.asarray(self.mapped[0], dtype=np.int64), "mapped_buffer": self.mapped[1],
                "mapped_starts": np.asarray(self.mapped[2], dtype=np.int64),
                "re_idx": np.asarray(self.re_idx, dtype=np.int64)}

    @classmethod
    def restore(cls, texts: Sequence[str], arrow: pa.Array | pa.ChunkedArray, parts: dict) -> ScanTexts:
        """``ScanTexts(texts, arrow=arrow)`` with its non-ASCII part taken from what
        ``non_ascii_parts()`` gave for the same texts: only the ASCII buffers are laid out
        again (joined by Arrow: ~0.01 s for IMDB's 55 MB, against ~0.07 s for the rest)."""
        self = cls.__new__(cls)
        self.texts = texts
        self.re_idx = parts["re_idx"].tolist()
        self.mapped = parts["mapped_idx"], parts["mapped_buffer"], parts["mapped_starts"]
        is_ascii = np.ones(len(texts), dtype=bool)
        is_ascii[parts["mapped_idx"]] = is_ascii[parts["re_idx"]] = False
        self.ascii_parts = self._arrow_layouts(is_ascii, arrow)
        self.ascii_only = None if is_ascii.all() else is_ascii
        return self

    def word_counts(self) -> np.ndarray:
        """(n,) int64: ``len(text.split())`` of each text, counted on the buffers.

        A word starts where a non-space byte follows a space or a separator; in a
        mapped text a non-ASCII space is its own placeholder. Texts left to Python's
        ``re`` are split in Python.
        """
        counts = np.zeros(len(self.texts), dtype=np.int64)
        # the mapped texts after the ASCII buffers: their counts replace those of their empty places there
        for idx, buffer, starts in (*self.ascii_parts, self.mapped):
            if not len(idx):
                continue
            bounds = np.append(starts, len(buffer))
            # whole texts, ~_COUNT_BLOCK bytes at a time: bounded memory, and the block stays in cache
            cuts = np.unique(np.searchsorted(bounds, np.arange(0, len(buffer), _COUNT_BLOCK), side="right") - 1)
            cuts = np.append(cuts[cuts < len(idx)], len(idx))
            view = memoryview(buffer)
            for a, b in itertools.pairwise(cuts.tolist()):
                lo, hi = int(bounds[a]), int(bounds[b])
                # 0: a space or a separator, 1: anything else
                flags = np.frombuffer(view[lo:hi].tobytes().translate(_NOT_SPACE), dtype=np.uint8)
                word_starts = np.empty(len(flags), dtype=bool)
                word_starts[0] = flags[0]
                np.greater(flags[1:], flags[:-1], out=word_starts[1:])
                counts[idx[a:b]] = np.diff(_count_before(word_starts, bounds[a : b + 1] - lo))
        counts[self.re_idx] = [len(self.texts[i].split()) for i in self.re_idx]
        return counts

    def char_counts(self) -> np.ndarray:
        """(n,) int64: ``len(text)`` of each text: one byte per character in the buffers."""
        counts = np.zeros(len(self.texts), dtype=np.int64)
        for idx, buffer, starts in (*self.ascii_parts, self.mapped):  # mapped last, as in word_counts
            counts[idx] = np.diff(np.append(starts, len(buffer))) - 1  # less the separator
        counts[self.re_idx] = [len(self.texts[i]) for i in self.re_idx]
        return counts

    @staticmethod
    def _layout(idx: list[int], parts: list, buffer: bytes) -> tuple[np.ndarray, bytes, np.ndarray]:
        """(text indices, buffer, start offset of each text in it)."""
        lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts)) + 1
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
        return np.asarray(idx, dtype=np.int64), buffer, starts


class _TooManyMatches(Exception):
    pass


class PatternMatcher:
    """``search(texts)[i, j] == bool(patterns[j].search(texts[i]))``, computed in bulk."""

    def __init__(self, patterns: Sequence[re.Pattern]):
        self.patterns = [p if isinstance(p, re.Pattern) else re.compile(p) for p in patterns]
        exact: dict[int, bytes] = {}
        mapped: dict[int, bytes] = {}
        #: patterns whose hits on mapped (non-ASCII) texts are answers, not candidates
        self.mapped_exact: set[int] = set()
        if hyperscan is not None:
            for j, pattern in enumerate(self.patterns):
                try:
                    exact[j] = translate(pattern)
                    mapped[j], is_exact = _translate(pattern, mapped=True)
                except (_Unsupported, re.error, UnicodeEncodeError):
                    exact.pop(j, None)
                    continue
                if is_exact:
                    self.mapped_exact.add(j)
        self._sources = exact, mapped
        self._set_scanned(exact)
        # databases are compiled on first use (~10 ms a pattern): a buffer scan needs only its own
        self._per_text: tuple | None = None
        self._block: tuple | None | bool = False  # False: not built yet; None: not possible

    def _set_scanned(self, scanned) -> None:
        self.scanned = sorted(scanned)
        #: patterns Python's re runs on every text
        self.fallback = [j for j in range(len(self.patterns)) if j not in scanned]

    def _text_dbs(self) -> tuple:
        """(ASCII, mapped) databases for text-by-text scans."""
        if self._per_text is None:
            exact, mapped = self._sources
            try:
                self._per_text = _compile_db(exact), _compile_db(mapped)
            except hyperscan.error:  # e.g. a repeat bound beyond hyperscan's limit: find which
                exact = {j: src for j, src in exact.items() if _compiles(src) and _compiles(mapped[j])}
                mapped = {j: mapped[j] for j in exact}
                self._per_text = _compile_db(exact), _compile_db(mapped)
                self._set_scanned(exact)
        return self._per_text

    def search(self, texts: Sequence[str] | ScanTexts) -> np.ndarray:
        """Hits (texts x patterns). ``ScanTexts`` of the texts allow a buffer scan:
        one call for all texts instead of one per text."""
        layout = texts if isinstance(texts, ScanTexts) else None
        texts = layout.texts if layout is not None else texts
        hits = np.zeros((len(texts), len(self.patterns)), dtype=bool)
        if self.scanned:
            with scan_lock():
                if layout is not None and self._block_dbs() is not None:
                    try:
                        self._scan_buffers(layout, hits)
                    except _TooManyMatches:  # frequent patterns: per text from now on
                        self._block = None
                        hits[:] = False
                if layout is None or self._block is None:
                    self._scan(texts, hits)
        for j in self.fallback:
            search = self.patterns[j].search
            hits[:, j] = [search(t) is not None for t in texts]
        return hits

    def has_buffer_form(self) -> bool:
        """Whether ``search(ScanTexts(...))`` scans buffers (else it goes text by text)."""
        return bool(self.scanned) and self._block_dbs() is not None

    def _block_dbs(self):
        """(ASCII, mapped) databases for buffer scans, or None when a pattern has no buffer form."""
        if self._block is False:
            try:
                sources = [{j: _translate(self.patterns[j], mapped, block=True)[0] for j in self.scanned}
                           for mapped in (False, True)]
                self._block = tuple(_compile_db(src, block=True) for src in sources)
            except (_Unsupported, hyperscan.error):
                self._block = None
        return self._block

    def _scan_buffers(self, layout: ScanTexts, hits: np.ndarray) -> None:
        exact_db, mapped_db = self._block
        limit = _MAX_MATCHES_PER_TEXT * len(layout.texts) + 1000
        ids: list[int] = []
        ends: list[int] = []

        def on_match(pattern_id, start, end, flags, context):
            ids.append(pattern_id)
            ends.append(end)
            return len(ids) > limit  # True stops the scan

        buffers = [(part, exact_db, None) for part in layout.ascii_parts]
        for (idx, buffer, starts), db, answers in buffers + [(layout.mapped, mapped_db, self.mapped_exact)]:
            if not len(idx):
                continue
            ids.clear()
            ends.clear()
            try:
                db.scan(buffer, match_event_handler=on_match)
            except hyperscan.ScanTerminated:  # on_match stopped it: too many matches
                raise _TooManyMatches from None
            # a match ends inside its text or on the separator right after it
            rows = idx[np.searchsorted(starts, np.asarray(ends, dtype=np.int64) - 1, side="right") - 1]
            cols = np.asarray(ids, dtype=np.int64)
            if answers is None:
                if layout.ascii_only is not None:  # a non-ASCII text is empty here: nothing of it counts
                    rows, cols = rows[layout.ascii_only[rows]], cols[layout.ascii_only[rows]]
                hits[rows, cols] = True
                continue
            sure = np.isin(cols, list(answers))
            hits[rows[sure], cols[sure]] = True
            for i, j in set(zip(rows[~sure].tolist(), cols[~sure].tolist())):  # candidates: Python decides
                hits[i, j] = self.patterns[j].search(layout.texts[i]) is not None
        for i in layout.re_idx:
            for j in self.scanned:
                hits[i, j] = self.patterns[j].search(layout.texts[i]) is not None

    def _scan(self, texts: Sequence[str], hits: np.ndarray) -> None:
        found: list[int] = []
        on_match = lambda pattern_id, start, end, flags, context: found.append(pattern_id)
        exact_db, mapped_db = self._text_dbs()
        if exact_db is None:
            return
        exact_scan, mapped_scan, answers = exact_db.scan, mapped_db.scan, self.mapped_exact
        to_re = bytes([_TO_RE])
        for i, text in enumerate(texts):
            if text.isascii():
                exact_scan(text.encode("ascii"), match_event_handler=on_match)
                if found:
                    hits[i, found] = True
                    found.clear()
                continue
            mapped = map_to_ascii(text)
            if to_re in mapped:  # a letter folding into ASCII (or a \x02 of its own): Python decides
                for j in self.scanned:
                    hits[i, j] = self.patterns[j].search(text) is not None
                continue
            mapped_scan(mapped, match_event_handler=on_match)
            for j in found:
                hits[i, j] = j in answers or self.patterns[j].search(text) is not None
            found.clear()
