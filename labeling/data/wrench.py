"""Read a WRENCH benchmark dataset folder (Zhang et al., NeurIPS 2021).

A folder holds ``train.json``, ``valid.json`` and ``test.json``, each a JSON object
``{id: {"label": int, "weak_labels": [int, ...], "data": {"text": str, ...}}}``, and
``label.json`` mapping class index strings to class names. WRENCH ships the LF votes
already computed, so a split becomes a label matrix plus gold labels directly.

Relation datasets (semeval, chemprot, spouse, cdr) also give each row's two entities as
character spans of its sentence, ``data.span1`` and ``data.span2`` (``[start, end)``).
A sentence alone does not say which pair is meant (the same sentence can hold several
pairs), so those rows become texts by ``render_relation``, as ``relation_text`` names:

- ``"sentence"``: the sentence as it is.
- ``"entity_markers"``: the sentence with marker tokens around the two entities,
  ``[E1] ... [/E1]`` and ``[E2] ... [/E2]`` (Zhang & Wang 2015; Baldini Soares et al.,
  "Matching the Blanks", ACL 2019, for transformer end models; WRENCH's own relation
  end models mark the entities too).
- ``"between"``: which entity comes first, the two entities, and the words between them,
  the lexical features of Mintz et al., "Distant supervision for relation extraction
  without labeled data", ACL 2009: ``"E1FIRST <e1> ENT1 <e2> ENT2 BETWEEN <words>"``.

The default, ``"entity_markers"``, was chosen on WRENCH semeval's dev split only (178
rows; accuracy of the end model selected over hashed word n-grams and word + character
n-grams): sentence 82.6%, entity markers 86.5%, between 86.5%. Of the two tied, the
markers keep the whole sentence. A model trained on rendered texts must be served texts
rendered the same way: ``render_relation(sentence, span1, span2, relation_text)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DatasetError
from ..matrix import ABSTAIN

SPLITS = ("train", "valid", "test")
RELATION_TEXTS = ("sentence", "entity_markers", "between")
DEFAULT_RELATION_TEXT = "entity_markers"
WEAK_LABEL_PREFIX = "wrench_lf_"  # the precomputed LF columns of ``wrench_frames``


@dataclass(frozen=True, eq=False)
class WrenchSplit:
    """One split, rows in file order (WRENCH's tie-breaking hashes the row position)."""

    ids: tuple[str, ...]
    texts: tuple[str, ...]
    L: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True, eq=False)
class WrenchDataset:
    name: str
    class_names: tuple[str, ...]
    train: WrenchSplit
    valid: WrenchSplit
    test: WrenchSplit

    @property
    def cardinality(self) -> int:
        return len(self.class_names)

    @property
    def n_lfs(self) -> int:
        return self.train.L.shape[1]


def _read_json(path: Path) -> object:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found")
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: invalid JSON: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path}: not UTF-8 text: {exc}") from exc


def _read_class_names(path: Path) -> tuple[str, ...]:
    raw = _read_json(path)
    if not isinstance(raw, dict) or not raw:
        raise DatasetError(f"{path}: expected a non-empty object mapping class index to name")
    try:
        by_index = {int(key): value for key, value in raw.items()}
    except ValueError as exc:
        raise DatasetError(f"{path}: class keys must be integers: {exc}") from exc
    if sorted(by_index) != list(range(len(by_index))):
        raise DatasetError(f"{path}: class indices must be 0..{len(by_index) - 1}, got {sorted(by_index)}")
    names = tuple(by_index[i] for i in range(len(by_index)))
    if not all(isinstance(name, str) for name in names):
        raise DatasetError(f"{path}: class names must be strings")
    return names


def _is_int(value: object) -> bool:
    # bool is an int subclass, but true/false in a vote list is a corrupt file, not a class
    return isinstance(value, int) and not isinstance(value, bool)


def _span(value: object, text: str) -> tuple[int, int] | None:
    """``value`` as a ``[start, end)`` span inside ``text``, else None."""
    if (isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value)
            and 0 <= value[0] < value[1] <= len(text)):
        return int(value[0]), int(value[1])
    return None


