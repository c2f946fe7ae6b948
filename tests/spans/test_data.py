import json
import shutil

import pytest

from labeling.errors import DatasetError
from labeling.spans.data import load_bc5cdr, load_spans_json


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
