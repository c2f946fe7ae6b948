"""The LF workbench: try, add, fix and save LFs against a project's data in a notebook.

``Workbench(config)`` loads the splits once and applies the project's LFs to train and
dev through the vote cache; the label model the project's config selects is fitted once.
After that, ``try_lf(lf)`` applies only the new LF (its column is cached too) and refits
that one label model with it; the score without it is memoized by the votes, so a try
costs one fit, and trying an LF again costs none. On IMDB's 49,500 train + dev reviews
(``benchmarks/workbench_speed.py``, report rendered): a declarative LF tried again
~0.05 s of CPU, a new plain LF ~0.5 s of CPU (nearly all applying it) plus one Snorkel
fit (~0.2 s of CPU at 500 epochs); ``refit=False`` skips the fit.

The session's LF set changes with ``add``/``remove``/``replace``; ``save(module)`` writes
the LFs added in the session as an importable LF module (see ``labeling.notebook.save``).
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import xxhash
from snorkel.labeling import LabelingFunction

from ..config import ProjectConfig
from ..data.datasets import Splits, load_dataset
from ..errors import LabelMatrixError, WorkbenchError
from ..lf.analysis import conflicts, coverage, lf_summary, overlaps
from ..lf.apply import apply_lfs
from ..lf.cache import project_cache_dir
from ..lf.core import discover_lfs, uses_spacy
from ..lf.declarative import lf_spec
from ..matrix import ABSTAIN
from ..models.label_models import fit_label_model, select_label_model
from ..review.refinement import wilson_interval
from .kinds import prepare_similarity, similarity_settings
from .report import LFReport
from .save import SavedModule, write_lf_module
from .scaffold import add_lf_module

__all__ = ["Workbench", "lf_kind"]


def lf_kind(lf: LabelingFunction) -> str:
    """"declarative" (keyword/regex/length), "similarity", "spacy" or "plain"."""
    if lf_spec(lf) is not None:
        return "declarative"
    if similarity_settings(lf) is not None:
        return "similarity"
    return "spacy" if uses_spacy(lf) or "nlp" in type(lf).__name__.lower() else "plain"


def _votes_key(L: np.ndarray) -> str:
    """The memo key of a label matrix in this session: its shape and xxh3-128 of its int64 votes.

    Not ``label_matrix_hash`` (sha256, what lineage records): 0.2 ms instead of 4.4 ms
    on IMDB's 49,500 x 11, twice a try; a key that lives only in this process needs no
    cryptographic hash."""
    arr = np.ascontiguousarray(L, dtype=np.int64)
    return f"{arr.shape[0]}x{arr.shape[1]}:{xxhash.xxh3_128_hexdigest(arr)}"


class Workbench:
    """A notebook session over one project: its splits, its LFs, one label model.

    ``config``: the project. ``splits``: use these instead of loading the project's data
    (tests, benchmarks). ``lfs``: the starting LF set (default: the project's modules;
    ``()`` starts empty). ``train_sample``: work on this many random train rows (seeded by
    the project's seed) for faster iteration on big data; dev is always whole. ``cache``:
    the vote/parse/embedding cache folder (default: the project's; ``None`` = none).
    ``examples``: rows shown per list in a report.

    Raises ``WorkbenchError`` for duplicate LF names; data and LF errors as the pipeline does.
    """

    def __init__(self, config: ProjectConfig, *, splits: Splits | None = None,
                 lfs: Sequence[LabelingFunction] | None = None, train_sample: int | None = None,
                 cache="project", examples: int = 5):
        if config.task == "multi_label":
            raise WorkbenchError(f"project {config.name!r} is multi-label: its LFs vote on sets; use "
                                 "labeling.notebook.MultiLabelWorkbench(config), whose try_lf reports per class")
        if config.task == "spans":
            raise WorkbenchError(f"project {config.name!r} is a spans project: its LFs return spans, which this "
                                 "workbench does not score; `labeling retrain` reports each span LF's coverage, "
                                 "overlaps, conflicts and dev precision/recall per type (its span_lf_analysis)")
        self.config = config
        self.splits = load_dataset(config) if splits is None else splits
        train = self.splits.train
        if train_sample is not None and train_sample < len(train):
            train = train.sample(n=train_sample, random_state=config.seed).sort_index()
        self.train = train.reset_index(drop=True)
        self.dev = self.splits.dev.reset_index(drop=True)
        self._frame = pd.concat([self.train, self.dev], ignore_index=True)
        self._n_train = len(self.train)
        self.y_dev = self.dev["label"].to_numpy()
        self.cache = project_cache_dir(config) if cache == "project" else cache
        self.examples = examples
        self._rng_seed = config.seed
        if lfs is None:
            # an empty module (a new project's) is where a session starts, not an error
            lfs = (discover_lfs(config.lfs.modules, root=config.resolve(config.lfs.root), allow_empty=True)
                   if config.lfs.modules else ())
        lfs = list(lfs)
        self._check_unique([lf.name for lf in lfs])
        self._project = {lf.name: lf for lf in lfs}
        self._lfs: list[LabelingFunction] = lfs
        self._L = self._apply(lfs) if lfs else np.zeros((len(self._frame), 0), dtype=np.int64)
        self._template = None  # the label model selected for the project, unfitted settings
        self._label_model_name = ""
        self._scores: dict[str, float] = {}  # _votes_key(L) -> dev score
        if self._lfs:
            self.label_model_score  # select and fit the project's label model now, not in the first try

    # ------------------------------------------------------------------ state

    @property
    def lfs(self) -> tuple[LabelingFunction, ...]:
        return tuple(self._lfs)

    @property
    def names(self) -> list[str]:
        return [lf.name for lf in self._lfs]

    @property
    def L_train(self) -> np.ndarray:
        """(n_train, m) votes of the session's LFs on train (ABSTAIN = -1)."""
        return self._L[: self._n_train]

    @property
    def L_dev(self) -> np.ndarray:
        """(n_dev, m) votes of the session's LFs on dev."""
        return self._L[self._n_train :]

    @property
    def new_lfs(self) -> list[LabelingFunction]:
        """LFs in the set that are not the project's own (added or replaced in the session)."""
        return [lf for lf in self._lfs if self._project.get(lf.name) is not lf]

    @staticmethod
    def _check_unique(names: Sequence[str]) -> None:
        seen = set()
        for name in names:
            if name in seen:
                raise WorkbenchError(f"two LFs are named {name!r}; LF names must be unique")
            seen.add(name)

    def _index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise WorkbenchError(f"no LF named {name!r} in the session; have: {', '.join(self.names) or 'none'}") from None

    def _apply(self, lfs: Sequence[LabelingFunction]) -> np.ndarray:
        prepare_similarity(lfs, self._frame, cache=self.cache)
        return apply_lfs(lfs, self._frame, cardinality=self.config.cardinality, spacy_model=self.config.lfs.spacy_model,
                         cache=self.cache, n_jobs=self.config.lfs.n_jobs or None).L

    # ------------------------------------------------------------------ label model

    def label_model_dev_score(self, L_train: np.ndarray, L_dev: np.ndarray) -> float:
        """Dev accuracy of the project's selected label model refitted on ``L_train`` (n_train, m)
        and ``L_dev`` (n_dev, m) votes: fitted on both, dev labels visible only to models that
        read labels (cross-fitted then), as ``select_label_model`` scores a candidate.
        NaN with no LFs or fewer than 2 dev labels. The first call selects the model as the
        project's config says (``label_model.type = "auto"`` runs the whole selection)."""
        return self._score(np.vstack([L_train, L_dev]))

    def _score(self, L: np.ndarray) -> float:
        labelled = int((self.y_dev >= 0).sum())
        if L.shape[1] == 0 or labelled < 2:
            return float("nan")
        try:
            if self._template is None:
                # The project's own choice, once: "auto" runs the full selection on the starting set.
                model, _ = fit_label_model(self.config, L[: self._n_train], L[self._n_train :], self.y_dev)
                self._template = type(model)(**model.get_params())
                self._label_model_name = type(model).__name__
            # One candidate, scored the way selection scores it (cross-fitted if it reads labels).
            selection = select_label_model(L[: self._n_train], L[self._n_train :], self.y_dev,
                                           self.config.cardinality, candidates=[self._template],
                                           random_state=self.config.seed, tie_se=0.0, n_folds=min(5, labelled))
        except LabelMatrixError:
            # e.g. Snorkel's model needs 3 LFs: no score for a set that small, rather than no report
            return float("nan")
        return float(selection.scores[0].dev_score)

    def _memo_score(self, L: np.ndarray) -> float:
        # The score is a function of the votes alone (dev labels and the seeded model are
        # fixed for the session): trying an LF again, or one that votes like an earlier
        # one, costs no refit.
        key = _votes_key(L)
        if key not in self._scores:
            self._scores[key] = self._score(L)
        return self._scores[key]

    @property
    def label_model_score(self) -> float:
        """Dev accuracy of the selected label model on the session's current LF set."""
        return self._memo_score(self._L)

    # ------------------------------------------------------------------ trying LFs

    def try_lf(self, lf: LabelingFunction, *, refit: bool = True) -> LFReport:
        """What ``lf`` would do to the session: see ``LFReport``. The session is unchanged.

        An LF named like one in the session is compared in its place (a fix).
        ``refit=False`` skips the label model's refit with the LF (``score_with`` is NaN):
        the LF's own numbers come back in a fraction of the time on big data.
        """
        start = time.perf_counter()
        column = self._apply([lf])[:, 0]
        applied = time.perf_counter()
        replaces = lf.name if lf.name in self.names else None
        keep = [j for j, name in enumerate(self.names) if name != lf.name]
        others, other_names = self._L[:, keep], [self.names[j] for j in keep]
        without = self._memo_score(others) if others.shape[1] else float("nan")
        L_with = np.column_stack([others, column])
        score_with = self._memo_score(L_with) if refit else float("nan")
        fitted = time.perf_counter()
        report = self._report(lf, column, others, other_names, L_with, without, score_with, replaces)
        end = time.perf_counter()
        return dataclasses.replace(report, seconds={"apply": round(applied - start, 4),
                                                    "label_model": round(fitted - applied, 4),
                                                    "total": round(end - start, 4)})

    def _report(self, lf, column, others, other_names, L_with, without, score_with, replaces) -> LFReport:
        n = self._n_train
        classes = self.config.classes
        train_col, dev_col = column[:n], column[n:]
        L_train_with = L_with[:n]
        voted_dev = dev_col != ABSTAIN
        dev_votes = int(voted_dev.sum())
        dev_correct = int((dev_col[voted_dev] == self.y_dev[voted_dev]).sum())
        low, high = wilson_interval(dev_correct, dev_votes)
        rng = np.random.default_rng(self._rng_seed)
        return LFReport(
            name=lf.name, kind=lf_kind(lf), classes=tuple(classes), n_train=n, n_dev=len(dev_col),
            coverage=float(coverage(L_train_with)[-1]) if n else float("nan"),
            overlap=float(overlaps(L_train_with)[-1]) if n else float("nan"),
            conflict=float(conflicts(L_train_with)[-1]) if n else float("nan"),
            polarity=tuple(int(c) for c in np.unique(column) if c != ABSTAIN),
            dev_votes=dev_votes, dev_correct=dev_correct,
            dev_accuracy=dev_correct / dev_votes if dev_votes else float("nan"),
            dev_interval=(float(low), float(high)),
            conflicts_with=self._conflicts_with(train_col, others[:n], other_names),
            label_model=self._label_model_name or "(no label model: no LFs)", metric="accuracy",
            score_without=without, score_with=score_with,
            examples={classes[c]: self._rows(self.train, np.flatnonzero(train_col == c), rng)
                      for c in range(len(classes)) if (train_col == c).any()},
            wrong=self._wrong(dev_col),
            uncovered=self._rows(self.train, np.flatnonzero((L_train_with == ABSTAIN).all(axis=1)), rng),
            uncovered_share=float((L_train_with == ABSTAIN).all(axis=1).mean()) if n else float("nan"),
            replaces=replaces,
        )

    @staticmethod
    def _conflicts_with(col: np.ndarray, others: np.ndarray, names: Sequence[str], top: int = 5) -> pd.DataFrame:
        both = (col[:, None] != ABSTAIN) & (others != ABSTAIN)
        fights = (both & (others != col[:, None])).sum(axis=0)
        table = pd.DataFrame({"lf": list(names), "overlap_rows": both.sum(axis=0).astype(int),
                              "conflict_rows": fights.astype(int),
                              "conflict": fights / max(len(col), 1)})
        table = table[table["conflict_rows"] > 0]
        return table.sort_values(["conflict_rows", "lf"], ascending=[False, True], kind="stable").head(top) \
            .reset_index(drop=True)

    def _rows(self, frame: pd.DataFrame, positions: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        if len(positions) > self.examples:
            positions = np.sort(rng.choice(positions, size=self.examples, replace=False))
        return frame.iloc[positions][["id", "text"]].reset_index(drop=True)

    def _wrong(self, dev_col: np.ndarray) -> pd.DataFrame:
        wrong = np.flatnonzero((dev_col != ABSTAIN) & (dev_col != self.y_dev) & (self.y_dev >= 0))
        classes = self.config.classes
        table = self.dev.iloc[wrong][["id", "text"]].reset_index(drop=True)
        table["vote"] = [classes[c] for c in dev_col[wrong]]
        table["gold"] = [classes[c] for c in self.y_dev[wrong]]
        return table

    # ------------------------------------------------------------------ changing the set

    def add(self, lf: LabelingFunction) -> Workbench:
        """Add ``lf`` to the session (raises ``WorkbenchError`` if its name is taken: use ``replace``)."""
        if lf.name in self.names:
            raise WorkbenchError(f"an LF named {lf.name!r} is already in the session; use replace()")
        self._L = np.column_stack([self._L, self._apply([lf])[:, 0]])
        self._lfs.append(lf)
        return self

    def remove(self, name: str) -> Workbench:
        """Drop the LF called ``name`` from the session."""
        j = self._index(name)
        self._L = np.delete(self._L, j, axis=1)
        del self._lfs[j]
        return self

    def replace(self, lf: LabelingFunction, name: str | None = None) -> Workbench:
        """Put ``lf`` in place of the LF called ``name`` (default: ``lf.name``), same column."""
        j = self._index(lf.name if name is None else name)
        if lf.name != self.names[j] and lf.name in self.names:
            raise WorkbenchError(f"an LF named {lf.name!r} is already in the session")
        self._L[:, j] = self._apply([lf])[:, 0]
        self._lfs[j] = lf
        return self

    # ------------------------------------------------------------------ views

    def summary(self) -> pd.DataFrame:
        """One row per session LF: kind, source (project/session), polarity, coverage,
        overlaps, conflicts on train, and dev votes, accuracy with a 95% Wilson interval."""
        table = lf_summary(self.L_train, self.names)
        voted = self.L_dev != ABSTAIN
        votes = voted.sum(axis=0)
        correct = (voted & (self.L_dev == self.y_dev[:, None])).sum(axis=0)
        low, high = wilson_interval(correct, votes)
        with np.errstate(invalid="ignore", divide="ignore"):
            accuracy = np.where(votes > 0, correct / np.maximum(votes, 1), np.nan)
        table.insert(0, "kind", [lf_kind(lf) for lf in self._lfs])
        table.insert(1, "source", ["project" if self._project.get(lf.name) is lf else "session" for lf in self._lfs])
        table["dev_votes"] = votes.astype(int)
        table["dev_accuracy"] = accuracy
        table["dev_low"] = low
        table["dev_high"] = high
        return table

    def _votes_text(self, rows: np.ndarray) -> list[str]:
        classes, names = self.config.classes, self.names
        return [", ".join(f"{names[j]}={classes[v]}" for j, v in enumerate(row) if v != ABSTAIN) for row in rows]

    def _split(self, split: str) -> tuple[pd.DataFrame, np.ndarray]:
        if split == "train":
            return self.train, self.L_train
        if split == "dev":
            return self.dev, self.L_dev
        raise WorkbenchError(f"split must be 'train' or 'dev', got {split!r}")

    def _browse(self, split: str, positions: np.ndarray) -> pd.DataFrame:
        frame, L = self._split(split)
        table = frame.iloc[positions][["id", "text"]].reset_index(drop=True)
        if split == "dev":
            table["gold"] = [self.config.classes[c] if c >= 0 else "" for c in frame["label"].to_numpy()[positions]]
        table["votes"] = self._votes_text(L[positions])
        return table

    def search(self, pattern: str, *, split: str = "train", n: int = 20, case: bool = False) -> pd.DataFrame:
        """The first ``n`` rows of ``split`` whose text matches the regex ``pattern``, with
        the session's current votes (``votes``: "lf=class, ..."; ``gold`` on dev).

        Raises ``WorkbenchError`` for an invalid regex."""
        frame, _ = self._split(split)
        try:
            compiled = re.compile(pattern, 0 if case else re.IGNORECASE)
        except re.error as exc:
            raise WorkbenchError(f"invalid search pattern {pattern!r}: {exc}") from exc
        hits = frame["text"].astype(str).map(lambda t: bool(compiled.search(t))).to_numpy()
        return self._browse(split, np.flatnonzero(hits)[:n])

    def sample(self, n: int = 10, *, where: str | Callable | np.ndarray | None = None, split: str = "train",
               random_state: int | None = None) -> pd.DataFrame:
        """``n`` random rows of ``split`` (seeded), with the session's current votes.

        ``where``: ``"uncovered"`` (no LF votes), ``"covered"``, ``"conflict"`` (LFs
        disagree), an LF name (rows it votes on), a boolean mask over the split's rows, or
        a callable taking the split's frame and returning such a mask.
        """
        frame, L = self._split(split)
        voted = L != ABSTAIN
        if where is None:
            mask = np.ones(len(frame), dtype=bool)
        elif isinstance(where, str) and where in ("uncovered", "covered", "conflict"):
            lo = np.where(voted, L, np.iinfo(np.int64).max).min(axis=1) if L.shape[1] else np.zeros(len(frame))
            hi = np.where(voted, L, -1).max(axis=1) if L.shape[1] else np.zeros(len(frame))
            mask = {"uncovered": ~voted.any(axis=1), "covered": voted.any(axis=1),
                    "conflict": voted.any(axis=1) & (lo != hi)}[where]
        elif isinstance(where, str):
            mask = voted[:, self._index(where)]
        else:
            mask = np.asarray(where(frame) if callable(where) else where, dtype=bool)
            if mask.shape != (len(frame),):
                raise WorkbenchError(f"where= gave a mask of shape {mask.shape}; the {split} split has {len(frame)} rows")
        positions = np.flatnonzero(mask)
        rng = np.random.default_rng(self._rng_seed if random_state is None else random_state)
        if len(positions) > n:
            positions = np.sort(rng.choice(positions, size=n, replace=False))
        return self._browse(split, positions)

    # ------------------------------------------------------------------ saving

    def save(self, module: str, *, overwrite: bool = False, project_file: str | Path | None = None,
             list_in_project: bool = True) -> SavedModule:
        """Write the session's new LFs (``new_lfs``) into the LF module ``module``.

        ``module``: a dotted name under the project's LF root (``lfs.root``), e.g.
        ``"labeling_functions.youtube_spam_more"``. Declarative and ``similar_to`` LFs are
        written as factory calls, others by their source with the imports, constants and
        helpers they use. The written module is imported and applied to dev before this
        returns; if its votes differ from the session's, the file is removed and
        ``WorkbenchError`` says which LF differs. ``SavedModule.config`` is the project's
        config with the module added to ``lfs.modules``; ``SavedModule.replaces`` names the
        project LFs a saved one replaces (remove them from their module before retraining).
        The module is also added to ``lfs.modules`` in ``project_file`` (default: the
        ``project.toml`` in the config's folder, when there is one; comments kept), so the
        next ``retrain --config`` runs it; ``SavedModule.listed`` says whether it was added
        (``list_in_project=False``: the file is left as it is).
        """
        lfs = self.new_lfs
        if not lfs:
            raise WorkbenchError("no new LFs in the session to save")
        columns = [self.names.index(lf.name) for lf in lfs]
        saved = write_lf_module(lfs, module, self.config, check_frame=self.dev, check_L=self.L_dev[:, columns],
                                overwrite=overwrite)
        project_file = Path(self.config.base_dir) / "project.toml" if project_file is None else Path(project_file)
        listed = list_in_project and project_file.is_file() and add_lf_module(project_file, module)
        return dataclasses.replace(saved, replaces=tuple(lf.name for lf in lfs if lf.name in self._project),
                                   project_file=project_file if project_file.is_file() else None, listed=listed)

    def __repr__(self) -> str:
        return (f"Workbench({self.config.name!r}: {len(self.train)} train / {len(self.dev)} dev rows, "
                f"{len(self._lfs)} LFs, {len(self.new_lfs)} new)")
