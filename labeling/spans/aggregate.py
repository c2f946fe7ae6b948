"""Token-level aggregation of span LFs ("label models" for spans), and selection on dev.

Every model reads the IO vote tensor ``V`` (n_tokens x m, ``tags.vote_tensor``) of
documents stacked in order, with ``lengths`` (tokens per document), and leaves IO tags
(``predict_tags``, (n_tokens,)) and entity spans per document (``predict_spans``). The
scikit-learn contract holds: constructor keywords, ``fit`` returns self, learned
attributes end in ``_``, ``random_state``.

- ``TokenMajorityVote``: the plain token vote. A token takes the type most LFs give it
  (ties: the lower type index); LFs without a span on the token abstain; entities are
  maximal runs of one type. WRENCH's MajorityVoting counts O votes too, which is why its
  published BC5CDR figure (81.71) is lower than this vote's.
- ``TokenWeightedVote``: each LF's vote for type t weighs its token-level precision for t
  on labelled (dev) tokens, smoothed toward all LFs' pooled precision; with
  ``weighting="log_odds"`` a vote weighs ``log(p / (1 - p))``, so LFs below 50% precision
  argue against their type and a token whose score is not above 0 stays O.
- ``SpanHMM``: the hidden Markov model of skweak (Lison et al. 2021) and WRENCH's HMM
  (after Lison et al. 2020): hidden BIO (or IO) states, per-LF emission matrices over
  the LF's BIO (or IO) outputs, with an LF's silence observed as O; initialised from the
  majority vote and fitted by EM (forward-backward in log space over all documents at
  once) with a Dirichlet prior centred on that initial estimate. Decoding takes each
  token's most probable state and repairs an I after O into a B.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, LabelMatrixError, NotFittedError
from ..matrix import ABSTAIN
from .doclevel import add_abbreviations
from .metrics import entity_counts, micro_f1
from .tags import split_docs, tags_to_spans

_NEG = -1e30  # log(0) that keeps max-subtracted sums finite


def _check_votes(V, lengths, n_types: int, n_lfs: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    V = np.asarray(V)
    if V.ndim != 2 or not np.issubdtype(V.dtype, np.integer):
        raise LabelMatrixError(f"the vote tensor must be a 2-d int array (n_tokens x m), got {V.dtype} {V.shape}")
    bad = (V < ABSTAIN) | (V >= n_types)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise LabelMatrixError(f"vote {V[i, j]} at token {i}, LF {j} is neither ABSTAIN (-1) nor a type index "
                               f"< {n_types}")
    if n_lfs is not None and V.shape[1] != n_lfs:
        raise LabelMatrixError(f"the model was fitted on {n_lfs} LFs but the votes have {V.shape[1]}")
    lengths = np.asarray([len(V)] if lengths is None else lengths, dtype=np.int64)
    if (lengths < 0).any() or lengths.sum() != len(V):
        raise LabelMatrixError(f"lengths sum to {lengths.sum()} but the votes have {len(V)} tokens")
    return V.astype(np.int64, copy=False), lengths


class _TokenAggregator:
    fits_to_labels = False  # reads gold tags in fit (scored by cross-fitting on dev)
    _learned: tuple[str, ...] = ()

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in self._params}

    def _check_fitted(self) -> None:
        if not hasattr(self, "n_lfs_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit first")

    def predict_spans(self, V, lengths) -> list[list[tuple[int, int, int]]]:
        """Entity spans ``(start, end, type)`` per document (token offsets, end exclusive)."""
        tags = self.predict_tags(V, lengths)
        return [tags_to_spans(t, self._decode_scheme) for t in split_docs(tags, np.asarray(lengths))]

    _decode_scheme = "io"


class TokenMajorityVote(_TokenAggregator):
    """The plain token-level majority vote (see the module docstring).

    ``min_votes``: the fewest LF votes for a type that make a token an entity.
    """

    _params = ("n_types", "min_votes", "random_state")

    def __init__(self, n_types: int = 2, *, min_votes: int = 1, random_state: int = 0):
        self.n_types, self.min_votes, self.random_state = n_types, min_votes, random_state

    def fit(self, V, lengths=None, y=None):
        V, _ = _check_votes(V, lengths, self.n_types)
        self.n_lfs_ = V.shape[1]
        return self

    def type_counts(self, V) -> np.ndarray:
        return np.stack([(V == t).sum(axis=1) for t in range(self.n_types)], axis=1)

    def predict_tags(self, V, lengths=None) -> np.ndarray:
        """IO tags ``(n_tokens,)``: the type index, or ABSTAIN (-1) for O."""
        self._check_fitted()
        V, _ = _check_votes(V, lengths, self.n_types, self.n_lfs_)
        counts = self.type_counts(V)
        return np.where(counts.max(axis=1, initial=0) >= self.min_votes, counts.argmax(axis=1), ABSTAIN) \
            if self.n_types else np.full(len(V), ABSTAIN)


class TokenWeightedVote(_TokenAggregator):
    """A vote weighted by each LF's per-type token precision on labelled tokens.

    ``fit(V, lengths, y)``: ``y`` (n_tokens,) gold IO tags of the labelled (dev) tokens.
    ``precision_[j, t] = (tp + smoothing * pooled_t) / (votes + smoothing)``, pooled_t the
    precision of all LFs' votes for t together. ``weighting``: "precision" (a linear
    vote: every voted token stays an entity, weights settle conflicts) or "log_odds"
    (see the module docstring).
    """

    fits_to_labels = True
    _params = ("n_types", "weighting", "smoothing", "random_state")

    def __init__(self, n_types: int = 2, *, weighting: str = "log_odds", smoothing: float = 10.0,
                 random_state: int = 0):
        self.n_types, self.weighting, self.smoothing, self.random_state = n_types, weighting, smoothing, random_state

    def fit(self, V, lengths=None, y=None):
        if self.weighting not in ("precision", "log_odds") or not self.smoothing >= 0:
            raise ConfigError(f"weighting must be 'precision' or 'log_odds' and smoothing >= 0, got "
                              f"{self.weighting!r}, {self.smoothing!r}")
        V, _ = _check_votes(V, lengths, self.n_types)
        if y is None or np.shape(y) != (len(V),):
            raise LabelMatrixError(f"TokenWeightedVote needs gold IO tags y of shape ({len(V)},)")
        y = np.asarray(y)
        votes = np.stack([(V == t).sum(axis=0) for t in range(self.n_types)], axis=1).astype(float)  # (m, k)
        hits = np.stack([((V == t) & (y[:, None] == t)).sum(axis=0) for t in range(self.n_types)], axis=1)
        pooled = np.divide(hits.sum(axis=0), votes.sum(axis=0), out=np.full(self.n_types, 0.5),
                           where=votes.sum(axis=0) > 0)
        self.precision_ = (hits + self.smoothing * pooled) / np.maximum(votes + self.smoothing, 1e-12)
        self.precision_[votes + self.smoothing == 0] = 0.5
        self.n_lfs_ = V.shape[1]
        return self

    def scores(self, V) -> np.ndarray:
        """Per token and type the summed vote weights, ``(n_tokens, k)``."""
        p = np.clip(self.precision_, 1e-3, 1 - 1e-3)
        w = p if self.weighting == "precision" else np.log(p / (1 - p))
        return np.stack([((V == t) * w[:, t]).sum(axis=1) for t in range(self.n_types)], axis=1)

    def predict_tags(self, V, lengths=None) -> np.ndarray:
        self._check_fitted()
        V, _ = _check_votes(V, lengths, self.n_types, self.n_lfs_)
        s = np.where(np.stack([(V == t).any(axis=1) for t in range(self.n_types)], axis=1), self.scores(V), -np.inf)
        best = s.argmax(axis=1)
        return np.where(s.max(axis=1) > (0 if self.weighting == "log_odds" else -np.inf), best, ABSTAIN)


def _run_starts(V: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """True where a token's vote starts a run (differs from the token before, or a document starts)."""
    start = np.ones(V.shape, dtype=bool)
    start[1:] = V[1:] != V[:-1]
    first = np.concatenate([[0], np.cumsum(lengths)[:-1]])[lengths > 0]
    start[first] = True
    return start


