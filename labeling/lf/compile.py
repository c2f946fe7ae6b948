"""Plain ``@labeling_function`` LFs compiled to scanner specs, when their source allows.

Snorkel users write keyword and regex LFs as ordinary Python::

    WORDS = ("great", "excellent")

    @labeling_function()
    def praise(x):
        if any(w in x.text.lower() for w in WORDS) and len(x.text.split()) > 20:
            return POS
        return ABSTAIN

Called row by row such an LF runs at a few thousand rows per second. ``compile_lf``
reads its source with ``ast`` and, when every statement has one of the shapes
below, turns it into a ``RuleSpec``: the regexes and length thresholds it tests
(run by the applier in the same multi-pattern scan and word-count pass as the
declarative LFs) and a decision list over them. Anything else is left to be
called as today, with the reason recorded (``lf_summary(..., lfs=...)`` shows it).

Shapes recognised (``VIEW`` is ``x.f`` / ``x["f"]``, or a local name bound to it,
optionally ``.lower()``; ``x.f`` only where it reads a column on the row Snorkel
passes: ``x.name``, ``x.index``, ``x.size``... are the Series' own attributes):

- ``re.search|match|fullmatch|findall(CONST, x.f[, FLAGS])``, ``PATTERN.search(x.f)``
  with a compiled module-level pattern, ``... is None`` / ``is not None``;
- ``CONST in VIEW`` / ``not in``, a substring test: with ``.lower()`` it becomes a
  case-sensitive regex whose classes hold exactly the characters that lower-case
  to each character of the word, so it agrees with ``str.lower`` on every text
  (Kelvin sign and dotted capital I included); a word with a sigma is not
  compiled (``str.lower`` makes Σ final "ς" or "σ" by its neighbours), nor are
  ``.upper()`` and ``.casefold()`` (one character can become several: ß -> SS);
- ``len(x.f)`` / ``len(x.f.split())`` compared with a number (chains too);
- ``and`` / ``or`` / ``not``, ``bool(...)``, ``any(...)`` / ``all(...)`` over a
  generator on a constant collection;
- statements: a docstring, ``name = VIEW``, ``if``/``elif``/``else`` whose
  branches return, ``return LABEL [if COND else LABEL]``.

``CONST`` is a literal or a name bound (module global, closure, resource or
default argument) to a str/int/tuple/list/set of them, or ``re`` flags. Every
path must end in a return of an int label >= -1.

Votes are identical to calling the LF: the tests compare with Snorkel's
``PandasLFApplier`` on IMDB and with calling the LF on hypothesis-generated text.
"""

from __future__ import annotations

import ast
import builtins
import contextvars
import functools
import inspect
import math
import re
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .declarative import LengthSpec, PatternSpec, lf_spec
from .rows import reads_column

__all__ = ["CompiledLF", "RuleSpec", "compile_lf", "fast_spec"]

# Expressions of a RuleSpec are nested tuples (hashable, frozen):
#   ("const", bool) | ("pat", i) | ("len", i) | ("and", (e, ...)) | ("or", (e, ...)) | ("not", e)
Expr = tuple


