"""The workbench on tiny frames whose every report field is known by hand."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from labeling import ABSTAIN, WorkbenchError, keyword_lf
from labeling.config import LabelModelConfig, LFConfig, ProjectConfig
from labeling.data.datasets import Splits
from labeling.models.label_models import MajorityVote, probs_to_preds
from labeling.notebook import LFReport, Workbench
from labeling.review.refinement import wilson_interval

NEG, POS = 0, 1
TRAIN = ["good movie", "good fun", "bad movie", "bad good", "awful", "nothing here", "meh", "good"]
# dev: no row is a tie for the label model with or without "movie" (its score is 3/4 both ways)
DEV = [("good movie", POS), ("a good movie", NEG), ("bad", NEG), ("good", POS)]


def _frame(texts, labels, prefix):
    return pd.DataFrame({"id": [f"{prefix}{i}" for i in range(len(texts))], "text": texts,
                         "label": np.asarray(labels, dtype=np.int64)})


@pytest.fixture
def config(tmp_path):
    return ProjectConfig(name="tiny", classes=("neg", "pos"), label_model=LabelModelConfig(type="majority_vote"),
                         lfs=LFConfig(root=str(tmp_path)), base_dir=str(tmp_path))


@pytest.fixture
def splits():
    train = _frame(TRAIN, [-1] * len(TRAIN), "t")
    dev = _frame([t for t, _ in DEV], [y for _, y in DEV], "d")
    return Splits(train=train, dev=dev, test=dev.assign(id=lambda f: "x" + f["id"]), classes=("neg", "pos"),
                  source="tiny")


GOOD = keyword_lf("good", ["good"], POS)
BAD = keyword_lf("bad", ["bad", "awful"], NEG)
MOVIE = keyword_lf("movie", ["movie"], POS)


@pytest.fixture
def wb(config, splits):
    return Workbench(config, splits=splits, lfs=[GOOD, BAD], cache=None, examples=5)


def test_train_rates_of_a_tried_lf(wb):
    report = wb.try_lf(MOVIE)
    assert isinstance(report, LFReport)
    assert report.n_train == 8 and report.n_dev == 4
    assert report.coverage == pytest.approx(2 / 8)  # rows 0, 2
    assert report.overlap == pytest.approx(2 / 8)  # "good" on row 0, "bad" on row 2
    assert report.conflict == pytest.approx(1 / 8)  # "bad" votes neg on row 2
    assert report.polarity == (POS,) and report.votes_for == ["pos"]
    assert report.kind == "declarative" and report.replaces is None


def test_dev_accuracy_and_wilson_interval(wb):
    report = wb.try_lf(MOVIE)
    assert (report.dev_votes, report.dev_correct) == (2, 1)
    assert report.dev_accuracy == pytest.approx(0.5)
    low, high = wilson_interval(1, 2)
    assert report.dev_interval == (pytest.approx(float(low)), pytest.approx(float(high)))
    assert 0 < report.dev_interval[0] < 0.5 < report.dev_interval[1] < 1


def test_the_lfs_it_conflicts_with_most(wb):
    table = wb.try_lf(MOVIE).conflicts_with
    # "good" overlaps on row 0 but agrees: only "bad" fights
    assert table.to_dict("records") == [{"lf": "bad", "overlap_rows": 1, "conflict_rows": 1, "conflict": 1 / 8}]


def test_label_model_scores_without_and_with(wb):
    report = wb.try_lf(MOVIE)
    assert report.label_model == "MajorityVote" and report.metric == "accuracy"
    assert report.score_without == pytest.approx(0.75) and report.score_with == pytest.approx(0.75)
    assert report.score_delta == pytest.approx(0.0)
    # the same number by hand: majority vote over train + dev, its dev predictions
    L = np.vstack([wb.L_train, wb.L_dev])
    pred = probs_to_preds(MajorityVote(2).fit(L).predict_proba(wb.L_dev))
    assert report.score_without == pytest.approx(float((pred == wb.y_dev).mean()))


def test_snorkel_scores_equal_snorkels_own_label_model(tmp_path):
    # The workbench's fast Snorkel fit, scored as selection scores it, against snorkel's own
    # LabelModel fitted by hand on train + dev with the project's seed.
    from snorkel.labeling.model import LabelModel

    rng = np.random.default_rng(0)
    words = np.array(["good", "fun", "bad", "awful", "movie", "plot", "meh"])
    texts = [" ".join(rng.choice(words, size=4)) for _ in range(400)]
    frame = _frame(texts, rng.integers(0, 2, size=400), "r")
    splits = Splits(train=frame[:300].assign(label=-1), dev=frame[300:], test=frame[300:], classes=("neg", "pos"),
                    source="synthetic")
    config = ProjectConfig(name="s", classes=("neg", "pos"), seed=3, base_dir=str(tmp_path),
                           label_model=LabelModelConfig(type="snorkel", n_epochs=120))
    lfs = [GOOD, BAD, keyword_lf("fun", ["fun"], POS), keyword_lf("awful", ["awful"], NEG)]
    wb = Workbench(config, splits=splits, lfs=lfs[:3], cache=None)
    report = wb.try_lf(lfs[3])

    column = np.concatenate([report_L(lfs[3], splits.train["text"]), report_L(lfs[3], splits.dev["text"])])
    L = np.column_stack([np.vstack([wb.L_train, wb.L_dev]), column])

    def snorkel_score(n_lfs):
        model = LabelModel(cardinality=2, verbose=False)
        model.fit(L[:, :n_lfs], class_balance=[0.5, 0.5], n_epochs=120, lr=0.01, l2=0.0, seed=3, progress_bar=False)
        pred = model.predict(L[len(wb.L_train):, :n_lfs], tie_break_policy="random")
        return float((pred == wb.y_dev).mean())

    assert report.label_model == "SnorkelLabelModel"
    assert report.score_without == snorkel_score(3) and report.score_with == snorkel_score(4)


def test_label_model_score_changes_when_the_lf_changes_a_prediction(config, splits):
    # an LF voting neg wherever "good" votes pos turns those dev rows into ties: the score with
    # it is what majority vote makes of them, computed here by hand
    wb = Workbench(config, splits=splits, lfs=[GOOD, BAD, keyword_lf("fun", ["fun"], POS)], cache=None)
    report = wb.try_lf(keyword_lf("not_movie", ["good"], NEG))  # exactly cancels "good" everywhere
    L_dev = np.column_stack([wb.L_dev, np.where(wb.L_dev[:, 0] == POS, NEG, ABSTAIN)])
    L = np.vstack([np.column_stack([wb.L_train, np.where(wb.L_train[:, 0] == POS, NEG, ABSTAIN)]), L_dev])
    pred = probs_to_preds(MajorityVote(2).fit(L).predict_proba(L_dev))
    assert report.score_with == pytest.approx(float((pred == wb.y_dev).mean()))
    assert report.score_without == pytest.approx(0.75)


def test_examples_wrong_votes_and_uncovered_rows(wb):
    report = wb.try_lf(MOVIE)
    assert list(report.examples) == ["pos"]
    assert report.examples["pos"]["id"].tolist() == ["t0", "t2"]
    assert report.wrong.to_dict("records") == [{"id": "d1", "text": "a good movie", "vote": "pos", "gold": "neg"}]
    assert report.uncovered["id"].tolist() == ["t5", "t6"]
    assert report.uncovered_share == pytest.approx(2 / 8)


def test_examples_are_capped_and_seeded(config, splits):
    wb = Workbench(config, splits=splits, lfs=[], cache=None, examples=2)
    first = wb.try_lf(GOOD).examples["pos"]["id"].tolist()
    assert len(first) == 2 and set(first) <= {"t0", "t1", "t3", "t7"}
    assert wb.try_lf(GOOD).examples["pos"]["id"].tolist() == first


def test_time_taken_is_reported(wb):
    seconds = wb.try_lf(MOVIE).seconds
    assert set(seconds) == {"apply", "label_model", "total"}
    assert 0 <= seconds["apply"] <= seconds["total"] and 0 <= seconds["label_model"] <= seconds["total"]


def test_report_renders_as_text_and_html(wb):
    report = wb.try_lf(MOVIE)
    text = str(report)
    assert text == repr(report)
    for needle in ("LF movie (declarative): votes pos", "coverage 25.0% of 8", "overlap 25.0%", "conflict 12.5%",
                   "accuracy 0.500", "1/2 votes right", "0.750 without, 0.750 with (+0.000)", "bad (1 rows)",
                   "[d1] voted pos, gold neg: a good movie", "no LF votes on 25.0% of train", "[t5] nothing here"):
        assert needle in text, needle
    page = report._repr_html_()
    for cls in ("lf-report-stats", "lf-report-conflicts", "lf-report-examples", "lf-report-wrong", "lf-report-uncovered"):
        assert f'class="dataframe lf-report-table {cls}"' in page, cls
    assert "<td>a good movie</td>" in page and "<td>25.0%</td>" in page


def test_html_lists_the_first_wrong_rows_and_the_report_keeps_all(wb):
    import dataclasses

    from labeling.notebook.report import HTML_WRONG_ROWS

    ids = [f"d{i}" for i in range(HTML_WRONG_ROWS + 7)]
    many = pd.DataFrame({"id": ids, "text": "x", "vote": "pos", "gold": "neg"})
    report = dataclasses.replace(wb.try_lf(MOVIE), wrong=many)
    page = report._repr_html_()
    wrong_table = page.split('lf-report-wrong"')[1].split("</table>")[0]
    assert wrong_table.split("<tbody>")[1].count("<tr>") == HTML_WRONG_ROWS
    assert f"<td>d{HTML_WRONG_ROWS - 1}</td>" in wrong_table and f"<td>d{HTML_WRONG_ROWS}</td>" not in wrong_table
    assert f"wrong on dev ({HTML_WRONG_ROWS + 7}, the first {HTML_WRONG_ROWS} shown)" in page
    assert len(report.wrong) == HTML_WRONG_ROWS + 7
    assert "wrong on dev (1)</h5>" in wb.try_lf(MOVIE)._repr_html_()  # few: all, no note


def test_html_escapes_row_text(config):
    rows = _frame(["<script>alert(1)</script> movie", "movie"], [-1, -1], "t")
    splits = Splits(train=rows, dev=rows.assign(label=[POS, POS]), test=rows, classes=("neg", "pos"), source="x")
    page = Workbench(config, splits=splits, lfs=[], cache=None).try_lf(MOVIE)._repr_html_()
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_trying_does_not_change_the_session(wb):
    before = wb.L_train.copy()
    wb.try_lf(MOVIE)
    assert wb.names == ["good", "bad"] and np.array_equal(wb.L_train, before)


def test_add_remove_replace(wb):
    wb.add(MOVIE)
    assert wb.names == ["good", "bad", "movie"] and wb.L_train[:, 2].tolist() == [1, -1, 1, -1, -1, -1, -1, -1]
    assert [lf.name for lf in wb.new_lfs] == ["movie"]
    with pytest.raises(WorkbenchError, match="already in the session"):
        wb.add(keyword_lf("movie", ["film"], POS))
    wb.replace(keyword_lf("movie", ["fun"], POS))
    assert wb.L_train[:, 2].tolist() == [-1, 1, -1, -1, -1, -1, -1, -1]
    wb.replace(keyword_lf("bad2", ["bad"], NEG), "bad")
    assert wb.names == ["good", "bad2", "movie"] and [lf.name for lf in wb.new_lfs] == ["bad2", "movie"]
    wb.remove("good")
    assert wb.names == ["bad2", "movie"] and wb.L_dev.shape == (4, 2)
    with pytest.raises(WorkbenchError, match="no LF named 'good'"):
        wb.remove("good")


def test_label_model_score_follows_the_set(wb):
    assert wb.label_model_score == pytest.approx(0.75)
    wb.remove("bad")  # dev row 2 ("bad", neg) is then uncovered
    L = np.vstack([wb.L_train, wb.L_dev])
    pred = probs_to_preds(MajorityVote(2).fit(L).predict_proba(wb.L_dev))
    assert wb.label_model_score == pytest.approx(float((pred == wb.y_dev).mean()))


def test_trying_an_lf_of_the_same_name_compares_it_in_place(wb):
    wb.add(MOVIE)
    report = wb.try_lf(keyword_lf("movie", ["fun"], POS))
    assert report.replaces == "movie"
    assert report.coverage == pytest.approx(1 / 8) and report.conflicts_with.empty
    assert "in place of the session's movie" in str(report)


def test_summary_of_the_session(wb):
    wb.add(MOVIE)
    table = wb.summary()
    assert table.index.tolist() == ["good", "bad", "movie"]
    assert table["source"].tolist() == ["project", "project", "session"]
    assert table["kind"].tolist() == ["declarative"] * 3
    assert table.loc["movie", "coverage"] == pytest.approx(0.25)
    assert table.loc["good", "coverage"] == pytest.approx(4 / 8)
    assert table.loc["bad", "conflicts"] == pytest.approx(2 / 8)  # rows 2 (movie) and 3 (good)
    assert table.loc["movie", "dev_votes"] == 2 and table.loc["movie", "dev_accuracy"] == pytest.approx(0.5)
    assert table.loc["bad", "dev_accuracy"] == pytest.approx(1.0)
    low, high = wilson_interval(1, 2)
    assert (table.loc["movie", "dev_low"], table.loc["movie", "dev_high"]) == (pytest.approx(low), pytest.approx(high))


def test_search_shows_current_votes(wb):
    found = wb.search("movie")
    assert found.to_dict("records") == [{"id": "t0", "text": "good movie", "votes": "good=pos"},
                                        {"id": "t2", "text": "bad movie", "votes": "bad=neg"}]
    wb.add(MOVIE)
    assert wb.search("MOVIE", n=1)["votes"].tolist() == ["good=pos, movie=pos"]
    dev = wb.search("^good", split="dev")
    assert dev["id"].tolist() == ["d0", "d3"] and dev["gold"].tolist() == ["pos", "pos"]
    with pytest.raises(WorkbenchError, match="invalid search pattern"):
        wb.search("(")


def test_sample_where(wb):
    assert wb.sample(10, where="uncovered")["id"].tolist() == ["t5", "t6"]
    assert wb.sample(10, where="conflict")["id"].tolist() == ["t3"]
    assert wb.sample(10, where="bad")["id"].tolist() == ["t2", "t3", "t4"]
    assert wb.sample(10, where=lambda f: f["text"].str.len() < 5)["id"].tolist() == ["t6", "t7"]
    assert len(wb.sample(3)) == 3 and wb.sample(3)["id"].tolist() == wb.sample(3)["id"].tolist()
    assert wb.sample(10, where="covered", split="dev")["id"].tolist() == ["d0", "d1", "d2", "d3"]
    with pytest.raises(WorkbenchError, match="mask of shape"):
        wb.sample(where=np.ones(3, dtype=bool))


def test_train_sample_works_on_fewer_rows(config, splits):
    wb = Workbench(config, splits=splits, lfs=[GOOD], cache=None, train_sample=4)
    assert wb.L_train.shape == (4, 1) and wb.try_lf(MOVIE).n_train == 4


def test_duplicate_names_are_refused(config, splits):
    with pytest.raises(WorkbenchError, match="two LFs are named 'good'"):
        Workbench(config, splits=splits, lfs=[GOOD, GOOD], cache=None)


def test_empty_session_reports_nan_scores(config, splits):
    report = Workbench(config, splits=splits, lfs=[], cache=None).try_lf(MOVIE)
    assert math.isnan(report.score_without) and report.score_with == pytest.approx(
        float((probs_to_preds(MajorityVote(2).fit(np.vstack([report_L(MOVIE, TRAIN), report_L(MOVIE, [t for t, _ in DEV])]))
                              .predict_proba(report_L(MOVIE, [t for t, _ in DEV]))) == [y for _, y in DEV]).mean()))


def report_L(lf, texts):
    return np.array([[lf(pd.Series({"text": t}))] for t in texts])


def test_refit_can_be_skipped_and_scores_are_memoized_by_votes(wb):
    quick = wb.try_lf(MOVIE, refit=False)
    assert math.isnan(quick.score_with) and quick.score_without == pytest.approx(0.75)
    assert "0.750 without, n/a with (not refitted)" in str(quick)
    assert quick.coverage == pytest.approx(2 / 8)
    # an LF voting exactly like "movie" under another name needs no second fit
    first = wb.try_lf(MOVIE)
    twin = wb.try_lf(keyword_lf("movie_twin", ["movie"], POS))
    assert twin.score_with == first.score_with and twin.seconds["label_model"] < 0.05


def test_a_set_too_small_for_snorkel_scores_nan_until_it_is_big_enough(tmp_path, splits):
    config = ProjectConfig(name="tiny", classes=("neg", "pos"), label_model=LabelModelConfig(type="snorkel", n_epochs=20),
                           base_dir=str(tmp_path))
    wb = Workbench(config, splits=splits, lfs=[GOOD, BAD], cache=None)
    assert math.isnan(wb.label_model_score)  # Snorkel's label model needs 3 LFs
    report = wb.try_lf(MOVIE)
    assert math.isnan(report.score_without) and 0 <= report.score_with <= 1
    assert report.label_model == "SnorkelLabelModel"


@pytest.mark.parametrize("task, names", [("multi_label", "MultiLabelWorkbench"), ("spans", "span_lf_analysis")])
def test_a_project_of_another_task_shape_is_refused_naming_where_to_go(config, splits, task, names):
    from dataclasses import replace

    with pytest.raises(WorkbenchError, match=names):
        Workbench(replace(config, task=task), splits=splits)

