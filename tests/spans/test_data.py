import json
import shutil

import pytest

from hypothesis import given
from hypothesis import strategies as st

from labeling.errors import DatasetError, LabelError
from labeling.spans.data import check_char_spans, load_bc5cdr, load_spans_json, span_problem


@pytest.fixture(scope="module")
def subset(data_dir, tmp_path_factory):
    """The first 20 valid abstracts of the real bc5cdr, with its meta.json."""
    folder = tmp_path_factory.mktemp("bc5cdr")
    shutil.copy(data_dir / "bc5cdr" / "meta.json", folder / "meta.json")
    docs = json.loads((data_dir / "bc5cdr" / "valid.json").read_text(encoding="utf-8"))
    (folder / "valid.json").write_text(json.dumps(dict(list(docs.items())[:20])), encoding="utf-8")
    return folder


def test_real_bc5cdr_subset_loads_with_all_lfs_and_lf_rec(subset):
    meta = json.loads((subset / "meta.json").read_text())
    full = load_spans_json(subset / "valid.json")
    rec = load_spans_json(subset / "valid.json", weak_label_names="lf_rec")
    assert full.lf_names == tuple(meta["lf"]) and len(full.lf_names) == 30
    assert rec.lf_names == tuple(meta["lf_rec"]) and full.types == ("Chemical", "Disease")
    assert len(rec.ids) == 20 and rec.votes().shape == (int(rec.lengths.sum()), 9)
    raw = json.loads((subset / "valid.json").read_text())[rec.ids[0]]
    assert [list(s[:2]) + [full.types[s[2]]] for s in rec.gold[0]] == raw["label"]
    j = meta["lf"].index(meta["lf_rec"][0])
    assert [list(s[:2]) + [full.types[s[2]]] for s in rec.weak[0][0]] == raw["weak_labels"][j]


def test_bc5cdr_by_split_name(data_dir):
    with pytest.raises(DatasetError, match="split must be one of"):
        load_bc5cdr("dev", data_dir=data_dir)


def _write(folder, doc):
    (folder / "meta.json").write_text(json.dumps({"lf": ["a", "b"], "entity_types": ["X"], "lf_rec": ["b"]}))
    (folder / "split.json").write_text(json.dumps({"d7": doc}))
    return folder / "split.json"


GOOD = {"data": {"text": ["a", "b", "c"]}, "label": [[0, 1, "X"]], "weak_labels": [[[1, 3, "X"]], []]}


@pytest.mark.parametrize("change, message", [
    ({"label": [[0, 4, "X"]]}, r"split.json document 'd7' gold: span \[0, 4, 'X'\] is empty or outside"),
    ({"label": [[2, 2, "X"]]}, "empty or outside"),
    ({"label": [[0, 1]]}, r"span \[0, 1\] is not \[start, end, type\]"),
    ({"label": [[0.0, 1, "X"]]}, "integer token offsets"),
    ({"weak_labels": [[[0, 1, "Y"]], []]}, r"LF 'a': span \[0, 1, 'Y'\] has type 'Y'"),
    ({"weak_labels": [[]]}, "weak_labels has 1 LFs but meta.json names 2"),
    ({"data": {}}, "needs data.text, label and weak_labels"),
])
def test_malformed_spans_name_the_file_document_and_span(tmp_path, change, message):
    with pytest.raises(DatasetError, match=message):
        load_spans_json(_write(tmp_path, {**GOOD, **change}))


def test_lf_subsets_by_name_or_lf_rec_and_unknown_names(tmp_path):
    path = _write(tmp_path, GOOD)
    assert load_spans_json(path, weak_label_names="lf_rec").weak == (((),),)
    assert load_spans_json(path, weak_label_names=["b", "a"]).weak[0] == ((), ((1, 3, 0),))
    with pytest.raises(DatasetError, match=r"\['zz'\] are not LFs"):
        load_spans_json(path, weak_label_names=["zz"])
    with pytest.raises(DatasetError, match="list of LF names or 'lf_rec'"):
        load_spans_json(path, weak_label_names="b")


def test_missing_file_and_bad_json_are_dataset_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        load_spans_json(tmp_path / "nope.json")
    path = _write(tmp_path, GOOD)
    path.write_text("{")
    with pytest.raises(DatasetError, match="cannot read"):
        load_spans_json(path)


TEXT = "the Kindle cost $5"


@pytest.mark.parametrize("span, message", [
    ((4, 10, "PRODUCT"), ""),
    ((4, 99, "PRODUCT"), "not inside its text: it needs 0 <= start < end <= 18"),
    ((10, 4, "PRODUCT"), "not inside its text"),
    ((-1, 3, "PRODUCT"), "not inside its text"),
    ((True, 3, "PRODUCT"), "not inside its text"),
    ((4, 10, "PERSON"), "has type 'PERSON', not one of ['PRODUCT', 'MONEY']"),
    ((4, 10), "is not [start, end, type]"),
])
def test_span_problem_names_what_is_wrong(span, message):
    problem = span_problem(span, TEXT, ("PRODUCT", "MONEY"))
    assert (message in problem) if message else problem == ""


def test_checked_spans_are_sorted_and_overlaps_refused_naming_where():
    assert check_char_spans([(16, 18, "MONEY"), (4, 10, "PRODUCT")], TEXT, ("PRODUCT", "MONEY"), where="w") == \
        [(4, 10, "PRODUCT"), (16, 18, "MONEY")]
    with pytest.raises(LabelError, match=r"feedback: spans \[4, 10, 'PRODUCT'\] and \[8, 12, 'MONEY'\] overlap"):
        check_char_spans([(4, 10, "PRODUCT"), (8, 12, "MONEY")], TEXT, ("PRODUCT", "MONEY"), where="feedback")


@given(st.lists(st.tuples(st.integers(-3, 25), st.integers(-3, 25)), max_size=6))
def test_accepted_spans_lie_inside_the_text_and_never_overlap(pairs):
    spans = [(a, b, "MONEY") for a, b in pairs]
    try:
        out = check_char_spans(spans, TEXT, ("MONEY",), where="w")
    except LabelError:
        return
    assert all(0 <= s < e <= len(TEXT) for s, e, _ in out)
    assert all(a[1] <= b[0] for a, b in zip(out, out[1:]))