def _states(V: np.ndarray, lengths: np.ndarray, scheme: str) -> np.ndarray:
    """IO votes -> state / observation numbers: 0 = O; IO: 1 + t; BIO: 1 + 2t (B), 2 + 2t (I)."""
    if scheme == "io":
        return np.where(V >= 0, V + 1, 0)
    start = _run_starts(V, lengths)
    return np.where(V >= 0, 1 + 2 * V + (~start), 0)


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


class SpanHMM(_TokenAggregator):
    """An HMM over hidden BIO (or IO) states with per-LF emissions, fitted by EM.

    ``scheme``: "bio" or "io". ``prior_strength``: the weight of the Dirichlet prior on
    each LF's emissions (and on the transitions), centred on the majority-vote estimate,
    relative to the data (1.0: as many pseudo-counts as tokens): larger keeps the model
    nearer the vote. On BC5CDR valid (``lf_rec``) a weak prior (0.1) lets EM drift to 73.4
    entity F1 (the likelihood rises while F1 falls); 10 keeps 84.7. ``n_iter``, ``tol``:
    EM stops after ``n_iter`` rounds or when the mean log-likelihood per token improves by
    less than ``tol``. The fit is deterministic (the majority vote starts it);
    ``random_state`` is kept for the contract. Learned: ``start_`` (S,), ``transition_``
    (S, S), ``emission_`` (m, S, S) (state x observed output), ``log_likelihood_`` per EM
    round. Sources: skweak's ``HMM`` (Lison et al. 2021), WRENCH's HMM label model.
    """

    _params = ("n_types", "scheme", "prior_strength", "n_iter", "tol", "random_state")
    _learned = ("start_", "transition_", "emission_")

    def __init__(self, n_types: int = 2, *, scheme: str = "bio", prior_strength: float = 10.0, n_iter: int = 30,
                 tol: float = 1e-5, random_state: int = 0):
        self.n_types, self.scheme, self.prior_strength = n_types, scheme, prior_strength
        self.n_iter, self.tol, self.random_state = n_iter, tol, random_state

    @property
    def _decode_scheme(self) -> str:
        return self.scheme

    @property
    def n_states(self) -> int:
        return 1 + self.n_types * (2 if self.scheme == "bio" else 1)

    def _allowed(self) -> tuple[np.ndarray, np.ndarray]:
        S = self.n_states
        trans, start = np.ones((S, S), dtype=bool), np.ones(S, dtype=bool)
        if self.scheme == "bio":
            for t in range(self.n_types):
                inside = 2 + 2 * t
                trans[:, inside] = False
                trans[[inside - 1, inside], inside] = True  # I-t only after B-t or I-t
                start[inside] = False
        return trans, start

    def fit(self, V, lengths=None, y=None):
        if self.scheme not in ("io", "bio") or not self.prior_strength >= 0 or not self.n_iter >= 0:
            raise ConfigError(f"SpanHMM needs scheme 'io' or 'bio', prior_strength >= 0 and n_iter >= 0, got "
                              f"{self.scheme!r}, {self.prior_strength!r}, {self.n_iter!r}")
        V, lengths = _check_votes(V, lengths, self.n_types)
        obs = _states(V, lengths, self.scheme)
        mv = TokenMajorityVote(self.n_types).fit(V, lengths).predict_tags(V, lengths)
        gamma = np.eye(self.n_states)[_states(mv[:, None], lengths, self.scheme)[:, 0]]
        firsts = np.concatenate([[0], np.cumsum(lengths)[:-1]])[lengths > 0]
        nxt = np.ones(len(V), dtype=bool)
        nxt[np.cumsum(lengths) - 1] = False  # the last token of a document has no successor
        xi = np.einsum("ns,nt->st", gamma[:-1][nxt[:-1]], gamma[1:][nxt[:-1]]) if len(V) > 1 else 0
        self.n_lfs_ = V.shape[1]
        self._m_step(obs, gamma, gamma[firsts].sum(axis=0), xi, prior=None)
        self.log_likelihood_ = []
        for _ in range(self.n_iter):
            gamma, start_counts, xi, ll = self._e_step(obs, lengths)
            self._m_step(obs, gamma, start_counts, xi, prior=self._prior)
            self.log_likelihood_.append(ll / max(len(V), 1))
            if len(self.log_likelihood_) > 1 and self.log_likelihood_[-1] - self.log_likelihood_[-2] < self.tol:
                break
        return self

    def _m_step(self, obs, gamma, start_counts, xi, prior) -> None:
        S, m = self.n_states, obs.shape[1]
        counts = np.empty((m, S, S))
        for j in range(m):
            for s in range(S):
                counts[j, s] = np.bincount(obs[:, j], weights=gamma[:, s], minlength=S)
        allowed, allowed_start = self._allowed()
        if prior is None:  # the majority-vote estimate: start and centre of the prior
            e_prior = np.full((m, S, S), 0.1)
            t_prior, s_prior = np.where(allowed, 0.1, 0.0), np.where(allowed_start, 0.1, 0.0)
        else:
            e_prior, t_prior, s_prior = prior
        emission = counts + e_prior
        transition = np.where(allowed, xi + t_prior, 0.0)
        start = np.where(allowed_start, start_counts + s_prior, 0.0)
        self.emission_ = emission / emission.sum(axis=2, keepdims=True)
        self.transition_ = transition / np.maximum(transition.sum(axis=1, keepdims=True), 1e-300)
        self.start_ = start / start.sum()
        if prior is None:
            k = self.prior_strength  # relative to the data: 1.0 weighs the prior as much as every token
            self._prior = (k * emission, k * transition + np.where(allowed, 1e-3, 0.0),
                           k * start + np.where(allowed_start, 1e-3, 0.0))

    def _log_params(self):
        with np.errstate(divide="ignore"):
            logs = [np.log(p) for p in (self.start_, self.transition_, self.emission_)]
        return [np.where(np.isfinite(x), x, _NEG) for x in logs]

    def _e_step(self, obs, lengths, need_xi: bool = True):
        """Forward-backward over all documents at once, in log space; documents are sorted
        by length so that step t touches only the prefix of those still running."""
        log_start, log_trans, log_emit = self._log_params()
        S = self.n_states
        emit = np.zeros((len(obs), S))
        for j in range(obs.shape[1]):
            emit += log_emit[j].T[obs[:, j]]
        order = np.argsort(-lengths, kind="stable")
        lengths_sorted = lengths[order]
        D, T = len(lengths), int(lengths.max(initial=0))
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        rows = np.repeat(np.arange(D), lengths_sorted)
        cols = np.concatenate([np.arange(n) for n in lengths_sorted]) if D else np.empty(0, np.int64)
        flat = np.concatenate([offsets[d] + np.arange(lengths[d]) for d in order]) if D else np.empty(0, np.int64)
        active = (lengths_sorted[None, :] > np.arange(T)[:, None]).sum(axis=1)  # docs still running at t
        B = np.zeros((D, T, S))
        B[rows, cols] = emit[flat]
        alpha, beta = np.zeros((D, T, S)), np.zeros((D, T, S))
        if T:
            alpha[:, 0] = log_start + B[:, 0]
        for t in range(1, T):
            a = active[t]
            alpha[:a, t] = _logsumexp(alpha[:a, t - 1, :, None] + log_trans, axis=1) + B[:a, t]
        last = np.maximum(lengths_sorted - 1, 0)
        ll = _logsumexp(alpha[np.arange(D), last], axis=1)
        xi = np.zeros((S, S))
        for t in range(T - 2, -1, -1):
            a = active[t + 1]
            ahead = (B[:a, t + 1] + beta[:a, t + 1])[:, None, :]
            beta[:a, t] = _logsumexp(log_trans + ahead, axis=2)
            if need_xi:
                xi += np.exp(alpha[:a, t, :, None] + log_trans + ahead - ll[:a, None, None]).sum(axis=0)
        gamma = np.exp(alpha[rows, cols] + beta[rows, cols] - ll[rows, None])
        gamma_flat = np.empty_like(gamma)
        gamma_flat[flat] = gamma
        start_counts = np.exp(alpha[:, 0] + beta[:, 0] - ll[:, None]).sum(axis=0) if T else np.zeros(S)
        return gamma_flat, start_counts, xi, float(ll[lengths_sorted > 0].sum())

    def predict_proba(self, V, lengths=None) -> np.ndarray:
        """Posterior state marginals ``(n_tokens, S)`` (state numbering in ``tags``)."""
        self._check_fitted()
        V, lengths = _check_votes(V, lengths, self.n_types, self.n_lfs_)
        return self._e_step(_states(V, lengths, self.scheme), lengths, need_xi=False)[0]

    def predict_tags(self, V, lengths=None) -> np.ndarray:
        """Each token's most probable state: BIO tags (``scheme="bio"``) or IO tags."""
        states = self.predict_proba(V, lengths).argmax(axis=1)
        return states if self.scheme == "bio" else states - 1


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class SpanSelection:
    """The chosen fitted aggregator, every candidate's dev entity F1, and the margin
    (``tolerance``, one bootstrap standard error over dev documents) within which the
    earliest (simplest) candidate was preferred to the best."""

    model: _TokenAggregator
    name: str
    scores: tuple[tuple[str, float], ...]
    tolerance: float
    index: int
    fitted: tuple = ()  # every candidate as fitted (unsupervised: train + dev; label readers: all of dev)
    abbreviations: bool = False  # the chosen pipeline adds short forms after aggregating (doclevel)


