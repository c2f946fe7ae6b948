"""Progress bars for long steps, on stderr so ``--json`` output stays clean."""

from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "", enabled: bool = True) -> Iterator[T]:
    if not enabled:
        return iter(items)
    return iter(tqdm(items, total=total, desc=desc, file=sys.stderr, leave=False, mininterval=0.5))


def peak_rss_mb() -> float:
    """Peak resident memory so far, in MiB: this process or its largest child
    (forked LF workers), whichever is higher."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024 / 1024  # KiB on Linux, bytes on macOS
    return round(max(own, children) * scale, 1)


@dataclass(frozen=True)
class StageStats:
    """One stage of a job: wall seconds, peak RSS (MiB) at its end, rows it processed."""

    seconds: float
    peak_rss_mb: float
    rows: int | None = None

    @property
    def rows_per_s(self) -> float | None:
        return None if not self.rows or self.seconds <= 0 else self.rows / self.seconds

    def to_dict(self) -> dict:
        return {**asdict(self), "rows_per_s": None if self.rows_per_s is None else round(self.rows_per_s, 1)}


class _Stage:
    def __init__(self, rows: int | None):
        self.rows = rows


class Stages:
    """Times the stages of a job and shows a progress bar over them (on stderr).

    ``with stages("apply", rows=n): ...`` records a ``StageStats``; ``table()``
    formats them for the terminal.
    """

    def __init__(self, names: Iterable[str] = (), *, show: bool = False):
        self.stats: dict[str, StageStats] = {}
        self._bar = tqdm(total=len(tuple(names)) or None, desc="stages", file=sys.stderr, leave=False,
                         disable=not show, bar_format="{desc}: {n_fmt}/{total_fmt} [{elapsed}] {postfix}")

    @contextmanager
    def __call__(self, name: str, *, rows: int | None = None):
        """Time stage ``name``; the yielded object's ``rows`` may be set inside (known late)."""
        self._bar.set_postfix_str(name)
        stage = _Stage(rows)
        start = time.perf_counter()
        try:
            yield stage
        finally:
            self.stats[name] = StageStats(round(time.perf_counter() - start, 3), peak_rss_mb(), stage.rows)
            self._bar.update(1)

    def close(self) -> None:
        self._bar.close()

    def to_dict(self) -> dict[str, dict]:
        return {name: stats.to_dict() for name, stats in self.stats.items()}


def stage_table(stages: dict[str, dict]) -> str:
    """Lines of a stage table (``Stages.to_dict()`` form): seconds, peak RSS, rows/s."""
    lines = [f"{'stage':<16} {'seconds':>9} {'peak RSS MiB':>13} {'rows':>10} {'rows/s':>11}"]
    for name, s in stages.items():
        rows = "" if s.get("rows") is None else f"{s['rows']:,}"
        rate = "" if s.get("rows_per_s") is None else f"{s['rows_per_s']:,.0f}"
        lines.append(f"{name:<16} {s['seconds']:>9.2f} {s['peak_rss_mb']:>13,.0f} {rows:>10} {rate:>11}")
    return "\n".join(lines)