def render_relation(sentence: str, span1, span2, relation_text: str = DEFAULT_RELATION_TEXT) -> str:
    """The text an end model reads for the relation between the entities at character
    spans ``span1`` and ``span2`` (``[start, end)``, entity 1 and entity 2) of
    ``sentence`` (see the module docstring for the renderings). Raises ``ConfigError``
    for an unknown ``relation_text``, ``DatasetError`` for a span outside the sentence."""
    if relation_text not in RELATION_TEXTS:
        raise ConfigError(f"dataset.relation_text {relation_text!r}: expected one of {list(RELATION_TEXTS)}")
    spans = [_span(span1, sentence), _span(span2, sentence)]
    if None in spans:
        bad = (span1, span2)[spans.index(None)]
        raise DatasetError(f"entity span {bad!r} is not [start, end) within the sentence of {len(sentence)} characters")
    (a, b), (c, d) = spans
    if relation_text == "sentence":
        return sentence
    if relation_text == "entity_markers":
        marks = sorted([(a, 1, " [E1] "), (b, 0, " [/E1] "), (c, 1, " [E2] "), (d, 0, " [/E2] ")], reverse=True)
        for position, _, mark in marks:  # from the end, so earlier offsets stay valid
            sentence = sentence[:position] + mark + sentence[position:]
        return " ".join(sentence.split())
    first = "E1FIRST" if a < c else "E2FIRST"
    between = sentence[min(b, d):max(a, c)]
    return " ".join(f"{first} {sentence[a:b]} ENT1 {sentence[c:d]} ENT2 BETWEEN {between}".split())


def _read_split(path: Path, cardinality: int, relation_text: str = DEFAULT_RELATION_TEXT) -> WrenchSplit:
    raw = _read_json(path)
    if not isinstance(raw, dict):
        raise DatasetError(f"{path}: expected a JSON object mapping id to row, got {type(raw).__name__}")
    if not raw:
        raise DatasetError(f"{path}: no rows")
    ids: list[str] = []
    texts: list[str] = []
    votes: list[list[int]] = []
    labels: list[int] = []
    n_lfs: int | None = None
    for row_id, row in raw.items():
        where = f"{path}, id {row_id!r}"
        if not isinstance(row, dict):
            raise DatasetError(f"{where}: row must be an object")
        missing = {"label", "weak_labels", "data"} - row.keys()
        if missing:
            raise DatasetError(f"{where}: missing key(s) {sorted(missing)}")
        weak = row["weak_labels"]
        if not isinstance(weak, list) or not all(_is_int(v) for v in weak):
            raise DatasetError(f"{where}: weak_labels must be a list of integers")
        if n_lfs is None:
            n_lfs = len(weak)
        elif len(weak) != n_lfs:
            raise DatasetError(f"{where}: has {len(weak)} weak labels, earlier rows have {n_lfs}")
        bad = [v for v in weak if not ABSTAIN <= v < cardinality]
        if bad:
            raise DatasetError(f"{where}: weak label {bad[0]} outside {ABSTAIN}..{cardinality - 1}")
        label = row["label"]
        if not _is_int(label) or not ABSTAIN <= label < cardinality:
            raise DatasetError(f"{where}: label {label!r} is not a class index in 0..{cardinality - 1} (or -1)")
        data = row["data"]
        if not isinstance(data, dict) or not isinstance(data.get("text"), str):
            raise DatasetError(f"{where}: data.text must be a string")
        text = data["text"]
        if "span1" in data or "span2" in data:
            try:
                text = render_relation(text, data.get("span1"), data.get("span2"), relation_text)
            except DatasetError as exc:
                raise DatasetError(f"{where}: {exc}") from None
        ids.append(str(row_id))
        texts.append(text)
        votes.append(weak)
        labels.append(label)
    L = np.array(votes, dtype=np.int64).reshape(len(votes), n_lfs or 0)
    y = np.array(labels, dtype=np.int64)
    # frozen records should not be mutable through their arrays either
    L.setflags(write=False)
    y.setflags(write=False)
    return WrenchSplit(ids=tuple(ids), texts=tuple(texts), L=L, y=y)


