"""The span end model: a spaCy NER pipeline trained on aggregated (weak) entity spans.

Training is spaCy's own config-based loop (``spacy.training.loop.train``: the
``optimize="efficiency"`` CPU config of ``spacy init config`` for a ``tok2vec`` + ``ner``
pipeline), seeded through ``[system] seed``, on a ``DocBin`` corpus written to a
temporary folder; the dev corpus (documents with gold spans) decides the best
checkpoint, which is the model kept (spaCy's ``model-best``). The model is saved with
spaCy's ``to_disk`` folder plus a ``manifest.json`` of sha256 checksums (no pickle) and
loaded back only after the checksums match.

Spans here are token offsets ``(start, end, type index)`` for pre-tokenized documents
(``predict_token_spans``) and character offsets ``(start, end, label, score)`` for texts
(``predict_text``); the score of an entity is the probability mass of the beam parses
that contain it (spaCy's ``beam_parse`` over the trained greedy model).
"""

from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from ..errors import ArtifactError, ConfigError, NotFittedError
from ..models import artifacts

KIND = "spacy_ner"


def _config(max_steps: int, eval_frequency: int, patience: int, dropout: float, width: int, seed: int):
    from spacy.cli.init_config import init_config

    config = init_config(lang="en", pipeline=["ner"], optimize="efficiency", gpu=False)
    overrides = {
        "system.seed": seed, "training.seed": seed, "training.max_steps": max_steps, "training.max_epochs": 0,
        "training.eval_frequency": eval_frequency, "training.patience": patience, "training.dropout": dropout,
        "components.tok2vec.model.encode.width": width,
    }
    return config, overrides


def make_doc(vocab, tokens: Sequence[str], spans: Sequence[tuple[int, int, int]] = (), types: Sequence[str] = ()):
    """A spaCy ``Doc`` of the given tokens (one space after each) with ``spans`` as its
    entities; overlapping spans keep the longest (``spacy.util.filter_spans``)."""
    from spacy.tokens import Doc, Span
    from spacy.util import filter_spans

    doc = Doc(vocab, words=list(tokens), spaces=[True] * len(tokens))
    doc.set_ents(filter_spans([Span(doc, s, e, label=types[t]) for s, e, t in spans]))
    return doc


def make_text_doc(nlp, text: str, spans: Sequence[tuple[int, int, str]]):
    """A ``Doc`` of ``text`` (the pipeline's tokenizer) with character ``spans`` as entities,
    each widened to the tokens it touches (``alignment_mode="expand"``)."""
    from spacy.util import filter_spans

    doc = nlp.make_doc(text)
    ents = [doc.char_span(s, e, label=label, alignment_mode="expand") for s, e, label in spans]
    doc.set_ents(filter_spans([e for e in ents if e is not None]))
    return doc


