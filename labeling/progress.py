"""Progress bars for long steps, on stderr so ``--json`` output stays clean."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "", enabled: bool = True) -> Iterator[T]:
    if not enabled:
        return iter(items)
    return iter(tqdm(items, total=total, desc=desc, file=sys.stderr, leave=False, mininterval=0.5))
