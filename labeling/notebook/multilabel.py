"""The LF workbench of a multi-label project: try an LF and see what it does per class on dev.

``MultiLabelWorkbench(config)`` loads the splits and applies the project's LFs once (the
vote cache as the retrain uses it); ``try_lf(lf)`` applies only the new LF and reports,
per class it votes on, its yes/no coverage on train, the precision of its yes votes and
the accuracy of its no votes on dev (``multilabel.votes.votes_summary``), and the
multi-label majority vote's dev score (``project.metric``) with and without it. The
majority vote needs no fit, so a try costs one LF application.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from snorkel.labeling import LabelingFunction

from ..config import ProjectConfig
from ..lf.apply import apply_lfs
from ..lf.cache import project_cache_dir
from ..lf.core import discover_lfs
from ..multilabel.gold import load_multilabel_dataset
from ..multilabel.label_models import MultiLabelMajorityVote
from ..multilabel.metrics import F1_METRICS, score
from ..multilabel.votes import apply_cardinality, decode_votes, multilabel_lfs, votes_summary

__all__ = ["MultiLabelLFReport", "MultiLabelWorkbench"]


@dataclass(frozen=True, eq=False)
class MultiLabelLFReport:
    """What trying one multi-label LF showed. ``per_class``: one row per class it votes on
    (``train_yes_coverage``, ``train_no_coverage``, ``dev_yes_coverage``, ``dev_no_coverage``,
    ``dev_yes_precision``, ``dev_no_accuracy``: fractions; NaN where it cast no such vote).
    ``score_without``/``score_with``: the majority vote's dev ``metric`` without/with it."""

    name: str
    metric: str
    per_class: pd.DataFrame
    score_without: float
    score_with: float

    def __str__(self) -> str:
        table = self.per_class.map(lambda v: "n/a" if pd.isna(v) else f"{v:.1%}").to_string()
        return (f"LF {self.name}: majority vote dev {self.metric} {self.score_without:.3f} -> {self.score_with:.3f} "
                f"({self.score_with - self.score_without:+.3f})\n{table}")


class MultiLabelWorkbench:
    """A notebook session over a ``project.task = "multi_label"`` project: its train and dev
    rows, the votes of its LFs (``lfs``; default the project's modules). Raises what the
    dataset loader and LF application raise (``DatasetError``, ``LabelError``, ``LFApplicationError``)."""

    def __init__(self, config: ProjectConfig, *, lfs: Sequence[LabelingFunction] | None = None, cache="project"):
        self.config = config
        splits, Ys = load_multilabel_dataset(config)
        self._frame = pd.concat([splits.train, splits.dev], ignore_index=True)
        self._n_train = len(splits.train)
        self.Y_dev = Ys["dev"]
        self.metric = config.metric if config.metric in F1_METRICS else "macro_f1"
        self.cache = project_cache_dir(config) if cache == "project" else cache
        if lfs is None:
            lfs = discover_lfs(config.lfs.modules, root=config.resolve(config.lfs.root), allow_empty=True) \
                if config.lfs.modules else ()
        self.lfs = tuple(lfs)
        self._T = self._apply(self.lfs)

    def _apply(self, lfs: Sequence[LabelingFunction]) -> np.ndarray:
        k = len(self.config.classes)
        if not lfs:
            return np.full((len(self._frame), 0, k), -1, dtype=np.int8)
        L = apply_lfs(multilabel_lfs(lfs), self._frame, cardinality=apply_cardinality(),
                      spacy_model=self.config.lfs.spacy_model, cache=self.cache,
                      n_jobs=self.config.lfs.n_jobs or None).L
        return decode_votes(L, k, [lf.name for lf in lfs])

    def _mv_score(self, T: np.ndarray) -> float:
        if T.shape[1] == 0:
            return float("nan")
        n = self._n_train
        return float(score(self.Y_dev, MultiLabelMajorityVote(random_state=self.config.seed).fit(T[:n])
                           .predict(T[n:]), self.metric))

    def try_lf(self, lf: LabelingFunction) -> MultiLabelLFReport:
        """What ``lf`` (returning a class, a list of classes, ``NOT(c)`` or ABSTAIN) does per class;
        an LF named like one of the session's is compared in its place. The session is unchanged."""
        column = self._apply([lf])
        keep = [j for j, other in enumerate(self.lfs) if other.name != lf.name]
        others = self._T[:, keep, :]
        n, classes = self._n_train, self.config.classes
        train = votes_summary(column[:n], [lf.name], classes)
        dev = votes_summary(column[n:], [lf.name], classes, self.Y_dev)
        per_class = (train.add_prefix("train_").join(dev.add_prefix("dev_"), how="outer")
                     .droplevel("lf").reindex([c for c in classes if c in set(train.index.get_level_values("class"))
                                               | set(dev.index.get_level_values("class"))]))
        return MultiLabelLFReport(lf.name, self.metric, per_class, self._mv_score(others),
                                  self._mv_score(np.concatenate([others, column], axis=1)))