def default_span_candidates(n_types: int, random_state: int = 0) -> list[_TokenAggregator]:
    """The default grid, simplest first (the one-SE rule prefers the earliest).

    The HMM's prior strengths {10, 30} are the two best of 0.1, 0.3, 1, 3, 10, 30, 100 by
    BC5CDR valid entity F1 with the ``lf_rec`` LFs (84.67, 84.64; 100: 84.60, 1 and 3:
    82.81, 0.3: 75.64, 0.1: 73.39), from ``python benchmarks/spans.py --prior-sweep``, which
    never reads the test split. (An earlier grid {1, 10} had been set after a run that
    printed test F1 too.)"""
    rs = random_state
    return [
        TokenMajorityVote(n_types, random_state=rs),
        TokenWeightedVote(n_types, weighting="precision", random_state=rs),
        TokenWeightedVote(n_types, weighting="log_odds", random_state=rs),
        SpanHMM(n_types, scheme="io", random_state=rs),
        SpanHMM(n_types, scheme="bio", prior_strength=10.0, random_state=rs),
        SpanHMM(n_types, scheme="bio", prior_strength=30.0, random_state=rs),
    ]


def candidate_name(model: _TokenAggregator) -> str:
    defaults = type(model)().get_params()
    changed = {k: v for k, v in model.get_params().items() if k not in ("n_types", "random_state") and v != defaults[k]}
    return f"{type(model).__name__}({', '.join(f'{k}={v!r}' for k, v in changed.items())})"