class SpacyNER:
    """A spaCy NER pipeline as an end model (see the module docstring).

    ``types``: the entity types (spaCy labels), in the project's order. ``max_steps``,
    ``eval_frequency`` (steps between dev evaluations), ``patience`` (steps without a
    better dev entity F1 before stopping), ``dropout``, ``width`` (tok2vec width): spaCy's
    training settings. Learned: ``nlp_`` (the best checkpoint on dev), ``dev_f1_`` (its dev
    entity F1 as spaCy scores it), ``train_seconds_``.
    """

    def __init__(self, types: Sequence[str] = (), *, max_steps: int = 3000, eval_frequency: int = 200,
                 patience: int = 1000, dropout: float = 0.1, width: int = 96, random_state: int = 0):
        self.types, self.max_steps, self.eval_frequency = tuple(types), max_steps, eval_frequency
        self.patience, self.dropout, self.width, self.random_state = patience, dropout, width, random_state

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in ("types", "max_steps", "eval_frequency", "patience", "dropout", "width",
                                                  "random_state")}

    def blank(self):
        """The untrained pipeline's vocabulary and tokenizer (to build training Docs)."""
        import spacy

        return spacy.blank("en")

    def fit(self, train_docs: Sequence, dev_docs: Sequence) -> SpacyNER:
        """Train on ``train_docs`` (spaCy Docs whose ``ents`` are the aggregated spans) and keep
        the checkpoint with the best entity F1 on ``dev_docs`` (Docs with gold ``ents``)."""
        import spacy
        from spacy.tokens import DocBin
        from spacy.training.initialize import init_nlp
        from spacy.training.loop import train

        if not self.types or self.max_steps < 1 or self.eval_frequency < 1:
            raise ConfigError(f"SpacyNER needs entity types, max_steps >= 1 and eval_frequency >= 1, got "
                              f"{self.types!r}, {self.max_steps!r}, {self.eval_frequency!r}")
        if not train_docs or not dev_docs:
            raise ConfigError(f"SpacyNER needs training and dev documents, got {len(train_docs)} and {len(dev_docs)}")
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="spacy-ner-") as tmp:
            tmp = Path(tmp)
            DocBin(docs=list(train_docs)).to_disk(tmp / "train.spacy")
            DocBin(docs=list(dev_docs)).to_disk(tmp / "dev.spacy")
            config, overrides = _config(self.max_steps, self.eval_frequency, self.patience, self.dropout,
                                        self.width, self.random_state)
            overrides["training.eval_frequency"] = min(self.eval_frequency, self.max_steps)
            overrides.update({"paths.train": str(tmp / "train.spacy"), "paths.dev": str(tmp / "dev.spacy")})
            config = spacy.util.load_config_from_str(config.to_str(), overrides=overrides, interpolate=False)
            nlp = init_nlp(config, use_gpu=-1)
            out = io.StringIO()
            (tmp / "out").mkdir()
            train(nlp, tmp / "out", use_gpu=-1, stdout=out, stderr=out)
            best = spacy.load(tmp / "out" / "model-best")
            self.dev_f1_ = float(best.meta.get("performance", {}).get("ents_f") or 0.0)
            self.nlp_ = best
            self.log_ = out.getvalue()
        self.train_seconds_ = time.perf_counter() - start
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "nlp_"):
            raise NotFittedError("SpacyNER is not fitted; call fit first")

    def predict_token_spans(self, tokens: Sequence[Sequence[str]]) -> list[list[tuple[int, int, int]]]:
        """Entities ``(start, end, type index)`` per pre-tokenized document (token offsets)."""
        self._check_fitted()
        index = {t: i for i, t in enumerate(self.types)}
        docs = (make_doc(self.nlp_.vocab, t) for t in tokens)
        return [[(e.start, e.end, index[e.label_]) for e in doc.ents if e.label_ in index]
                for doc in self.nlp_.pipe(docs)]

    def predict_text(self, texts: Sequence[str], beam_width: int = 8) -> list[list[dict]]:
        """Entities per text: ``{"start", "end", "label", "score"}``, character offsets (end
        exclusive), ``score`` in [0, 1] (the beam parses' probability of that entity)."""
        self._check_fitted()
        ner = self.nlp_.get_pipe("ner")
        out = []
        for doc in self.nlp_.pipe(texts):
            beams = ner.beam_parse([doc], beam_width=beam_width)
            scores = ner.scored_ents(beams)[0]
            out.append([{"start": e.start_char, "end": e.end_char, "label": e.label_,
                         "score": round(float(scores.get((e.start, e.end, e.label_), 0.0)), 6)} for e in doc.ents])
        return out

    def save(self, folder: str | Path) -> dict[str, str]:
        """``nlp.to_disk`` into a new ``folder`` plus a checksummed manifest; returns
        ``{file: sha256}`` (record it with the run and pass it to ``load``)."""
        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=False)
        self.nlp_.to_disk(folder / "pipeline")
        meta = {"params": {**self.get_params(), "types": list(self.types)}, "dev_f1": self.dev_f1_}
        return artifacts.write_manifest(folder, KIND, meta)

    @classmethod
    def load(cls, folder: str | Path, expected=None) -> SpacyNER:
        """The model ``save`` wrote, after every file's sha256 matched (``expected``: the
        run record's; raises ``ArtifactError`` for a missing or changed file)."""
        import spacy

        folder = Path(folder)
        manifest = artifacts.read_manifest(folder, expected)
        if manifest["kind"] != KIND:
            raise ArtifactError(f"{folder}: a {manifest['kind']!r} artifact, not a {KIND!r} one")
        params = dict(manifest["meta"]["params"])
        model = cls(**{**params, "types": tuple(params["types"])})
        with artifacts.artifact_file(folder / "pipeline"):
            model.nlp_ = spacy.load(folder / "pipeline")
        model.dev_f1_ = manifest["meta"].get("dev_f1")
        return model


def train_ner_on_aggregation(selection, train, dev, *, seed: int = 0, **params):
    """Train ``SpacyNER`` on ``selection``'s spans of the ``train`` split (a ``SpanDataset``;
    short forms added when the selection includes them) with ``dev``'s gold spans as the
    dev corpus. Returns the model and a summary (dev entity F1, training seconds)."""
    from .doclevel import add_abbreviations

    pred = selection.model.predict_spans(train.votes(), train.lengths)
    if selection.abbreviations:
        pred = [add_abbreviations(t, p) for t, p in zip(train.tokens, pred)]
    model = SpacyNER(train.types, random_state=seed, **params)
    vocab = model.blank().vocab
    model.fit([make_doc(vocab, t, p, train.types) for t, p in zip(train.tokens, pred)],
              [make_doc(vocab, t, g, train.types) for t, g in zip(dev.tokens, dev.gold)])
    return model, {"dev_f1": model.dev_f1_, "train_s": model.train_seconds_,
                   "summary": f"max_steps={model.max_steps}, best on dev"}