@dataclass(frozen=True)
class RuleSpec:
    """A compiled plain LF: the first rule whose condition holds gives the vote.

    ``patterns[i]`` is the ``("pat", i)`` atom (``re.search`` on ``field``);
    ``lengths[i] = (unit, lo, hi)`` the ``("len", i)`` atom, ``lo <= n <= hi``
    (``hi`` None: no upper bound) with ``n`` counted as in ``LengthSpec``.
    The last rule's condition is always true.
    """

    field: str
    patterns: tuple[re.Pattern, ...]
    lengths: tuple[tuple[str, int, int | None], ...]
    rules: tuple[tuple[Expr, int], ...]

    @property
    def units(self) -> set[str]:
        return {unit for unit, _, _ in self.lengths}

    @property
    def labels(self) -> tuple[int, ...]:
        return tuple(label for _, label in self.rules)

    def votes(self, hits: np.ndarray, sizes: Mapping[str, np.ndarray]) -> np.ndarray:
        """(n,) int64 votes from ``hits`` (n, len(patterns)) bool and ``sizes[unit]`` (n,) int."""
        n = hits.shape[0]
        lengths = [(sizes[u] >= lo) & (sizes[u] <= (np.iinfo(np.int64).max if hi is None else hi))
                   for u, lo, hi in self.lengths]

        def value(e: Expr) -> np.ndarray:
            kind = e[0]
            if kind == "const":
                return np.full(n, e[1], dtype=bool)
            if kind == "pat":
                return hits[:, e[1]]
            if kind == "len":
                return lengths[e[1]]
            if kind == "not":
                return ~value(e[1])
            parts = [value(c) for c in e[1]]
            return np.logical_and.reduce(parts) if kind == "and" else np.logical_or.reduce(parts)

        out = np.empty(n, dtype=np.int64)
        open_ = np.ones(n, dtype=bool)
        for cond, label in self.rules:
            take = open_ & value(cond)
            out[take] = label
            open_ &= ~take
        return out

    def vote(self, text: str) -> int:
        """The vote on one text (Python's ``re``; for tests and single rows)."""
        hits = np.array([[bool(p.search(text)) for p in self.patterns]], dtype=bool).reshape(1, len(self.patterns))
        sizes = {u: np.array([LengthSpec(self.field, u, 0, None, 0).size(text)]) for u in self.units}
        return int(self.votes(hits, sizes)[0])


@dataclass(frozen=True)
class CompiledLF:
    """What ``compile_lf`` made of an LF: a spec, or ``None`` and why not."""

    spec: PatternSpec | LengthSpec | RuleSpec | None
    reason: str  # "declarative", "compiled", or why it runs as Python

    @property
    def compiled(self) -> bool:
        return self.spec is not None


class _NotCompiled(Exception):
    pass


def _fail(node: ast.AST | None, what: str):
    line = f"line {node.lineno + _LINE_OFFSET.get()}: " if node is not None and hasattr(node, "lineno") else ""
    raise _NotCompiled(f"{line}{what}")


# the function's first line in its file, less one: reasons name lines of the file
_LINE_OFFSET: contextvars.ContextVar[int] = contextvars.ContextVar("line_offset", default=0)


_MISSING = object()


