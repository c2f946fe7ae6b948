"""Where an LF module names a class: its class constants, the lines that vote with them, and
the rewrite of those constants after a label-schema change.

Pure functions over source text (``ast`` positions, no import of the module). A class
constant is a module-level ``NAME = <int>`` (or ``A, B = <int>, <int>``) whose NAME is the
class name upper-cased and whose value is the class's index, as in
``ABSTAIN, HAM, SPAM = -1, 0, 1``. Only those are rewritten; an integer returned directly
by a function (``return 1``) is listed for a person to edit, never guessed at.
"""

from __future__ import annotations

import ast
import difflib
from collections.abc import Sequence
from dataclasses import dataclass

ABSTAIN = -1


@dataclass(frozen=True)
class ClassConstant:
    name: str  # the identifier, e.g. "SPAM"
    class_name: str  # the class it stands for, e.g. "spam"
    index: int
    value_at: tuple[int, int, int]  # (line, start column, end column) of the integer literal


def constant_name(class_name: str) -> str:
    return class_name.upper()


def _int_literal(node) -> int | None:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and _int_literal(node.operand) is not None:
        return -_int_literal(node.operand)
    return None


def class_constants(source: str, classes: Sequence[str]) -> list[ClassConstant]:
    """The module-level class constants of ``source`` for ``classes`` (index = position)."""
    by_name = {constant_name(c): (c, i) for i, c in enumerate(classes)}
    found = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.Assign) or len(node.targets) != 1:
            continue
        target, value = node.targets[0], node.value
        pairs = [(target, value)]
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            pairs = list(zip(target.elts, value.elts))
        for name, literal in pairs:
            if isinstance(name, ast.Name) and name.id in by_name and _int_literal(literal) == by_name[name.id][1]:
                found.append(ClassConstant(name.id, by_name[name.id][0], by_name[name.id][1],
                                           (literal.lineno, literal.col_offset, literal.end_col_offset)))
    return found


def uses(source: str, names: set[str]) -> list[tuple[int, str]]:
    """``(line, identifier)`` of every read of one of ``names`` (the lines that vote with them)."""
    return sorted({(n.lineno, n.id) for n in ast.walk(ast.parse(source))
                   if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in names})


def literal_returns(source: str, indices: set[int]) -> list[int]:
    """Lines inside functions that ``return`` one of ``indices`` as a bare integer literal."""
    lines = set()
    for fn in ast.walk(ast.parse(source)):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(fn):
                values = [node.value] if isinstance(node, ast.Return) and node.value is not None else []
                if values and isinstance(values[0], ast.IfExp):
                    values = [values[0].body, values[0].orelse]
                if any(_int_literal(v) in indices for v in values):
                    lines.add(node.lineno)
    return sorted(lines)


@dataclass(frozen=True)
class SourceRewrite:
    new_source: str
    diff: str  # unified diff, empty when nothing changed
    votes: tuple[str, ...]  # "line N: code" for each line voting with a changed class
    manual: tuple[str, ...]  # what a person must edit (literals, votes of a class that is gone)


def rewrite_class_constants(source: str, old: Sequence[str], new: Sequence[str], mapping: Sequence[int | None],
                            renamed: dict[str, str], *, path: str = "module") -> SourceRewrite:
    """Rewrite ``source``'s class constants from schema ``old`` to ``new``.

    ``mapping[old index]``: the new index (or None: the class is gone, its constant becomes
    ABSTAIN and its votes are listed in ``manual``); ``renamed``: old class -> new name (the
    constant's identifier follows). Classes of ``new`` that have no constant get one, after the
    last constant, when the module has any. Raises ``SyntaxError`` for a module that does not parse.
    """
    constants = class_constants(source, old)
    lines = source.splitlines(keepends=True)
    edits: list[tuple[int, int, int, str]] = []  # (line, start, end, text)
    changed = {c.name for c in constants
               if mapping[c.index] != c.index or c.class_name in renamed}
    manual = []
    for c in constants:
        target = mapping[c.index]
        if target is None:
            manual.append(f"{path}: {c.name} ({c.class_name!r}) is no longer a class: its votes now abstain; "
                          "edit the LFs that vote it")
        if target != c.index:
            line, start, end = c.value_at
            edits.append((line, start, end, str(ABSTAIN if target is None else target)))
    renames = {constant_name(o): constant_name(n) for o, n in renamed.items() if constant_name(o) in changed}
    votes = []
    for line, ident in uses(source, changed):
        votes.append(f"{path}:{line}: {lines[line - 1].strip()}")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and node.id in renames:
            edits.append((node.lineno, node.col_offset, node.end_col_offset, renames[node.id]))
    moved = {i for i, j in enumerate(mapping) if j != i}
    for line in literal_returns(source, moved):
        manual.append(f"{path}:{line}: returns a class index as a literal: {lines[line - 1].strip()}")
    for line, start, end, text in sorted(edits, reverse=True):
        row = lines[line - 1]
        lines[line - 1] = row[:start] + text + row[end:]
    if constants:
        # the identifiers left standing for a class of ``new`` (a constant of a class that is gone does not count)
        have = {renames.get(c.name, c.name) for c in constants if mapping[c.index] is not None}
        missing = [(constant_name(name), i) for i, name in enumerate(new) if constant_name(name) not in have
                   and constant_name(name).isidentifier()]
        if missing:
            after = max(c.value_at[0] for c in constants)
            lines[after:after] = [f"{name} = {i}\n" for name, i in missing]
    new_source = "".join(lines)
    diff = "".join(difflib.unified_diff(source.splitlines(keepends=True), new_source.splitlines(keepends=True),
                                        f"a/{path}", f"b/{path}"))
    return SourceRewrite(new_source, diff, tuple(votes), tuple(manual))
