"""The label schema: the class list (order = index) with the history of its changes.

Pure functions: a ``LabelSchema`` and a ``SchemaChange`` in, the next schema and the
index mapping out. ``version`` hashes the classes and the change history (not the times),
so the same sequence of changes gives the same version on any machine.

Index rules (Snorkel Flow's "Updating the label schema" semantics, made explicit):

- ``add NAME``: appended (its index is the old cardinality); no index moves.
- ``rename OLD NEW``: same index; no index moves.
- ``merge A B --into C``: C takes the lower of A's and B's positions; the other is removed
  and the classes after it move down one. A and B map to C. C may be A, B or a new name.
- ``split A --into B C``: B takes A's position, C is inserted right after it; the classes
  after move up one. A maps to nothing: its gold cannot be told apart (re-review it).
- ``retire NAME``: removed, the classes after it move down one; it maps to nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ..errors import SchemaChangeError

OPERATIONS = ("init", "add", "rename", "merge", "split", "retire")
MIN_CLASSES = 2  # project.classes needs at least two (config.project_config_from_dict)


@dataclass(frozen=True)
class SchemaChange:
    """One change: ``op`` in ``OPERATIONS``; ``sources`` the classes it takes, ``targets`` those it gives.

    add: ``((), (name,))``; rename: ``((old,), (new,))``; merge: ``((a, b), (c,))``;
    split: ``((a,), (b, c))``; retire: ``((name,), ())``; init: ``((), classes)``.
    """

    op: str
    sources: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()

    def to_json(self) -> dict:
        return {"op": self.op, "sources": list(self.sources), "targets": list(self.targets)}

    @classmethod
    def from_json(cls, data: dict) -> SchemaChange:
        return cls(data["op"], tuple(data["sources"]), tuple(data["targets"]))

    def describe(self) -> str:
        if self.op == "init":
            return f"init {', '.join(self.targets)}"
        if self.op in ("merge", "split"):
            return f"{self.op} {' '.join(self.sources)} --into {' '.join(self.targets)}"
        return " ".join((self.op, *self.sources, *self.targets))


@dataclass(frozen=True)
class LabelSchema:
    """The classes in index order and every change that led to them (``history[0]`` is ``init``)."""

    classes: tuple[str, ...]
    history: tuple[SchemaChange, ...]

    @classmethod
    def initial(cls, classes) -> LabelSchema:
        classes = tuple(classes)
        return cls(classes, (SchemaChange("init", (), classes),))

    @property
    def version(self) -> str:
        """12 hex digits of sha256 over the classes and the history (``schema_version`` columns)."""
        body = json.dumps({"classes": list(self.classes), "history": [c.to_json() for c in self.history]},
                          sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode("utf-8")).hexdigest()[:12]

    def history_json(self) -> list[dict]:
        return [c.to_json() for c in self.history]

    @classmethod
    def from_json(cls, classes, history) -> LabelSchema:
        return cls(tuple(classes), tuple(SchemaChange.from_json(c) for c in history))


def _need(classes: tuple[str, ...], name: str) -> int:
    if name not in classes:
        raise SchemaChangeError(f"class {name!r} is not in the schema {list(classes)}")
    return classes.index(name)


def _new(classes: tuple[str, ...], name: str, allowed: tuple[str, ...] = ()) -> None:
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise SchemaChangeError(f"class name {name!r} must be a non-empty name without surrounding spaces")
    if name in classes and name not in allowed:
        raise SchemaChangeError(f"class {name!r} is already in the schema {list(classes)}")


def next_classes(classes: tuple[str, ...], change: SchemaChange) -> tuple[tuple[str, ...], tuple[int | None, ...]]:
    """``(new classes, mapping)``: ``mapping[old index]`` is the new index, or None when the
    class's labels cannot be carried over (split source, retired class).

    Raises ``SchemaChangeError`` naming the class when the change does not fit ``classes``.
    """
    classes = tuple(classes)
    op, src, dst = change.op, change.sources, change.targets
    shape = {"add": (0, 1), "rename": (1, 1), "merge": (2, 1), "split": (1, 2), "retire": (1, 0)}
    if op not in shape:
        raise SchemaChangeError(f"unknown schema change {op!r}: expected one of {', '.join(shape)}")
    if (len(src), len(dst)) != shape[op]:
        raise SchemaChangeError(f"{op} takes {shape[op][0]} class(es) and gives {shape[op][1]}, got {change.describe()!r}")
    identity = list(range(len(classes)))
    if op == "add":
        _new(classes, dst[0])
        new, mapping = classes + (dst[0],), identity
    elif op == "rename":
        i = _need(classes, src[0])
        _new(classes, dst[0])
        new, mapping = classes[:i] + (dst[0],) + classes[i + 1:], identity
    elif op == "merge":
        a, b = (_need(classes, s) for s in src)
        if a == b:
            raise SchemaChangeError(f"merge needs two different classes, got {src[0]!r} twice")
        _new(classes, dst[0], allowed=src)
        keep, drop = min(a, b), max(a, b)
        new = tuple(dst[0] if i == keep else c for i, c in enumerate(classes) if i != drop)
        mapping = [keep if i in (a, b) else (i if i < drop else i - 1) for i in identity]
    elif op == "split":
        a = _need(classes, src[0])
        if dst[0] == dst[1]:
            raise SchemaChangeError(f"split needs two different new classes, got {dst[0]!r} twice")
        for name in dst:
            _new(classes, name, allowed=src)
        new = classes[:a] + dst + classes[a + 1:]
        mapping = [None if i == a else (i if i < a else i + 1) for i in identity]
    else:  # retire
        a = _need(classes, src[0])
        new = classes[:a] + classes[a + 1:]
        mapping = [None if i == a else (i if i < a else i - 1) for i in identity]
    if len(new) < MIN_CLASSES:
        raise SchemaChangeError(f"{change.describe()} would leave {list(new)}: a schema needs at least "
                                f"{MIN_CLASSES} classes")
    return tuple(new), tuple(mapping)


def apply_change(schema: LabelSchema, change: SchemaChange) -> tuple[LabelSchema, tuple[int | None, ...]]:
    """The schema after ``change`` and the old-index -> new-index mapping (``next_classes``)."""
    classes, mapping = next_classes(schema.classes, change)
    return LabelSchema(classes, schema.history + (change,)), mapping


def resolve_class(schema: LabelSchema, name: str) -> tuple[str | None, str]:
    """``(current class, why)`` for a class name of this schema or of an earlier one: a renamed or
    merged class gives the class it became; a split or retired one (or a name never in the schema)
    gives None and the reason, naming the schema version."""
    current: str | None = None
    why = f"class {name!r} is not in label schema {schema.version} {list(schema.classes)}"
    for change in schema.history:
        if name in change.targets and current is None:
            # the name enters the schema here (init, add, or a rename/merge/split giving it)
            current = name
        elif current is not None and current in change.sources:
            if change.op in ("rename", "merge"):
                current = change.targets[0]
            else:
                why = (f"class {current!r} was {'split into ' + ' and '.join(change.targets) if change.op == 'split' else 'retired'}"
                       f" ({change.describe()}): it is not in label schema {schema.version} {list(schema.classes)}")
                current = None
    return (current, "") if current in schema.classes else (None, why)


def class_mapping(old: tuple[str, ...], new: tuple[str, ...], mapping) -> dict[str, str | None]:
    """The same mapping by class name: ``{old class: new class or None}``."""
    return {name: (None if j is None else new[j]) for name, j in zip(old, mapping)}


def carry_map(schema: LabelSchema, since: int = 0) -> tuple[int | None, ...]:
    """Where the classes of the schema after ``history[:since + 1]`` went: ``out[i]`` is the current
    index of that schema's class ``i``, or None when its rows cannot be given one current class.

    Unlike chaining ``next_classes``' one-step mappings, a class split and later merged back whole
    (``split spam --into promo scam``, then ``merge promo scam --into spam``) is carried: every
    class is tracked as the set of pieces it holds, a split cuts each piece in two, and an old
    class maps to the one current class holding all its pieces (None when they are spread over
    several classes or some were retired). Used to read data files, which are never rewritten.
    """
    if not 0 <= since < len(schema.history):
        raise SchemaChangeError(f"label schema {schema.version} has {len(schema.history)} steps, not {since + 1}")
    classes = first = next_classes_at(schema, since)
    pieces: list[set[tuple]] = [{(i,)} for i in range(len(classes))]
    retired: set[tuple] = set()
    for step, change in enumerate(schema.history[since + 1:], start=since + 1):
        if change.op == "init":
            raise SchemaChangeError(f"label schema {schema.version}: init at step {step} (only the first step is)")
        at = [classes.index(s) for s in change.sources]
        if change.op == "add":
            pieces.append({("added", step)})
        elif change.op == "merge":
            keep, drop = min(at), max(at)
            pieces[keep] = pieces[at[0]] | pieces[at[1]]
            del pieces[drop]
        elif change.op == "split":
            cut = pieces[at[0]]
            pieces[at[0]:at[0] + 1] = [{p + (step, 0) for p in cut}, {p + (step, 1) for p in cut}]
        elif change.op == "retire":
            retired |= pieces.pop(at[0])
        classes = next_classes(classes, change)[0]
    out: list[int | None] = []
    for i in range(len(first)):
        holders = {j for j, held in enumerate(pieces) for p in held if p[0] == i}
        gone = any(p[0] == i for p in retired)
        out.append(holders.pop() if len(holders) == 1 and not gone else None)
    return tuple(out)


def next_classes_at(schema: LabelSchema, step: int) -> tuple[str, ...]:
    """The classes after ``history[:step + 1]`` (step 0: the first schema's)."""
    classes: tuple[str, ...] = ()
    for change in schema.history[:step + 1]:
        classes = change.targets if change.op == "init" else next_classes(classes, change)[0]
    return classes


def label_reading(schema: LabelSchema) -> tuple[tuple[str, ...], dict[str, int | None]]:
    """How a data file's gold labels are read under ``schema``: ``(first, names)``.

    ``first``: the first schema's classes; an integer label is an index into them (a data file is
    written once and never rewritten by a schema change). ``names``: every class name the schema
    ever had -> its current index (None: its rows are unlabelled now); a name means what it meant
    when it first entered the schema (``carry_map`` from that step), so ``ham`` after ``rename ham
    legit`` is read as ``legit`` even if a later ``add ham`` reuses the name.
    """
    names: dict[str, int | None] = {}
    for step, change in enumerate(schema.history):
        if not (set(change.targets) - set(names)):
            continue
        carried = carry_map(schema, step)
        for name, j in zip(next_classes_at(schema, step), carried):
            names.setdefault(name, j)
    return schema.history[0].targets, names