def _is_label(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and int(v) >= -1


class _Compiler:
    def __init__(self, f, resources: Mapping):
        self.f = f
        self.globals = f.__globals__
        self.cells = {}
        if f.__closure__:
            self.cells = {name: cell for name, cell in zip(f.__code__.co_freevars, f.__closure__)}
        self.resources = dict(resources)
        self.locals: dict[str, object] = {}  # parameters and aliases: name -> view | constant
        self.param = None
        self.patterns: list[re.Pattern] = []
        self.lengths: list[tuple[str, int, int | None]] = []
        self.fields: set[str] = set()
        self.assigned: set[str] = set()

    # ------------------------------------------------------------ names and constants

    def resolve(self, name: str, node):
        if name in self.locals:
            return self.locals[name]
        if name in self.assigned:  # a local of the function not bound (yet) on this path
            _fail(node, f"local {name!r} read before it is bound")
        if name in self.cells:
            try:
                return self.cells[name].cell_contents
            except ValueError:
                _fail(node, f"closure variable {name!r} is not bound")
        if name in self.globals:
            return self.globals[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        _fail(node, f"name {name!r} is not defined")

    def const(self, node):
        """A constant value the LF reads (literal, or a name bound outside the call)."""
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            value = self.resolve(node.id, node)
            if isinstance(value, _Const):
                return value.value
            if isinstance(value, (_View, _Param, _Cond)):
                _fail(node, f"{node.id!r} is the row or a field, not a constant")
            return value
        if isinstance(node, ast.Attribute):
            base = self.const(node.value)
            if not inspect.ismodule(base) and not isinstance(base, type):
                _fail(node, "attribute of a non-module value")
            try:
                return getattr(base, node.attr)
            except AttributeError:
                _fail(node, f"no attribute {node.attr!r}")
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            return tuple(self.const(e) for e in node.elts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            value = self.const(node.operand)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return -value
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.BitOr, ast.Add)):
            left, right = self.const(node.left), self.const(node.right)
            if isinstance(node.op, ast.BitOr) and isinstance(left, int) and isinstance(right, int):
                return left | right
            if isinstance(node.op, ast.Add) and isinstance(left, str) and isinstance(right, str):
                return left + right
        if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
            # "|".join(WORDS) and re.escape(WORD): pure functions of constants
            if isinstance(node.func, ast.Attribute) and node.func.attr == "join":
                sep, items = self.const(node.func.value), self.const(node.args[0])
                if isinstance(sep, str) and isinstance(items, (tuple, list)) and all(isinstance(i, str) for i in items):
                    return sep.join(items)
            if isinstance(node.func, ast.Attribute) and node.func.attr == "escape" and self.is_re(node.func.value):
                text = self.const(node.args[0])
                if isinstance(text, str):
                    return re.escape(text)
        _fail(node, f"not a constant: {ast.unparse(node)}")

    def is_builtin(self, node, fn) -> bool:
        if not isinstance(node, ast.Name) or node.id in self.locals:
            return False
        try:
            return self.resolve(node.id, node) is fn
        except _NotCompiled:
            return False

    def is_re(self, node) -> bool:
        return isinstance(node, ast.Name) and node.id not in self.locals and self.globals.get(node.id) is re

    # ------------------------------------------------------------ fields

    def view(self, node, *, lower_ok: bool = True):
        """The field (and whether lower-cased) an expression reads, or None."""
        if isinstance(node, ast.Name) and isinstance(self.locals.get(node.id), _View):
            v = self.locals[node.id]
            return v if lower_ok or not v.lower else None
        if isinstance(node, ast.Attribute) and self._is_param(node.value):
            if not reads_column(node.attr):  # x.name is the row's index label, x.size its length...
                _fail(node, f"{ast.unparse(node)} is the row's own attribute (as on a pandas Series), "
                            f"not the column {node.attr!r}")
            return self._field(node.attr)
        if (isinstance(node, ast.Subscript) and self._is_param(node.value) and isinstance(node.slice, ast.Constant)
                and isinstance(node.slice.value, str)):
            return self._field(node.slice.value)
        if (lower_ok and isinstance(node, ast.Call) and not node.args and not node.keywords
                and isinstance(node.func, ast.Attribute) and node.func.attr == "lower"):
            inner = self.view(node.func.value, lower_ok=False)
            return _View(inner.field, True) if inner is not None else None
        return None

    def _is_param(self, node) -> bool:
        return isinstance(node, ast.Name) and node.id == self.param

    def _field(self, name: str) -> "_View":
        self.fields.add(name)
        return _View(name, False)

    # ------------------------------------------------------------ atoms

    def pattern(self, regex: re.Pattern) -> Expr:
        for i, p in enumerate(self.patterns):
            if p.pattern == regex.pattern and p.flags == regex.flags:
                return ("pat", i)
        self.patterns.append(regex)
        return ("pat", len(self.patterns) - 1)

    def length(self, unit: str, lo: int, hi: int | None) -> Expr:
        lo = max(lo, 0)
        if hi is not None and hi < lo:
            return ("const", False)
        key = (unit, lo, hi)
        if key not in self.lengths:
            self.lengths.append(key)
        return ("len", self.lengths.index(key))

    def substring(self, word, view: "_View", node) -> Expr:
        if not isinstance(word, str):
            _fail(node, "`in` with a non-string constant")
        if not view.lower:
            return self.pattern(re.compile(re.escape(word)))
        source = _lowered_substring(word)
        if source is None:
            _fail(node, f"{word!r} in .lower(): a combining dot above (U+0307), which U+0130 lowers to after 'i'")
        if source is _CONTEXTUAL:
            _fail(node, f"{word!r} in .lower(): capital sigma lowers to 'ς' or 'σ' by the letters around it "
                        "(Unicode's Final_Sigma), which a regex over the original text cannot see")
        return ("const", False) if source is False else self.pattern(re.compile(source))

    # ------------------------------------------------------------ conditions

    def cond(self, node, subst: Mapping[str, object] | None = None) -> Expr:
        if subst:
            saved = dict(self.locals)
            self.locals.update(subst)
            try:
                return self.cond(node)
            finally:
                self.locals = saved
        if isinstance(node, ast.Name) and isinstance(self.locals.get(node.id), _Cond):
            return self.locals[node.id].expr
        if isinstance(node, ast.BoolOp):
            return _merge_patterns(self, "and" if isinstance(node.op, ast.And) else "or",
                                   [self.cond(v) for v in node.values])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ("not", self.cond(node.operand))
        if isinstance(node, ast.Constant):
            return ("const", bool(node.value))
        if isinstance(node, ast.Call) and self.is_builtin(node.func, bool) and len(node.args) == 1 and not node.keywords:
            return self.cond(node.args[0])
        if isinstance(node, ast.Call) and (self.is_builtin(node.func, any) or self.is_builtin(node.func, all)):
            return self.quantifier(node, "or" if self.is_builtin(node.func, any) else "and")
        if isinstance(node, ast.Compare):
            return self.compare(node)
        match = self.match(node)
        if match is not None:
            return match
        _fail(node, f"condition not recognised: {ast.unparse(node)}")

    def quantifier(self, node: ast.Call, kind: str) -> Expr:
        if len(node.args) != 1 or node.keywords or not isinstance(node.args[0], (ast.GeneratorExp, ast.ListComp)):
            _fail(node, "any()/all() needs one generator")
        gen = node.args[0]
        if len(gen.generators) != 1 or gen.generators[0].ifs or gen.generators[0].is_async:
            _fail(node, "any()/all(): one `for` without `if`")
        comp = gen.generators[0]
        if not isinstance(comp.target, ast.Name):
            _fail(node, "any()/all(): the loop variable must be a name")
        values = self.const(comp.iter)
        if isinstance(values, (set, frozenset)):
            values = sorted(values, key=repr)  # order does not change any()/all()
        if not isinstance(values, (tuple, list)) or not all(isinstance(v, (str, int, re.Pattern)) for v in values):
            _fail(node, "any()/all() over something other than a constant collection of str/int")
        parts = [self.cond(gen.elt, {comp.target.id: _Const(v)}) for v in values]
        return _merge_patterns(self, kind, parts) if parts else ("const", kind == "and")

    def compare(self, node: ast.Compare) -> Expr:
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.In, ast.NotIn)):
            view = self.view(node.comparators[0])
            if view is None:
                _fail(node, f"`in` on something other than a text field: {ast.unparse(node.comparators[0])}")
            atom = self.substring(self.value(node.left), view, node)
            return ("not", atom) if isinstance(node.ops[0], ast.NotIn) else atom
        if len(node.ops) == 1 and isinstance(node.ops[0], (ast.Is, ast.IsNot)):
            other = node.comparators[0]
            if isinstance(other, ast.Constant) and other.value is None:
                match = self.match(node.left)
                if match is not None:
                    return match if isinstance(node.ops[0], ast.IsNot) else ("not", match)
            _fail(node, "`is` other than a regex match against None")
        # len(...) comparisons, chains included: a < len(t) <= b
        operands = [node.left, *node.comparators]
        parts = []
        for left, op, right in zip(operands, node.ops, operands[1:]):
            lhs, rhs = self.size(left), self.size(right)
            if (lhs is None) == (rhs is None):
                _fail(node, f"comparison not recognised: {ast.unparse(node)}")
            if lhs is None:  # k op len(...) -> len(...) flipped-op k
                op, (unit, _), k = _FLIP.get(type(op), type(op)), rhs, self.number(left)
            else:
                op, (unit, _), k = type(op), lhs, self.number(right)
            parts.append(self.threshold(unit, op, k, node))
        return parts[0] if len(parts) == 1 else ("and", tuple(parts))

    def threshold(self, unit: str, op: type, k: float, node) -> Expr:
        if op is ast.Gt:
            return self.length(unit, math.floor(k) + 1, None)
        if op is ast.GtE:
            return self.length(unit, math.ceil(k), None)
        if op is ast.Lt:
            return self.length(unit, 0, math.ceil(k) - 1)
        if op is ast.LtE:
            return self.length(unit, 0, math.floor(k))
        if op in (ast.Eq, ast.NotEq):
            atom = self.length(unit, int(k), int(k)) if float(k).is_integer() else ("const", False)
            return atom if op is ast.Eq else ("not", atom)
        _fail(node, "length compared with an operator other than < <= > >= == !=")

    def size(self, node):
        """``len(VIEW)`` -> ("chars", view), ``len(VIEW.split())`` -> ("words", view), else None."""
        if not (isinstance(node, ast.Call) and self.is_builtin(node.func, len) and len(node.args) == 1):
            return None
        arg = node.args[0]
        if (isinstance(arg, ast.Call) and isinstance(arg.func, ast.Attribute) and arg.func.attr == "split"
                and not arg.args and not arg.keywords):
            view = self.view(arg.func.value, lower_ok=False)
            return ("words", view) if view is not None else None
        view = self.view(arg, lower_ok=False)
        return ("chars", view) if view is not None else None

    def number(self, node) -> float:
        value = self.const(node)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
            _fail(node, f"length compared with {value!r}, not a finite number")
        return value

    def value(self, node):
        return self.const(node)

    def match(self, node) -> Expr | None:
        """A regex search on a raw field, as a pattern atom; None if ``node`` is not one."""
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            return None
        method = node.func.attr
        if method not in ("search", "match", "fullmatch", "findall"):
            return None
        kwargs = {k.arg: k.value for k in node.keywords}
        if self.is_re(node.func.value):
            args = list(node.args)
            names = ["pattern", "string", "flags"]
            if len(args) > 3 or any(k not in names[len(args):] for k in kwargs):
                _fail(node, f"re.{method} with unexpected arguments")
            bound = dict(zip(names, args)) | kwargs
            if "pattern" not in bound or "string" not in bound:
                _fail(node, f"re.{method} without a pattern or a string")
            pattern = self.value(bound["pattern"])
            flags = self.value(bound["flags"]) if "flags" in bound else 0
            if isinstance(pattern, re.Pattern):
                if flags:
                    _fail(node, "flags with a compiled pattern")
                compiled = pattern
            elif isinstance(pattern, str) and isinstance(flags, int):
                try:
                    compiled = re.compile(pattern, flags)
                except re.error as exc:
                    _fail(node, f"invalid regex {pattern!r}: {exc}")
            else:
                _fail(node, "re pattern is not a constant str")
            string = bound["string"]
        else:
            try:
                compiled = self.value(node.func.value)
            except _NotCompiled:
                return None
            if not isinstance(compiled, re.Pattern):
                return None
            if len(node.args) != 1 or node.keywords:
                _fail(node, f"{method}() with positions or keywords")
            string = node.args[0]
        if not isinstance(compiled.pattern, str):
            _fail(node, "bytes pattern")
        view = self.view(string)
        if view is None:
            _fail(node, f"regex on something other than a text field: {ast.unparse(string)}")
        if view.lower:
            _fail(node, "regex on .lower() text (use re.IGNORECASE)")
        if method in ("search", "findall"):  # findall is non-empty exactly when search matches
            return self.pattern(compiled)
        anchored = rf"\A(?:{compiled.pattern})" + (r"\Z" if method == "fullmatch" else "")
        try:
            return self.pattern(re.compile(anchored, compiled.flags))
        except re.error:
            _fail(node, f"cannot anchor {compiled.pattern!r} for re.{method}")

    # ------------------------------------------------------------ statements

    def label(self, node) -> int:
        value = self.value(node)
        if not _is_label(value):
            _fail(node, f"returns {ast.unparse(node)} = {value!r}, not an int label >= -1")
        return int(value)

    def block(self, stmts, prefix: tuple, rules: list) -> bool:
        """Append ``stmts``' (cond, label) rules; True when every path returns."""
        for k, stmt in enumerate(stmts):
            if isinstance(stmt, ast.Pass) or (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):
                continue
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
                # a field (``text = x.text.lower()``) or a test read for its truth (``hit = re.search(...)``)
                value = self.view(stmt.value)
                if value is None:
                    try:
                        value = _Cond(self.cond(stmt.value))
                    except _NotCompiled:
                        _fail(stmt, "assignment other than `name = x.field[.lower()]` or `name = <test>`")
                self.locals[stmt.targets[0].id] = value
                continue
            if isinstance(stmt, ast.Return):
                if stmt.value is None:
                    _fail(stmt, "returns None")
                if isinstance(stmt.value, ast.IfExp):
                    cond = self.cond(stmt.value.test)
                    rules.append((_and(prefix + (cond,)), self.label(stmt.value.body)))
                    rules.append((_and(prefix), self.label(stmt.value.orelse)))
                else:
                    rules.append((_and(prefix), self.label(stmt.value)))
                return True
            if isinstance(stmt, ast.If):
                cond = self.cond(stmt.test)
                bound = dict(self.locals)  # names bound in a branch that returns are gone after it
                if not self.block(stmt.body, prefix + (cond,), rules):
                    _fail(stmt, "an `if` branch that does not return")
                self.locals = bound
                # the body always returns, so what follows runs exactly when cond is false:
                # first-match order of the rules already says that
                if self.block(stmt.orelse + stmts[k + 1 :], prefix, rules):
                    return True
                return False
            _fail(stmt, f"statement not recognised: {type(stmt).__name__}")
        return False


