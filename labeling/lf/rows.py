"""The data point an LF sees: what Snorkel's ``PandasLFApplier`` hands it, without a Series per row.

Snorkel calls each LF on the row Series of ``DataFrame.apply(axis=1)``; LFs and
preprocessors written for it rely on that Series' behaviour. ``Row`` keeps it
where LFs can tell (the parity suite, ``tests/test_snorkel_parity.py``, checks
each point against Snorkel):

- values have the row's common dtype, as ``frame.iloc[i]``: an all-int frame
  gives ``numpy.int64`` (so ``x.a / x.b`` with ``b == 0`` is ``inf``), int and
  float columns give ``float64``, mixed columns give the stored objects;
- pandas' own attributes win over columns, as on a Series: ``x.name`` is the
  row's index label and ``x.count`` a method even with columns of those names
  (``x["name"]`` reads the column); any other Series attribute or method
  (``isna()``, ``values``, ``index``, ``to_dict()``...) works on a Series built
  on demand; the ``dict`` methods a Series lacks (``clear``, ``setdefault``...)
  give way to columns of their names, as a Series' columns would
  (``reads_column`` says which ``x.<name>`` read a column);
- iteration yields values; ``copy``, ``copy.deepcopy`` and pickling give a Row
  (elements shared, as a Series' deep copy shares Python objects);
- ``x.f = v`` and ``x["f"] = v`` both write a field that both ``x.f`` and
  ``x["f"]`` read. (A Series keeps a new attribute apart from its items; here
  it is an item too: documented in the README.)

It is a ``dict`` subclass so that Snorkel's memoizing preprocessors can hash it
(``snorkel.map.core.get_hashable`` reads a dict's items, as it reads a Series').
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd

__all__ = ["Row", "frame_rows", "reads_column"]

# Attribute names that a Series answers itself, before looking at its labels.
_SERIES_ATTRS = frozenset(dir(pd.Series))
_SLOTS = ("_name", "_dtype")


class _ColumnFirst:
    """A method of Row (or of dict) that a Series does not have: on a Series
    ``x.<name>`` reads the column ``<name>``, so the column wins here too."""

    def __init__(self, method) -> None:
        self.method = method

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, row, owner=None):
        if row is None:
            return self
        if dict.__contains__(row, self.name):
            return dict.__getitem__(row, self.name)
        return self.method.__get__(row, owner)


class Row(dict):
    """One data point: ``x.text`` and ``x["text"]`` as on the pandas Series Snorkel passes."""

    __slots__ = _SLOTS
    # a Series cannot be hashed either; Snorkel's memo keys then read the items
    __hash__ = None  # type: ignore[assignment]

    def __init__(self, data=(), name=None, dtype=None):
        super().__init__(data)
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_dtype", dtype)

    # -- Series semantics ---------------------------------------------------------------
    @property
    def name(self):
        """The row's index label (``Series.name``), whatever the columns are called."""
        return self._name

    def __getattr__(self, key: str):
        if key in _SLOTS or key.startswith("__"):
            raise AttributeError(key)
        if key in _SERIES_ATTRS:
            return getattr(_series(self), key)
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"row has no field {key!r}") from None

    def __setattr__(self, key: str, value) -> None:
        if key == "name":
            object.__setattr__(self, "_name", value)
        elif key in _SLOTS:
            object.__setattr__(self, key, value)
        else:
            self[key] = value

    def __delattr__(self, key: str) -> None:
        try:
            del self[key]
        except KeyError:
            raise AttributeError(key) from None

    def __getitem__(self, key):
        try:
            return dict.__getitem__(self, key)
        except (KeyError, TypeError):
            if isinstance(key, str) or key is None:
                raise KeyError(key) from None
            return _series(self)[key]  # lists, slices, masks: as a Series answers

    def __setitem__(self, key, value) -> None:
        dict.__setitem__(self, key, value)
        object.__setattr__(self, "_dtype", None)  # the Series now infers its dtype

    def __iter__(self) -> Iterator:
        return iter(dict.values(self))

    @property
    def values(self) -> np.ndarray:
        return _series(self).values

    def keys(self):
        return dict.keys(self)

    def _to_series(self) -> pd.Series:
        """This row as the Series Snorkel's applier would pass."""
        return _series(self)

    to_series = _ColumnFirst(_to_series)
    clear = _ColumnFirst(dict.clear)
    fromkeys = _ColumnFirst(dict.fromkeys)
    popitem = _ColumnFirst(dict.popitem)
    setdefault = _ColumnFirst(dict.setdefault)

    # -- copies ----------------------------------------------------------------------------
    def copy(self, deep: bool = True) -> Row:
        return Row(dict.items(self), self._name, self._dtype)

    def __copy__(self) -> Row:
        return self.copy()

    def __deepcopy__(self, memo) -> Row:
        return self.copy()

    def __reduce__(self):
        return (Row, (dict(dict.items(self)), self._name, self._dtype))

    def __repr__(self) -> str:
        return f"Row({dict.__repr__(self)}, name={self._name!r})"


def _series(row: Row) -> pd.Series:
    return pd.Series(list(dict.values(row)), index=list(dict.keys(row)), dtype=row._dtype, name=row._name)


def reads_column(name: str) -> bool:
    """Whether ``x.<name>`` on a row reads the column ``<name>`` (and not a Series
    attribute such as ``x.name``, the row's index label), here as in Snorkel."""
    if name.startswith("__") or name in _SERIES_ATTRS or name in _SLOTS:
        return False
    own = getattr(Row, name, None)
    return own is None or isinstance(own, _ColumnFirst)


def _column_values(column: pd.Series, dtype) -> Sequence:
    """``column``'s values as a row Series of ``dtype`` holds them (numpy scalars, NA, objects)."""
    converted = column.astype(dtype) if column.dtype != dtype else column
    array = converted.array
    if isinstance(array, pd.arrays.NumpyExtensionArray):
        return list(array.to_numpy())  # numpy scalars, or the stored objects
    return list(array)  # extension arrays yield the scalars their __getitem__ gives


def frame_rows(frame: pd.DataFrame, positions: Sequence[int] | np.ndarray | None = None) -> list[Row]:
    """The rows of ``frame`` (those at ``positions``) as Snorkel's applier would pass them."""
    sub = frame if positions is None else frame.iloc[positions]
    if not len(sub):
        return []
    columns = list(sub.columns)
    dtype = sub.iloc[0].dtype if len(columns) else np.dtype(object)  # the common dtype, as DataFrame.apply finds it
    values = [_column_values(sub.iloc[:, k], dtype) for k in range(len(columns))]
    labels = sub.index.tolist()
    return [Row(zip(columns, vals), label, dtype) for vals, label in zip(zip(*values), labels)]
