"""Snorkel parity: Snorkel 0.10's own LF, preprocessor, nlp-LF and applier cases, and the faults of issue 16.

Each case builds its LFs and frame afresh (LFs may keep state, Snorkel's
preprocessors memoize) and is run with Snorkel's ``PandasLFApplier`` and with
``apply_lfs`` in every mode: one process; worker processes forced on the small
frame; the vote cache applied twice, and read by a fresh cache object as a new
process would; the parse cache; a Dask cluster. L and fault counts must be
equal, or, for the documented differences (README, "Where we differ from
Snorkel"), what the README says must hold.

The cases are written after Snorkel's tests (test/labeling/lf/test_core.py,
test_nlp.py, test/labeling/apply/test_lf_applier.py, test/map/test_core.py),
not copied from them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from snorkel.labeling import LabelingFunction, PandasLFApplier, labeling_function
from snorkel.labeling.lf.nlp import BaseNLPLabelingFunction, nlp_labeling_function
from snorkel.map import Mapper, lambda_mapper
from snorkel.preprocess import preprocessor
from snorkel.preprocess.nlp import SpacyPreprocessor

from labeling import apply_lfs
from labeling.errors import LabelingError
from labeling.lf.cache import LFCache, forget_loaded
from labeling.lf.declarative import keyword_lf, length_lf, regex_lf
from labeling.lf.core import resolve_spacy_model
from labeling.lf.parse_cache import ParseCache

from ..conftest import REPO

MODEL = resolve_spacy_model()
# Snorkel configures one spaCy preprocessor per nlp LF class and refuses other settings in the
# same process: these are the settings tests/test_parse_cache.py uses too.
NLP = dict(language=MODEL, disable=["lemmatizer"])


class _OwnConfigNLP(BaseNLPLabelingFunction):
    """An nlp LF class of its own, so its LFs can name preprocessors (Snorkel keeps one config per class)."""

    @classmethod
    def _create_preprocessor(cls, parameters):
        return SpacyPreprocessor(**parameters._asdict())


@dataclass(frozen=True)
class Case:
    """``make()`` -> (lfs, frame), built afresh for every run."""

    id: str
    make: Callable[[], tuple[list, pd.DataFrame]]
    cardinality: int = 2
    fault_tolerant: bool = False
    #: None: equal to Snorkel. Otherwise the README's words for the difference, and a check of ours
    differs: str | None = None
    check: Callable | None = None


CASES: list[Case] = []


def case(id, cardinality=2, fault_tolerant=False, differs=None, check=None, both=False):
    """Register ``make`` as a case (``both``: also fault-tolerant)."""

    def register(make):
        for ft in ((False, True) if both else (fault_tolerant,)):
            CASES.append(Case(f"{id}-{'tolerant' if ft else 'strict'}", make, cardinality, ft, differs, check))
        return make

    return register


NUMS = [3, 43, 12, 9, 3]


def _nums(values=NUMS):
    return pd.DataFrame({"num": values})


# --------------------------------------------------------------------------- Snorkel's LF cases (lf/test_core.py)


@case("lf-threshold")
def _():
    return [LabelingFunction("over_42", f=lambda x: 0 if x.num > 42 else -1)], _nums([43, 19, 42, 100])


@case("lf-resources")
def _():
    def in_db(x, db):
        return 0 if x.num in db else -1

    return [LabelingFunction("in_db", f=in_db, resources=dict(db=[3, 6, 43]))], _nums([43, 19, 6])


def _squaring():
    @preprocessor()
    def square(x):
        x.num = x.num**2  # an existing field, written by attribute
        return x

    return square


@case("lf-preprocessor-chain")
def _():
    square = _squaring()
    return [LabelingFunction("sq_sq", f=lambda x: 0 if x.num > 42 else -1, pre=[square, square])], _nums([43, 6, 2])


@case("lf-preprocessor-returns-none", both=True)
def _():
    @preprocessor()
    def returns_none(x):
        return None

    lf = LabelingFunction("none_pre", f=lambda x: 0 if x.num > 42 else -1, pre=[_squaring(), returns_none])
    return [lf], _nums([43, 1])


@case("lf-decorator-arguments")
def _():
    @labeling_function(name="my_lf", resources=dict(db=[3, 6, 43**2]), pre=[_squaring()])
    def lf(x, db):
        return 0 if x.num in db else -1

    return [lf], _nums([43, 19, 6])


# --------------------------------------------------------------------------- applier cases (apply/test_lf_applier.py)


def _applier_lfs():
    @preprocessor()
    def square(x):
        x.num_squared = x.num**2  # a new field, set as an attribute: Snorkel's most common idiom
        return x

    @labeling_function()
    def f(x):
        return 0 if x.num > 42 else -1

    @labeling_function(pre=[square])
    def fp(x):
        return 0 if x.num_squared > 42 else -1

    @labeling_function(resources=dict(db=[3, 6, 9]))
    def g(x, db):
        return 0 if x.num in db else -1

    @labeling_function()
    def h(x):
        return -1

    return f, fp, g, h


@case("applier-basic")
def _():
    f, _, g, _ = _applier_lfs()
    return [f, g], _nums()


@case("applier-preprocessor")
def _():
    f, fp, _, _ = _applier_lfs()
    return [f, fp], _nums()


@case("applier-preprocessor-memoized")
def _():
    hits = {"n": 0}

    @preprocessor(memoize=True)
    def square_memoize(x):
        hits["n"] += 1
        x.num_squared = x.num**2
        return x

    @labeling_function(pre=[square_memoize])
    def fp_memoized(x):
        return 0 if x.num_squared > 42 else -1

    return [_applier_lfs()[0], fp_memoized], _nums()


@case("applier-no-labels")
def _():
    h = _applier_lfs()[3]
    return [h, h], _nums()


TEXTS = ["Jane", "Jane plays soccer.", "Jane plays soccer."]


_SPACY_PRE: dict[bool, SpacyPreprocessor] = {}


def _spacy_pre_lfs(memoize: bool):
    # one preprocessor per setting (each loads the pipeline); its memo is reset before every run
    if memoize not in _SPACY_PRE:
        _SPACY_PRE[memoize] = SpacyPreprocessor(text_field="text", doc_field="doc", language=MODEL, memoize=memoize)
    spacy = _SPACY_PRE[memoize]

    @labeling_function(pre=[spacy])
    def first_is_name(x):
        return 0 if x.doc[0].pos_ == "PROPN" else -1

    @labeling_function(pre=[spacy])
    def has_verb(x):
        return 0 if any(t.pos_ == "VERB" for t in x.doc) else -1

    return [first_is_name, has_verb], pd.DataFrame({"text": TEXTS})


@case("applier-spacy-preprocessor")
def _():
    return _spacy_pre_lfs(memoize=False)


@case("applier-spacy-preprocessor-memoized")
def _():
    return _spacy_pre_lfs(memoize=True)


# --------------------------------------------------------------------------- nlp LFs (lf/test_nlp.py)

ARTICLES = pd.DataFrame({"num": [8, 8, 8], "title": ["Great film!", "Nice movie!", "Nice movie!"],
                         "article": ["The movie is really great!", "Jane Doe acted well.", "Jane Doe acted well."]})


def _person(x):
    return 0 if any(ent.label_ == "PERSON" for ent in x.doc.ents) else -1


@case("nlp-lf")
def _():
    frame = pd.DataFrame({"text": ["The movie is really great!", "Jane Doe acted well.", "Jane Doe acted well.",
                                   "Barack Obama spoke."]})
    return [nlp_labeling_function(name="person", **NLP)(_person)], frame


@case("nlp-lf-shared-parse")
def _():
    short = nlp_labeling_function(name="short_doc", **NLP)(lambda x: 0 if len(x.doc) < 5 else -1)
    return [nlp_labeling_function(name="person", **NLP)(_person), short], pd.DataFrame({"text": TEXTS})


@preprocessor()
def combine_text(x):
    x.text = f"{x.title} {x.article}"
    return x


@case("nlp-lf-with-attribute-setting-preprocessor")
def _():
    # one preprocessor object for every build: Snorkel's nlp LF class refuses other settings
    lf = _OwnConfigNLP(name="person_in_article", f=_person, pre=[combine_text], **NLP)
    return [lf], ARTICLES


# --------------------------------------------------------------------------- mappers (map/test_core.py)


class SplitWords(Mapper):
    def __init__(self, **kwargs):
        super().__init__("split_words", dict(text="text"), dict(lower="lower", words="words"), **kwargs)

    def run(self, text):
        return dict(lower=text.lower(), words=text.split())


SENTENCES = pd.DataFrame({"text": ["Jane plays soccer", "I LOVE it", "nothing here at all today"], "num": [1, 2, 3]})


@case("mapper-subclass-fields")
def _():
    split = SplitWords()
    lfs = [LabelingFunction("lower_love", f=lambda x: 1 if "love" in x.lower else -1, pre=[split]),
           LabelingFunction("few_words", f=lambda x: 0 if len(x.words) <= 3 else -1, pre=[split])]
    return lfs, SENTENCES


@case("mapper-chain")
def _():
    @lambda_mapper(pre=[SplitWords()])  # the split runs first
    def word_count(x):
        x.n_words = len(x.words)
        return x

    return [LabelingFunction("long", f=lambda x: 1 if x.n_words > 3 else -1, pre=[word_count])], SENTENCES


@case("mapper-memoized-by-own-key")
def _():
    @preprocessor(memoize=True, memoize_key=lambda x: x.text)
    def doubled(x):
        x.double = x.num * 2
        return x

    frame = pd.DataFrame({"text": ["a", "b", "a", "a"], "num": [1, 50, 30, 2]})
    # rows 2 and 3 get row 0's result in Snorkel: the memo key ignores num
    return [LabelingFunction("big_double", f=lambda x: 1 if x.double > 10 else -1, pre=[doubled])], frame


@case("mapper-item-writes")
def _():
    @preprocessor()
    def lower(x):
        x["text"] = x["text"].lower()
        return x

    return [LabelingFunction("has_love", f=lambda x: 1 if "love" in x.text else -1, pre=[lower])], SENTENCES


# --------------------------------------------------------------------------- rows behave as Series (issue 16)


@case("row-text-length-preprocessor")
def _():
    @preprocessor()
    def text_length(x):
        x.text_length = len(x.text)
        return x

    return [LabelingFunction("short", f=lambda x: 0 if x.text_length < 10 else -1, pre=[text_length])], SENTENCES


@case("row-name-and-count-columns")
def _():
    frame = pd.DataFrame({"name": ["a", "b", "a"], "count": [1, 2, 3]}, index=[10, 11, 12])
    lfs = [LabelingFunction("index_label", f=lambda x: 1 if x.name == 11 else -1),  # Series.name: the label
           LabelingFunction("name_column", f=lambda x: 1 if x["name"] == "a" else -1),
           LabelingFunction("count_is_method", f=lambda x: 1 if callable(x.count) and x.count() == 2 else -1),
           LabelingFunction("size", f=lambda x: 1 if x.size == 2 else -1)]
    return lfs, frame


@case("row-all-int-division-by-zero")
def _():
    def ratio(x):
        with np.errstate(divide="ignore"):
            return 1 if math.isinf(x.a / x.b) else 0

    return [LabelingFunction("ratio", f=ratio)], pd.DataFrame({"a": [1, 4], "b": [0, 2]})


@case("row-mixed-int-float-upcast")
def _():
    lfs = [LabelingFunction("a_is_float", f=lambda x: 1 if isinstance(x.a, float) else 0),
           LabelingFunction("a_numpy", f=lambda x: 1 if isinstance(x.a, np.floating) else 0)]
    return lfs, pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})


@case("row-object-row-keeps-python-ints")
def _():
    lfs = [LabelingFunction("int_type", f=lambda x: 1 if type(x.a) is int else 0)]
    return lfs, pd.DataFrame({"a": [1, 2], "t": ["x", "y"]})


@case("row-isna-and-iteration")
def _():
    lfs = [LabelingFunction("any_na", f=lambda x: 1 if x.isna().any() else 0),
           LabelingFunction("iterates_values", f=lambda x: 1 if any(v == 3.0 for v in x) else 0),
           LabelingFunction("to_dict", f=lambda x: 1 if x.to_dict()["a"] == 1.0 else 0)]
    return lfs, pd.DataFrame({"a": [1.0, np.nan, 3.0], "b": [2.0, 3.0, np.nan]})


@case("row-string-index-and-nullable-dtypes", both=True)
def _():
    frame = pd.DataFrame({"a": pd.array([1, None, 3], dtype="Int64"), "s": pd.array(["x", None, "z"], dtype="string")},
                         index=["p", "q", "r"])
    lfs = [LabelingFunction("a_big", f=lambda x: 1 if x.a > 1 else 0),  # NA > 1 is ambiguous: raises, as in Snorkel
           LabelingFunction("label", f=lambda x: 1 if x.name == "q" else 0)]
    return lfs, frame


@case("row-list-and-dict-cells")
def _():
    frame = pd.DataFrame({"tags": [["a", "b"], [], ["c"]], "meta": [{"k": 1}, {"k": 2}, {}]})
    lfs = [LabelingFunction("has_a", f=lambda x: 1 if "a" in x.tags else 0),
           LabelingFunction("k2", f=lambda x: 1 if x.meta.get("k") == 2 else 0)]
    return lfs, frame


@case("row-type-exact-cells")
def _():
    frame = pd.DataFrame({"v": pd.Series([1, "1", 1.0, True, None, np.nan, pd.NA], dtype=object)})
    kinds = {int: 0, str: 1, float: 0, bool: 1}
    return [LabelingFunction("by_type", f=lambda x: kinds.get(type(x.v), -1))], frame


@case("row-categorical-and-datetime")
def _():
    frame = pd.DataFrame({"c": pd.Categorical(["x", "y", "x"]), "d": pd.to_datetime(["2020-01-01", "2021-06-01", None])})
    lfs = [LabelingFunction("cat", f=lambda x: 1 if x.c == "y" else 0),
           LabelingFunction("year", f=lambda x: 1 if not pd.isna(x.d) and x.d.year == 2021 else 0)]
    return lfs, frame


# --------------------------------------------------------------------------- votes and faults


def _returns(value):
    return LabelingFunction("returns", f=lambda x: value)


@case("vote-integral-float-from-nan-column")
def _():
    lf = LabelingFunction("from_column", f=lambda x: x.vote if not math.isnan(x.vote) else -1)
    return [lf], pd.DataFrame({"vote": [1.0, np.nan, 0.0]})


@case("vote-bool")
def _():
    return [LabelingFunction("is_big", f=lambda x: x.num > 10)], _nums()


@case("vote-none")
def _():
    return [_returns(None)], _nums([1, 2])


def _none_is_a_fault(run):
    assert not isinstance(run, Exception), run
    assert run.L.tolist() == [[-1], [-1]] and run.errors["returns"].count == 2


# Snorkel compares the vote with 0 outside its fault handling, so a fault-tolerant run still raises
@case("vote-none", fault_tolerant=True, differs="`None` returned in a fault-tolerant run", check=_none_is_a_fault)
def _():
    return [_returns(None)], _nums([1, 2])


@case("lf-raises-on-some-rows", both=True)
def _():
    lfs = [LabelingFunction("inverse", f=lambda x: 1 if 1 / (x.num - 3) > 0 else 0),
           LabelingFunction("fine", f=lambda x: 0)]
    return lfs, _nums()


def _ours_refuse(words):
    def check(run):
        assert isinstance(run, Exception) and re.search(words, str(run)), run
    return check


@case("vote-out-of-range", differs="a vote outside 0..cardinality-1", check=_ours_refuse(r"'returns'.*returned 2"))
def _():
    return [_returns(2)], _nums([1])


@case("vote-negative", differs="a negative vote other than -1", check=_ours_refuse(r"'returns'.*returned -2"))
def _():
    return [_returns(-2)], _nums([1])


@case("vote-non-integral", differs="a non-integral float", check=_ours_refuse(r"'returns'.*returned 1\.5"))
def _():
    return [_returns(1.5)], _nums([1])


def _attribute_is_item(run):
    assert not isinstance(run, Exception), run
    assert run.L.tolist() == [[1], [1]]


@case("row-new-attribute-is-an-item", differs="a field set as an attribute is also an item",
      check=_attribute_is_item)
def _():
    @preprocessor()
    def tag(x):
        x.tagged = True
        return x

    return [LabelingFunction("reads_item", f=lambda x: 1 if x["tagged"] else 0, pre=[tag])], _nums([1, 2])


# --------------------------------------------------------------------------- nlp fast path (issue 16)


@case("nlp-none-text", both=True)
def _():
    frame = pd.DataFrame({"text": ["Jane Doe acted well.", None, "Nothing."]})
    return [nlp_labeling_function(name="person", **NLP)(_person)], frame


@case("nlp-missing-text-column", both=True)
def _():
    return [nlp_labeling_function(name="person", **NLP)(_person)], pd.DataFrame({"body": ["Jane Doe acted well."]})


@case("nlp-doc-does-not-leak-into-plain-lfs")
def _():
    lfs = [nlp_labeling_function(name="person", **NLP)(_person),
           LabelingFunction("sees_doc", f=lambda x: 1 if "doc" in x else 0),
           LabelingFunction("sees_doc_attr", f=lambda x: 1 if hasattr(x, "doc") else 0)]
    return lfs, pd.DataFrame({"text": TEXTS})


@case("nlp-retokenizing-lf")
def _():
    def merge_first_two(x):
        if len(x.doc) > 2:
            with x.doc.retokenize() as retokenizer:
                retokenizer.merge(x.doc[0:2])
        return 0

    lfs = [nlp_labeling_function(name="merge", **NLP)(merge_first_two),
           nlp_labeling_function(name="n_tokens", **NLP)(lambda x: 1 if len(x.doc) == 3 else 0)]
    return lfs, pd.DataFrame({"text": ["Jane plays soccer.", "Jane plays soccer.", "Jane plays soccer."],
                              "id": [1, 2, 3]})


@case("nlp-similarity-uses-tensors")
def _():
    frame = pd.DataFrame({"text": ["I love this film", "I adore this movie", "The train left at noon"]})

    def similar(x):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return 1 if x.doc.similarity(x.doc[:2].as_doc()) > 0.2 else 0

    return [nlp_labeling_function(name="similar", **NLP)(similar)], frame


@case("ours-spacy-lf")
def _():
    from labeling.lf.core import spacy_labeling_function

    lf = spacy_labeling_function(name="ours_person")(_person)
    return [lf, LabelingFunction("plain", f=lambda x: 1 if "doc" in x else 0)], pd.DataFrame({"text": TEXTS})


@case("declarative-lfs")
def _():
    lfs = [keyword_lf("love", ["love"], 1), regex_lf("soccer", r"socc?er", 0), length_lf("short", 0, max_len=3)]
    return lfs, SENTENCES


@case("declarative-lf-on-none-text", both=True)
def _():
    return [keyword_lf("love", ["love"], 1)], pd.DataFrame({"text": ["love it", None]})


# --------------------------------------------------------------------------- state


@case("stateful-seen-before")
def _():
    seen = set()

    def seen_before(x):
        out = 1 if x.text in seen else 0
        seen.add(x.text)
        return out

    frame = pd.DataFrame({"text": ["a", "b", "a", "c", "b", "a"]})
    return [LabelingFunction("seen_before", f=seen_before)], frame


# --------------------------------------------------------------------------- running


def _reset_memos(lfs) -> None:
    # Snorkel's nlp preprocessor is shared by every nlp LF of a class and memoizes by row:
    # a memo filled by an earlier run must not answer for this one
    for lf in lfs:
        config = getattr(type(lf), "_nlp_config", None)
        if config is not None:
            config.nlp.reset_cache()
        for p in getattr(lf, "_pre", ()):
            if hasattr(p, "reset_cache"):
                p.reset_cache()


def _snorkel(lfs, frame, fault_tolerant):
    _reset_memos(lfs)
    try:
        L, meta = PandasLFApplier(lfs).apply(frame, progress_bar=False, fault_tolerant=fault_tolerant, return_meta=True)
    except Exception as exc:  # noqa: BLE001 - Snorkel's strict failure is the expected outcome
        return exc
    return L, {name: count for name, count in meta.faults.items() if count}


def _ours(lfs, frame, case_: Case, **kwargs):
    _reset_memos(lfs)
    try:
        return apply_lfs(lfs, frame, cardinality=case_.cardinality, fault_tolerant=case_.fault_tolerant, **kwargs)
    except LabelingError as exc:
        return exc


MODES = ["one_process", "workers", "cache_twice", "cache_new_process", "parse_cache", "dask"]


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None, memory_limit="2GiB") as cluster, \
            distributed.Client(cluster) as client:
        yield client


def _run_mode(mode: str, case_: Case, tmp_path: Path, request) -> tuple:
    """(ours, Snorkel's) for ``case_`` in ``mode``; each side gets LFs of its own."""
    lfs, frame = case_.make()
    if mode == "one_process":
        ours = _ours(lfs, frame, case_, n_jobs=1)
    elif mode == "workers":
        ours = _ours(lfs, frame, case_, n_jobs=2, chunk_rows=2)
    elif mode == "cache_twice":  # the same LF objects, twice: the second run reads the cache
        _ours(lfs, frame, case_, cache=LFCache(tmp_path))
        ours = _ours(lfs, frame, case_, cache=LFCache(tmp_path))
        theirs_lfs, theirs_frame = case_.make()
        _snorkel(theirs_lfs, theirs_frame, case_.fault_tolerant)
        return ours, _snorkel(theirs_lfs, theirs_frame, case_.fault_tolerant)
    elif mode == "cache_new_process":  # LFs rebuilt and the cache read from its files, as in a new process
        _ours(lfs, frame, case_, cache=tmp_path)
        forget_loaded()
        lfs, frame = case_.make()
        ours = _ours(lfs, frame, case_, cache=LFCache(tmp_path))
    elif mode == "parse_cache":
        _ours(lfs, frame, case_, cache=ParseCache(tmp_path))
        lfs, frame = case_.make()
        ours = _ours(lfs, frame, case_, cache=ParseCache(tmp_path))
    else:
        ours = _ours(lfs, frame, case_, scheduler=request.getfixturevalue("dask_client"))
    theirs_lfs, theirs_frame = case_.make()
    return ours, _snorkel(theirs_lfs, theirs_frame, case_.fault_tolerant)


# Every case in every mode runs by default (the Dask spaCy cases add ~30 s: each task loads the pipeline).
PARAMS = [pytest.param(c, mode, id=f"{c.id}-{mode}")
          for c in CASES for mode in MODES]


@pytest.mark.parametrize(("case_", "mode"), PARAMS)
def test_parity_with_snorkel(case_: Case, mode: str, tmp_path, request):
    ours, theirs = _run_mode(mode, case_, tmp_path, request)
    if case_.differs is not None:
        case_.check(ours)
        return
    if isinstance(theirs, Exception):
        assert isinstance(ours, LabelingError), f"Snorkel raised {theirs!r}; we returned {ours}"
        return
    assert not isinstance(ours, Exception), f"we raised {ours}; Snorkel returned {theirs[0].tolist()}"
    L, faults = theirs
    np.testing.assert_array_equal(ours.L, L)
    assert {name: e.count for name, e in ours.errors.items()} == faults


def test_every_documented_difference_is_in_the_docs():
    page = (REPO / "docs" / "concepts" / "snorkel.md").read_text(encoding="utf-8")
    section = " ".join(page.split())
    for c in CASES:
        if c.differs is not None:
            assert c.differs in section, c.differs


def test_a_stateful_lf_is_detected_and_never_cached(tmp_path):
    lfs, frame = next(c for c in CASES if c.id.startswith("stateful")).make()
    result = apply_lfs(lfs, frame, cardinality=2, n_jobs=2, chunk_rows=2, cache=tmp_path)
    assert "changed its own state" in result.uncacheable["seen_before"]
    assert result.L[:, 0].tolist() == [0, 0, 1, 0, 1, 1]


def test_an_order_dependent_memo_key_is_reported():
    lfs, frame = next(c for c in CASES if c.id.startswith("mapper-memoized-by-own-key")).make()
    result = apply_lfs(lfs, frame, cardinality=2, n_jobs=2, chunk_rows=1, cache=None)
    assert result.L[:, 0].tolist() == [-1, 1, -1, -1]
    assert "memoize_key" in result.uncacheable["big_double"]