_FLIP = {ast.Lt: ast.Gt, ast.Gt: ast.Lt, ast.LtE: ast.GtE, ast.GtE: ast.LtE}


@dataclass(frozen=True)
class _View:
    field: str
    lower: bool


@dataclass(frozen=True)
class _Cond:
    expr: tuple


@dataclass(frozen=True)
class _Const:
    value: object


def _and(parts: tuple) -> Expr:
    return ("const", True) if not parts else parts[0] if len(parts) == 1 else ("and", parts)


def _merge_patterns(c: _Compiler, kind: str, parts: list) -> Expr:
    """``any`` over substring/regex atoms as one alternation (one pattern instead of many)."""
    if kind == "or":
        # group-free patterns only: merging would renumber backreferences
        plain = [e for e in parts if e[0] == "pat" and c.patterns[e[1]].flags == re.UNICODE
                 and not c.patterns[e[1]].groups]
        if len(plain) > 1:
            merged = re.compile("|".join(f"(?:{c.patterns[e[1]].pattern})" for e in plain))
            rest = [e for e in parts if e not in plain]
            # the parts' own atoms stay in the pattern list until _prune drops them
            return ("or", (c.pattern(merged), *rest)) if rest else c.pattern(merged)
    return (kind, tuple(parts))


@functools.cache
def _lowers_to() -> dict[str, str]:
    """char -> every character whose ``.lower()`` is that one char, for the chars
    ``.lower()`` changes or produces (all of Unicode lower-cased at C speed, once)."""
    codes = np.arange(sys.maxunicode + 1, dtype=np.uint32)
    codes = codes[codes != 0x130]  # the one character that lowers to two
    everything = codes.tobytes().decode("utf-32-le", "surrogatepass")
    lowered = np.frombuffer(everything.lower().encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    out: dict[str, str] = {}
    for src in np.flatnonzero(lowered != codes).tolist():
        target = chr(lowered[src])
        out[target] = out.get(target, target if target.lower() == target else "") + chr(codes[src])
    return out


def _sources(ch: str) -> str:
    if ch.isascii():  # no need for the table: only A-Z and the Kelvin sign lower to ASCII
        return ch + ch.upper() + ("\u212a" if ch == "k" else "") if "a" <= ch <= "z" else ("" if "A" <= ch <= "Z" else ch)
    return _lowers_to().get(ch, ch if ch.lower() == ch else "")


# Lower-case letters that str.lower() makes from a character by its context: U+03A3 is the
# only character CPython lowers by context (SpecialCasing's Final_Sigma; the language-bound
# conditions, Lithuanian and Turkish, are not applied by str.lower()).
_SIGMAS = frozenset("\u03c3\u03c2")
_CONTEXTUAL = object()


def _lowered_substring(word: str):
    """A regex ``r`` with ``bool(re.search(r, t)) == (word in t.lower())`` for every str ``t``.

    False: never true; None: not expressible here; ``_CONTEXTUAL``: the word has
    a sigma, which Σ becomes as final "ς" or other "σ" by its context. Only
    U+0130 lowers to two characters ("i" + U+0307), so it stands for a final "i"
    of the word. (``_lowers_to`` lowers all of Unicode in one string, where Σ is
    followed by a letter: it lists Σ under "σ" only.)
    """
    if "\u0307" in word:
        return None
    if _SIGMAS.intersection(word):
        return _CONTEXTUAL
    if not word:
        return "(?:)"
    parts = []
    for k, ch in enumerate(word):
        chars = _sources(ch) + ("\u0130" if ch == "i" and k == len(word) - 1 else "")
        if not chars:
            return False
        parts.append(re.escape(chars) if len(chars) == 1 else "[" + "".join(re.escape(c) for c in chars) + "]")
    return "".join(parts)


def _source_tree(f) -> ast.FunctionDef:
    try:
        source = textwrap.dedent(inspect.getsource(f))
    except (OSError, TypeError):
        raise _NotCompiled("source not available") from None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        raise _NotCompiled("source does not parse on its own (a lambda or a nested expression)") from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
        raise _NotCompiled("not a plain `def`")
    return tree.body[0]


def compile_lf(lf) -> CompiledLF:
    """Compile ``lf`` (any Snorkel ``LabelingFunction``) to a spec, or say why not.

    Never raises for an LF it cannot read: the reason is in the result.
    """
    spec = lf_spec(lf)
    if spec is not None:
        return CompiledLF(spec, "declarative")
    if getattr(lf, "_pre", ()):
        return CompiledLF(None, "has preprocessors")
    f = getattr(lf, "_f", None)
    if not inspect.isfunction(f):
        return CompiledLF(None, "not a Python function")
    token = _LINE_OFFSET.set(f.__code__.co_firstlineno - 1)
    try:
        return CompiledLF(_compile_function(f, getattr(lf, "_resources", {}) or {}), "compiled")
    except _NotCompiled as exc:
        return CompiledLF(None, str(exc))
    except RecursionError:
        return CompiledLF(None, "too deeply nested")
    finally:
        _LINE_OFFSET.reset(token)


def _compile_function(f, resources: Mapping) -> RuleSpec:
    node = _source_tree(f)
    args = node.args
    if args.vararg or args.kwarg or args.posonlyargs or args.kwonlyargs or not args.args:
        _fail(None, "signature other than f(x, resource=..., ...)")
    c = _Compiler(f, resources)
    c.param = args.args[0].arg
    c.assigned = {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    c.locals[c.param] = _Param()
    defaults = dict(zip([a.arg for a in args.args[len(args.args) - len(args.defaults):]], f.__defaults__ or ()))
    for a in args.args[1:]:
        value = resources.get(a.arg, defaults.get(a.arg, _MISSING))
        if value is _MISSING:
            _fail(a, f"parameter {a.arg!r} has no resource or default")
        c.locals[a.arg] = value
    rules: list = []
    if not c.block(node.body, (), rules):
        _fail(None, "a path falls off the end (returns None)")
    if len(c.fields) > 1:
        _fail(None, f"reads several fields {sorted(c.fields)}")
    if not c.fields:
        _fail(None, "reads no field")
    return _prune(RuleSpec(next(iter(c.fields)), tuple(c.patterns), tuple(c.lengths), tuple(rules)))


def _prune(spec: RuleSpec) -> RuleSpec:
    """Drop atoms no rule reads (an ``any`` merged into one pattern leaves its parts)."""
    used: dict[str, list[int]] = {"pat": [], "len": []}

    def walk(e: Expr) -> None:
        if e[0] in used and e[1] not in used[e[0]]:
            used[e[0]].append(e[1])
        elif e[0] == "not":
            walk(e[1])
        elif e[0] in ("and", "or"):
            for part in e[1]:
                walk(part)

    for cond, _ in spec.rules:
        walk(cond)
    new = {kind: {old: i for i, old in enumerate(sorted(ids))} for kind, ids in used.items()}

    def renumber(e: Expr) -> Expr:
        if e[0] in new:
            return (e[0], new[e[0]][e[1]])
        if e[0] == "not":
            return ("not", renumber(e[1]))
        if e[0] in ("and", "or"):
            return (e[0], tuple(renumber(p) for p in e[1]))
        return e

    return RuleSpec(spec.field, tuple(spec.patterns[i] for i in sorted(used["pat"])),
                    tuple(spec.lengths[i] for i in sorted(used["len"])),
                    tuple((renumber(cond), label) for cond, label in spec.rules))


class _Param:
    """The row parameter: only ``x.field`` / ``x["field"]`` reads of it are understood."""


def fast_spec(lf) -> PatternSpec | LengthSpec | RuleSpec | None:
    """The spec the applier scans for ``lf``: declarative, compiled, or ``None``."""
    return compile_lf(lf).spec
