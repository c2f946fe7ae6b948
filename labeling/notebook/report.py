"""What trying one LF showed: a frozen record that renders as text (terminal) and HTML (Jupyter).

The numbers are computed by the workbench; this module only holds and renders them, so a
report can be compared, logged or turned into a table without a notebook.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["LFReport"]

_TEXT_WIDTH = 100
# The HTML lists at most this many of an LF's wrong dev rows: a broad LF is wrong on
# thousands (2,500 on IMDB's dev for "the"), 0.2 s to render and ~1 MB for the
# notebook to hold and the browser to lay out, for a list nobody reads to the end.
# ``LFReport.wrong`` keeps them all.
HTML_WRONG_ROWS = 50


def _pct(x: float) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1%}"


def _num(x: float, digits: int = 3) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _delta(x: float) -> str:
    return "not refitted" if math.isnan(x) else f"{x:+.3f}"


def _short(text, width: int = _TEXT_WIDTH) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True, eq=False, repr=False)
class LFReport:
    """One LF tried against the session's LF set.

    Rates are shares of rows in [0, 1]; ``coverage``/``overlap``/``conflict`` are on train
    (Snorkel's definitions: the LF votes; it and another LF vote; another LF votes a
    different class). ``dev_*`` count the LF's votes on dev rows against gold, with a 95%
    Wilson interval (NaN without votes). ``score_without``/``score_with``: the selected
    label model refitted without/with the LF, its dev ``metric``. Frames hold ``id`` and
    ``text`` (plus ``vote``/``gold`` class names where they apply).
    """

    name: str
    kind: str  # "declarative", "similarity", "spacy" or "plain"
    classes: tuple[str, ...]
    n_train: int
    n_dev: int
    coverage: float
    overlap: float
    conflict: float
    polarity: tuple[int, ...]  # classes it votes on train (and dev)
    dev_votes: int
    dev_correct: int
    dev_accuracy: float
    dev_interval: tuple[float, float]
    conflicts_with: pd.DataFrame  # lf, overlap_rows, conflict_rows, conflict (share of train), most first
    label_model: str
    metric: str
    score_without: float
    score_with: float
    examples: dict[str, pd.DataFrame]  # class name -> train rows it votes that class on
    wrong: pd.DataFrame  # dev rows it votes wrong on: id, text, vote, gold
    uncovered: pd.DataFrame  # a sample of train rows no LF votes on (with this one)
    uncovered_share: float  # share of train rows no LF votes on, with this one
    seconds: dict[str, float] = field(default_factory=dict)  # apply, label_model, total
    replaces: str | None = None  # the session LF of the same name it was compared in place of

    @property
    def score_delta(self) -> float:
        return self.score_with - self.score_without

    @property
    def votes_for(self) -> list[str]:
        return [self.classes[c] for c in self.polarity]

    # ------------------------------------------------------------------ text

    def to_text(self) -> str:
        lines = [f"LF {self.name} ({self.kind})" + (f", in place of the session's {self.replaces}" if self.replaces else "")
                 + f": votes {', '.join(self.votes_for) or 'nothing'}",
                 f"  train  coverage {_pct(self.coverage)} of {self.n_train}, overlap {_pct(self.overlap)}, "
                 f"conflict {_pct(self.conflict)}",
                 f"  dev    accuracy {_num(self.dev_accuracy)} (95% CI {_num(self.dev_interval[0])}-"
                 f"{_num(self.dev_interval[1])}), {self.dev_correct}/{self.dev_votes} votes right on {self.n_dev} rows",
                 f"  label model {self.label_model}: dev {self.metric} {_num(self.score_without)} without, "
                 f"{_num(self.score_with)} with ({_delta(self.score_delta)})"]
        if len(self.conflicts_with):
            top = ", ".join(f"{r.lf} ({r.conflict_rows} rows)" for r in self.conflicts_with.itertuples())
            lines.append(f"  conflicts most with: {top}")
        for label, frame in self.examples.items():
            lines.append(f"  votes {label}, e.g.:")
            lines += [f"    [{r.id}] {_short(r.text)}" for r in frame.itertuples()]
        lines.append(f"  wrong on dev: {len(self.wrong)}")
        lines += [f"    [{r.id}] voted {r.vote}, gold {r.gold}: {_short(r.text)}" for r in self.wrong.head(5).itertuples()]
        lines.append(f"  no LF votes on {_pct(self.uncovered_share)} of train, e.g.:")
        lines += [f"    [{r.id}] {_short(r.text)}" for r in self.uncovered.itertuples()]
        lines.append("  time " + ", ".join(f"{k} {v:.3f} s" for k, v in self.seconds.items()))
        return "\n".join(lines)

    __str__ = to_text

    def __repr__(self) -> str:
        return self.to_text()

    # ------------------------------------------------------------------ HTML

    def stats_table(self) -> pd.DataFrame:
        """The headline numbers as a two-column frame (field, value), as the HTML shows them."""
        rows = [
            ("votes for", ", ".join(self.votes_for) or "nothing"),
            ("train coverage", _pct(self.coverage)),
            ("train overlap", _pct(self.overlap)),
            ("train conflict", _pct(self.conflict)),
            ("dev accuracy", f"{_num(self.dev_accuracy)} ({self.dev_correct}/{self.dev_votes})"),
            ("dev accuracy 95% CI", f"{_num(self.dev_interval[0])} – {_num(self.dev_interval[1])}"),
            (f"label model dev {self.metric}",
             f"{_num(self.score_without)} → {_num(self.score_with)} ({_delta(self.score_delta)})"),
            ("train rows no LF votes on", _pct(self.uncovered_share)),
            ("time", ", ".join(f"{k} {v:.3f} s" for k, v in self.seconds.items())),
        ]
        return pd.DataFrame(rows, columns=["field", "value"])

    def _repr_html_(self) -> str:
        def table(frame: pd.DataFrame, cls: str) -> str:
            if frame.empty:
                return f'<p class="{cls}-empty"><em>none</em></p>'
            shown = frame.copy()
            if "text" in shown.columns:
                shown["text"] = shown["text"].map(lambda t: _short(t, 200))
            return shown.to_html(index=False, classes=["lf-report-table", cls], border=0, escape=True)

        title = html.escape(f"LF {self.name} ({self.kind})" + (f" in place of {self.replaces}" if self.replaces else ""))
        parts = [f'<div class="lf-report"><h4>{title}</h4>',
                 self.stats_table().to_html(index=False, header=False, classes=["lf-report-table", "lf-report-stats"],
                                            border=0, escape=True),
                 "<h5>conflicts most with</h5>", table(self.conflicts_with, "lf-report-conflicts")]
        for label, frame in self.examples.items():
            parts += [f"<h5>votes {html.escape(label)} (train)</h5>", table(frame, "lf-report-examples")]
        shown = "" if len(self.wrong) <= HTML_WRONG_ROWS else f", the first {HTML_WRONG_ROWS} shown"
        parts += [f"<h5>wrong on dev ({len(self.wrong)}{shown})</h5>",
                  table(self.wrong.head(HTML_WRONG_ROWS), "lf-report-wrong"),
                  "<h5>no LF votes on these (train)</h5>", table(self.uncovered, "lf-report-uncovered"), "</div>"]
        return "\n".join(parts)