def load_wrench(directory: str | Path, relation_text: str = DEFAULT_RELATION_TEXT) -> WrenchDataset:
    """Load a WRENCH dataset folder; a relation dataset's rows become texts as
    ``relation_text`` says (``render_relation``). Raises ``DatasetError`` naming the file
    (and row id), ``ConfigError`` for an unknown ``relation_text``."""
    if relation_text not in RELATION_TEXTS:
        raise ConfigError(f"dataset.relation_text {relation_text!r}: expected one of {list(RELATION_TEXTS)}")
    root = Path(directory)
    if not root.is_dir():
        raise DatasetError(f"{root}: WRENCH dataset directory not found")
    class_names = _read_class_names(root / "label.json")
    splits = {name: _read_split(root / f"{name}.json", len(class_names), relation_text) for name in SPLITS}
    widths = {name: split.L.shape[1] for name, split in splits.items()}
    if len(set(widths.values())) != 1:
        raise DatasetError(f"{root}: splits disagree on the number of LFs: {widths}")
    return WrenchDataset(name=root.name, class_names=class_names, **splits)


def wrench_frames(directory: str | Path, classes: tuple[str, ...], relation_text: str = DEFAULT_RELATION_TEXT) -> dict:
    """A WRENCH folder as the pipeline's split frames ``{"train", "dev", "test"}``
    (valid -> dev; ``load_dataset`` makes them ``Splits``): columns ``id``,
    ``text``, ``label`` and one int column per stored LF, ``wrench_lf_<j>`` (class index,
    -1 abstain), which the retrain job takes as precomputed LF columns. A relation
    dataset's texts are rendered as ``relation_text`` says.

    Raises ``DatasetError`` when ``classes`` differ from the folder's ``label.json``
    (compared case-insensitively; the project's spelling is kept)."""
    import pandas as pd

    ds = load_wrench(directory, relation_text)
    if tuple(c.lower() for c in ds.class_names) != tuple(c.lower() for c in classes):
        raise DatasetError(f"{directory}: WRENCH classes are {list(ds.class_names)}; the project declares {list(classes)}")
    frames = {}
    for name, split in (("train", ds.train), ("dev", ds.valid), ("test", ds.test)):
        frame = pd.DataFrame({"id": [f"{name}-{i}" for i in split.ids], "text": list(split.texts), "label": split.y})
        votes = pd.DataFrame(split.L, columns=[f"{WEAK_LABEL_PREFIX}{j}" for j in range(split.L.shape[1])])
        frames[name] = pd.concat([frame, votes], axis=1)
    return frames


def precomputed_lf_columns(config, frame) -> list[str]:
    """The columns of ``frame`` that hold precomputed LF votes: ``dataset.weak_label_fields``,
    and for ``dataset.source = "wrench"`` the stored LFs. Raises ``DatasetError`` for a
    named column the frame lacks."""
    names = list(config.dataset.weak_label_fields)
    if config.dataset.source == "wrench":
        names += [c for c in frame.columns if str(c).startswith(WEAK_LABEL_PREFIX)]
    missing = [c for c in names if c not in frame.columns]
    if missing:
        raise DatasetError(f"dataset.weak_label_fields: column(s) {missing} not found; columns are {list(frame.columns)}")
    return names


def precomputed_votes(frame, columns: list[str], cardinality: int) -> np.ndarray:
    """(n, len(columns)) int64 votes from ``frame``'s precomputed LF columns; raises
    ``DatasetError`` naming the column and row of a vote outside -1..cardinality-1."""
    out = np.empty((len(frame), len(columns)), dtype=np.int64)
    for j, column in enumerate(columns):
        values = frame[column].to_numpy()
        try:
            votes = values.astype(np.int64)
        except (TypeError, ValueError):
            votes = None
        bad = (np.flatnonzero((votes < ABSTAIN) | (votes >= cardinality) | (votes != values)) if votes is not None
               else np.arange(len(values)))
        if len(bad):
            row = frame["id"].iloc[bad[0]] if "id" in frame else int(bad[0])
            raise DatasetError(f"weak-label column {column!r}, row {row!r}: {values[bad[0]]!r} is not a class "
                               f"index 0..{cardinality - 1} or -1 (abstain)")
        out[:, j] = votes
    return out