def _clone(model):
    return type(model)(**model.get_params())


def select_span_aggregator(V_train, lengths_train, V_dev, lengths_dev, gold_dev: Sequence[Sequence[tuple]],
                           n_types: int, *, candidates: Sequence[_TokenAggregator] | None = None,
                           n_folds: int = 5, tie_se: float = 1.0, random_state: int = 0,
                           dev_tokens: Sequence[Sequence[str]] | None = None) -> SpanSelection:
    """Fit each candidate, score its entity-level micro F1 on dev only, and pick one.

    Unsupervised candidates are fitted on the train and dev votes together; those that
    read gold tags (``fits_to_labels``) are scored by ``n_folds``-fold cross-fitting
    over dev documents and finally fitted on all of dev. The pick is the earliest
    candidate within ``tie_se`` bootstrap standard errors (200 resamples of dev
    documents) of the best dev F1: the one-SE rule of ``select_label_model``.
    ``gold_dev[d]``: dev document d's spans ``(start, end, type index)``.

    ``dev_tokens`` (the dev documents' tokens): each candidate is also scored followed
    by ``doclevel.add_abbreviations`` (named ``"<candidate> + abbreviations"``, listed
    after every plain candidate, so a plain one wins ties); ``abbreviations`` says
    whether the choice includes it, and ``fitted`` lists each fitted model once per row.
    """
    V_train, lengths_train = _check_votes(V_train, lengths_train, n_types)
    V_dev, lengths_dev = _check_votes(V_dev, lengths_dev, n_types, V_train.shape[1])
    if len(gold_dev) != len(lengths_dev):
        raise LabelMatrixError(f"gold_dev has {len(gold_dev)} documents but lengths_dev {len(lengths_dev)}")
    if not (isinstance(n_folds, int) and 2 <= n_folds <= max(len(lengths_dev), 2)) or tie_se < 0:
        raise ConfigError(f"need 2 <= n_folds <= dev documents and tie_se >= 0, got {n_folds!r}, {tie_se!r}")
    models = list(candidates) if candidates is not None else default_span_candidates(n_types, random_state)
    if not models:
        raise ConfigError("no candidate span aggregators to select from")
    from .tags import spans_to_tags

    y_dev = np.concatenate([spans_to_tags(g, n, "io") for g, n in zip(gold_dev, lengths_dev)]) \
        if len(lengths_dev) else np.empty(0, np.int64)
    V_fit, lengths_fit = np.vstack([V_train, V_dev]), np.concatenate([lengths_train, lengths_dev])
    rng = np.random.default_rng(random_state)
    folds = rng.permutation(len(lengths_dev)) % n_folds
    doc_of_token = np.repeat(np.arange(len(lengths_dev)), lengths_dev)
    if dev_tokens is not None and len(dev_tokens) != len(lengths_dev):
        raise LabelMatrixError(f"dev_tokens has {len(dev_tokens)} documents but lengths_dev {len(lengths_dev)}")
    fitted, scores, all_counts, extended = [], [], [], []
    for candidate in models:
        if candidate.fits_to_labels:
            pred = [None] * len(lengths_dev)
            for fold in range(n_folds):
                fit_tok = folds[doc_of_token] != fold
                model = _clone(candidate).fit(V_dev[fit_tok], lengths_dev[folds != fold], y_dev[fit_tok])
                held = np.flatnonzero(folds == fold)
                for d, spans in zip(held, model.predict_spans(V_dev[~fit_tok], lengths_dev[held])):
                    pred[d] = spans
            model = _clone(candidate).fit(V_dev, lengths_dev, y_dev)
        else:
            model = _clone(candidate).fit(V_fit, lengths_fit)
            pred = model.predict_spans(V_dev, lengths_dev)
        counts = entity_counts(gold_dev, pred)
        fitted.append(model)
        all_counts.append(counts)
        scores.append((candidate_name(candidate), micro_f1(counts)))
        if dev_tokens is not None:
            extended.append([add_abbreviations(t, p) for t, p in zip(dev_tokens, pred)])
    n_plain = len(scores)
    for i, pred in enumerate(extended):
        all_counts.append(entity_counts(gold_dev, pred))
        fitted.append(fitted[i])
        scores.append((f"{scores[i][0]} + abbreviations", micro_f1(all_counts[-1])))
    best = int(np.argmax([s for _, s in scores]))
    tolerance = 0.0
    if tie_se and len(lengths_dev):
        draws = rng.integers(0, len(lengths_dev), size=(200, len(lengths_dev)))
        tolerance = tie_se * float(np.std([micro_f1(all_counts[best][idx]) for idx in draws]))
    chosen = next(i for i, (_, s) in enumerate(scores) if s >= scores[best][1] - tolerance - 1e-12)
    return SpanSelection(fitted[chosen], scores[chosen][0], tuple(scores), tolerance, chosen, tuple(fitted),
                         abbreviations=chosen >= n_plain)
