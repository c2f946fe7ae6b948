"""Sampling strategies, task payloads, and push/pull against a real Label Studio server."""

from __future__ import annotations

import json
import secrets
import xml.etree.ElementTree as ET

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from labeling.config import load_config
from labeling.errors import ConfigError, LabelError, LabelMatrixError
from labeling.serve.feedback import FeedbackLog, PredictionRecord, text_sha256, utc_now
from labeling.review.gold import GoldStore, review_gold
from labeling.review.label_studio import (
    ReviewItem,
    annotation_label,
    build_tasks,
    choice_result,
    conflict_strength,
    display_text,
    entropy,
    labeling_config,
    margin,
    sample_scores,
    select_for_review,
)
from labeling.review.jobs import label_studio_from_env, pull_review, push_review

from ..conftest import write_project

# --------------------------------------------------------------------------- strategies


def test_entropy_and_margin_rank_uncertain_rows_first():
    probs = np.array([[0.99, 0.01], [0.5, 0.5], [0.7, 0.3]])
    assert list(np.argsort(-entropy(probs))) == [1, 2, 0]
    np.testing.assert_allclose(margin(probs), [0.02, 1.0, 0.6])
    assert list(select_for_review(sample_scores("entropy", n_rows=3, probs=probs), 2)) == [1, 2]
    assert list(select_for_review(sample_scores("low_confidence", n_rows=3, probs=probs), 1)) == [1]


def test_entropy_and_margin_pick_only_rows_some_lf_votes_on():
    # Rows no LF votes on all get the class balance (here 0.5/0.5, the highest entropy):
    # before, "entropy" picked them first, and their answers check no LF.
    L = np.array([[-1, -1], [0, -1], [-1, -1], [1, 0], [0, 0]])
    probs = np.array([[0.5, 0.5], [0.8, 0.2], [0.5, 0.5], [0.55, 0.45], [0.99, 0.01]])
    for strategy in ("entropy", "margin"):
        picked = select_for_review(sample_scores(strategy, n_rows=5, probs=probs, L=L), 2)
        assert list(picked) == [3, 1], strategy
        assert len(select_for_review(sample_scores(strategy, n_rows=5, probs=probs, L=L), 10)) == 3
    assert sorted(select_for_review(sample_scores("uncovered", n_rows=5, L=L), 10)) == [0, 2]
    with pytest.raises(LabelMatrixError):
        sample_scores("entropy", n_rows=5, probs=probs, L=L[:3])


def test_a_tied_prediction_gets_no_pre_annotation():
    items = [ReviewItem("row:1", "tie", (0.5, 0.5), (-1,), "entropy"),
             ReviewItem("row:2", "three-way", (0.4, 0.4, 0.2), (-1,), "entropy"),
             ReviewItem("row:3", "clear", (0.3, 0.1, 0.6), (-1,), "entropy")]
    tasks = build_tasks(items, classes=("ham", "spam", "other"), lf_names=("a",), model_version="m")
    assert "predictions" not in tasks[0] and "predictions" not in tasks[1]
    assert annotation_label(tasks[2]["predictions"][0]["result"], ("ham", "spam", "other")) == 2


def test_display_text_decodes_html_for_the_reviewer():
    raw = "I&#39;m here<br />Check &quot;this&quot; &amp; that<BR>bye"
    assert display_text(raw) == "I'm here\nCheck \"this\" & that\nbye"
    assert display_text("plain < text") == "plain < text"


def test_conflict_and_uncovered_strategies_pick_only_qualifying_rows():
    L = np.array([[0, 1, -1], [1, 1, -1], [-1, -1, -1], [0, 0, 1], [-1, -1, -1]])
    np.testing.assert_allclose(conflict_strength(L), [0.5, 0, 0, 1 / 3, 0])
    assert list(select_for_review(sample_scores("conflict", n_rows=5, L=L), 10)) == [0, 3]
    assert sorted(select_for_review(sample_scores("uncovered", n_rows=5, L=L), 10)) == [2, 4]


def test_disagreed_strategy_picks_served_rows_whose_feedback_differs():
    scores = sample_scores("disagreed", n_rows=4, predicted=np.array([0, 1, 1, 0]),
                           feedback_labels=np.array([0, 0, -1, 1]))
    assert sorted(select_for_review(scores, 10)) == [1, 3]


def test_random_strategy_is_seeded_and_excludes_rows():
    scores = sample_scores("random", n_rows=100)
    a = select_for_review(scores, 10, random_state=1)
    assert list(a) == list(select_for_review(scores, 10, random_state=1))
    assert list(a) != list(select_for_review(scores, 10, random_state=2))
    exclude = np.zeros(100, dtype=bool)
    exclude[a] = True
    assert not set(select_for_review(scores, 10, random_state=1, exclude=exclude)) & set(a)


@given(st.lists(st.floats(0.01, 1.0), min_size=2, max_size=30), st.integers(0, 40), st.integers(0, 5))
def test_selection_returns_distinct_top_rows(weights, n, seed):
    probs = np.array([[w, 1 - w + 1e-3] for w in weights])
    probs /= probs.sum(axis=1, keepdims=True)
    scores = sample_scores("margin", n_rows=len(probs), probs=probs)
    picked = select_for_review(scores, n, random_state=seed)
    assert len(picked) == min(n, len(probs)) == len(set(picked))
    rest = np.setdiff1d(np.arange(len(probs)), picked)
    if len(picked) and len(rest):
        assert scores[picked].min() >= scores[rest].max()


@pytest.mark.parametrize("strategy, kwargs, error", [
    ("nope", {}, ConfigError),
    ("entropy", {}, ConfigError),
    ("entropy", {"probs": np.ones((2, 2)) / 2}, LabelMatrixError),
    ("conflict", {"L": np.zeros((2, 2), dtype=int)}, LabelMatrixError),
])
def test_bad_strategy_input_is_refused(strategy, kwargs, error):
    with pytest.raises(error):
        sample_scores(strategy, n_rows=3, **kwargs)


# --------------------------------------------------------------------------- payloads


def test_labeling_config_escapes_class_names_and_shows_text_as_plain_text():
    classes = ['ham "x"', "<b onmouseover=alert(1)>spam</b>", "a&b"]
    root = ET.fromstring(labeling_config(classes))
    assert [c.get("value") for c in root.iter("Choice")] == classes
    texts = list(root.iter("Text"))
    assert [t.get("value") for t in texts] == ["$text", "$lf_votes"]
    assert all(t.get("valueType") == "text" for t in texts)
    assert not [e for e in root.iter() if e.tag in ("HyperText", "HTML")]


def test_tasks_carry_key_votes_and_a_scored_pre_annotation():
    items = [ReviewItem("row:1", "hello", (0.2, 0.8), (1, -1, 0), "entropy"),
             ReviewItem("row:2", "bye", None, None, "random")]
    tasks = build_tasks(items, classes=("ham", "spam"), lf_names=("a", "b", "c"), model_version="m1")
    assert tasks[0]["data"] == {"text": "hello", "lf_votes": "a: spam, c: ham", "task_key": "row:1", "strategy": "entropy"}
    (pred,) = tasks[0]["predictions"]
    assert pred["score"] == pytest.approx(0.8) and pred["model_version"] == "m1"
    assert annotation_label(pred["result"], ("ham", "spam")) == 1
    assert "predictions" not in tasks[1] and tasks[1]["data"]["lf_votes"] == "(LF votes not available)"
    assert annotation_label([], ("ham", "spam")) is None


# --------------------------------------------------------------------------- against Label Studio

SEEDED_PII = ["jane.roe1987@example.org", "+1 (415) 555-0142", "020 7946 0958", "http://pii-canary.example.com/x"]
PII_TEXTS = [
    f"mail me at {SEEDED_PII[0]} for free followers",
    f"call {SEEDED_PII[1]} now, subscribe to my channel",
    f"my number is {SEEDED_PII[2]} lol",
    f"check out {SEEDED_PII[3]} please",
    "<img src=x onerror=alert(1)>",
    "Katy Perry is the best",
] * 3


@pytest.fixture
def small_project(tmp_path):
    """A file project with a few texts (PII and HTML included) and the weak YouTube LFs."""
    rows = PII_TEXTS + [f"great song number {i}" for i in range(12)]
    frame = pd.DataFrame({"id": [f"r{i}" for i in range(len(rows))], "text": rows,
                          "label": ["spam" if i % 2 else "ham" for i in range(len(rows))],
                          "split": ["train"] * (len(rows) - 6) + ["dev"] * 3 + ["test"] * 3})
    frame.to_csv(tmp_path / "data.csv", index=False)
    title = f"test {secrets.token_hex(4)}"
    return write_project(tmp_path, f"""
[project]
name = "small"
classes = ["ham", "spam"]
store = "store.db"
artifacts = "artifacts"
[dataset]
source = "file"
path = "data.csv"
label_field = "label"
id_field = "id"
split = "column"
split_field = "split"
[lfs]
modules = ["labeling_functions.youtube_spam_weak"]
root = "{(tmp_path / 'nowhere').as_posix()}"
[label_model]
type = "majority_vote"
[review]
title = "{title}"
""")


class Capture:
    """An httpx client that keeps every request body the SDK sends."""

    def __init__(self):
        self.bodies: list[bytes] = []
        self.client = httpx.Client(timeout=60, event_hooks={"request": [self._keep]})

    def _keep(self, request: httpx.Request) -> None:
        request.read()
        self.bodies.append(request.content + request.url.query)


@pytest.fixture
def ls_env(label_studio, monkeypatch):
    url, key = label_studio
    monkeypatch.setenv("LABEL_STUDIO_URL", url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", key)
    return label_studio


def test_push_annotate_pull_and_repush_without_duplicates(ls_env, small_project):
    config = load_config(small_project)
    review = label_studio_from_env(config)
    first = push_review(config, review, strategy="random", n=8)
    assert first.result.created == 8 and first.result.skipped == 0
    tasks = review.existing_tasks()
    assert len(tasks) == 8
    for task in tasks.values():
        # one pre-annotation, or none when the model's classes tie (no class is favoured)
        assert len(task["predictions"]) <= 1 and task["data"]["lf_votes"]
        for pred in task["predictions"]:
            assert 0.5 < pred["score"] <= 1 and pred["result"][0]["value"]["choices"][0] in config.classes

    # the same rows again: nothing new in Label Studio
    keys = sorted(tasks)
    again = review.push([{"data": tasks[k]["data"]} for k in keys])
    assert (again.created, again.skipped) == (0, 8)
    more = push_review(config, review, strategy="random", n=3)  # new rows only: pushed ones are excluded
    assert more.result.created == 3 and len(review.existing_tasks()) == 11

    ids = {k: int(t["id"]) for k, t in tasks.items()}
    ann = {k: review.annotate(ids[k], i % 2) for i, k in enumerate(keys[:4])}
    result, disagreements = pull_review(config, review)
    assert (result.stored, result.inserted, result.updated) == (4, 4, 0) and disagreements.empty
    result, _ = pull_review(config, review)  # idempotent
    assert (result.stored, result.inserted, result.updated) == (4, 0, 0)

    review.update_annotation(ann[keys[0]], 1)  # the reviewer changes their mind
    result, _ = pull_review(config, review)
    assert (result.stored, result.updated) == (4, 1)
    gold, _ = review_gold(config.resolve(config.store))
    assert dict(zip(gold["task_key"], gold["label"])) == {keys[0]: 1, keys[1]: 1, keys[2]: 0, keys[3]: 1}


def test_a_class_renamed_in_the_config_never_deletes_stored_gold(ls_env, small_project):
    config = load_config(small_project)
    review = label_studio_from_env(config)
    push_review(config, review, strategy="random", n=4)
    tasks = review.existing_tasks()
    for i, key in enumerate(sorted(tasks)):
        review.annotate(int(tasks[key]["id"]), i % 2)
    assert pull_review(config, review)[0].stored == 4
    store = config.resolve(config.store)
    before, _ = review_gold(store)
    renamed = load_config(small_project, ["project.classes=['ham', 'junk']"])
    # used to drop the two "spam" answers from the store, shown only as "2 removed"
    with pytest.raises(LabelError, match=r"2 answer\(s\) on 2 task\(s\) choose class\(es\) \['spam'\].*--rename"):
        pull_review(renamed, label_studio_from_env(renamed))
    pd.testing.assert_frame_equal(review_gold(store)[0], before)
    result, _ = pull_review(renamed, label_studio_from_env(renamed), renames={"spam": "junk"})
    assert (result.stored, result.inserted, result.updated, result.deleted) == (4, 0, 0, 0)
    pd.testing.assert_frame_equal(review_gold(store)[0], before)


def test_a_program_never_overwrites_a_persons_answer(ls_env, small_project):
    config = load_config(small_project)
    review = label_studio_from_env(config)
    push_review(config, review, strategy="random", n=3)
    tasks = review.existing_tasks()
    (a, b, c) = sorted(tasks)
    person = review.annotate(int(tasks[a]["id"]), 0)  # a person says ham
    assert review.annotate(int(tasks[a]["id"]), 1, program="sim") is None  # skipped: already answered
    own = review.annotate(int(tasks[b]["id"]), 1, program="sim")
    assert own is not None
    assert review.annotate(int(tasks[b]["id"]), 0, program="sim") is None  # never twice either
    assert review.update_annotation(person, 1, program="sim") is False  # not its own: left alone
    assert review.update_annotation(own, 0, program="sim") is True
    answers = {(x.task_key, x.annotator): x.label for x in review.annotations()}
    assert answers[(a, next(w for k, w in answers if k == a))] == 0
    assert [w for k, w in answers if k == a] != ["program:sim"] and (b, "program:sim") in answers
    assert answers[(b, "program:sim")] == 0
    pull_review(config, review)
    gold, _ = review_gold(config.resolve(config.store))
    assert dict(zip(gold["task_key"], gold["label"]))[a] == 0  # the person's label survives


def test_annotator_disagreements_are_kept_and_reported(ls_env, small_project):
    config = load_config(small_project)
    review = label_studio_from_env(config)
    push_review(config, review, strategy="random", n=2)
    key, task = min(review.existing_tasks().items())
    other = review.client.users.create(email=f"second-{secrets.token_hex(3)}@localhost.local",
                                       username=f"second-{secrets.token_hex(3)}")
    review.annotate(int(task["id"]), 0)
    review.client.annotations.create(int(task["id"]), completed_by=other.id, result=choice_result("spam"))
    _, disagreements = pull_review(config, review)
    (row,) = disagreements.itertuples()
    assert row.task_key == key and sorted(row.answers.values()) == [0, 1] and row.resolved is None
    gold, _ = review_gold(config.resolve(config.store))
    assert key not in set(gold["task_key"])  # a tie is not gold
    with GoldStore(config.resolve(config.store)) as store:
        assert len(store.answers()) == 2  # both answers kept


def _log_served(config, texts):
    with FeedbackLog(config.resolve(config.store)) as log:
        log.log_predictions([
            PredictionRecord(id=f"p{i}", created_at=utc_now(), model_version="run-1", probabilities=(0.45, 0.55),
                             label=1, lf_votes=(-1, 1, -1, 0), text=t, text_sha256=text_sha256(t))
            for i, t in enumerate(texts)])


@pytest.mark.parametrize("source, overrides", [("served", []), ("dataset", ["review.redact=all"])],
                         ids=["served-default", "dataset-redact-all"])
def test_pii_canary_never_reaches_label_studio(ls_env, small_project, source, overrides):
    config = load_config(small_project, overrides)
    if source == "served":
        assert config.review.redact == "served"  # on by default for served traffic
        _log_served(config, PII_TEXTS[:6])
    capture = Capture()
    review = label_studio_from_env(config, httpx_client=capture.client)
    summary = push_review(config, review, strategy="random", n=50, source=source)
    assert summary.redacted and summary.result.created >= 6
    sent = b"\n".join(capture.bodies)
    assert b"[EMAIL]" in sent and b"[PHONE]" in sent  # the payloads were captured
    stored = json.dumps([t["data"] for t in review.existing_tasks().values()])
    for secret in SEEDED_PII + ["Katy Perry"]:
        for encoded in {secret, json.dumps(secret)[1:-1], httpx.QueryParams({"q": secret}).get("q")}:
            assert encoded.encode() not in sent, secret
            assert encoded not in stored, secret
    assert "[PERSON]" in stored


def test_html_in_a_text_arrives_as_plain_text(ls_env, small_project):
    config = load_config(small_project)
    review = label_studio_from_env(config)
    push_review(config, review, strategy="random", n=50)
    texts = [t["data"]["text"] for t in review.existing_tasks().values()]
    # stored verbatim (a string, not markup) and shown by a <Text> tag, which renders a text node
    assert "<img src=x onerror=alert(1)>" in texts
    project = review.client.projects.get(review.ensure_project())
    root = ET.fromstring(project.label_config)
    assert {e.tag for e in root.iter()} <= {"View", "Header", "Text", "Choices", "Choice"}
    assert [t.get("value") for t in root.iter("Text")] == ["$text", "$lf_votes"]


def test_server_refuses_sign_up_without_an_invite(ls_env):
    url, key = ls_env
    email = f"intruder-{secrets.token_hex(3)}@localhost.local"
    with httpx.Client(base_url=url, timeout=60) as http:
        http.get("/user/signup/")  # sets the CSRF cookie, so only the sign-up policy can refuse
        refused = http.post("/user/signup/", headers={"Referer": f"{url}/user/signup/"}, data={
            "email": email, "password": "S3cret-password!", "csrfmiddlewaretoken": http.cookies.get("csrftoken", "")})
        users = http.get("/api/users/", headers={"Authorization": f"Token {key}"}).json()
    assert refused.status_code == 403 and "CSRF" not in refused.text
    assert email not in {u["email"] for u in users}


def test_cli_push_pull_and_refine(ls_env, small_project, capsys):
    from labeling.cli import main

    config = load_config(small_project)
    _log_served(config, ["a served comment, call 555 010 9999", "another one"])
    assert main(["review", "push", "--config", str(small_project), "--source", "served", "--strategy",
                 "low_confidence", "--n", "5", "--json"]) == 0
    pushed = json.loads(capsys.readouterr().out)
    assert (pushed["created"], pushed["source"], pushed["redacted"]) == (2, "served", True)
    review = label_studio_from_env(config)
    for task in review.existing_tasks().values():
        review.annotate(int(task["id"]), 1)
    assert main(["review", "pull", "--config", str(small_project), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["inserted"] == 2
    assert main(["refine", "--config", str(small_project)]) == 0
    out = capsys.readouterr().out
    assert "Refinement from 2 gold rows" in out and "Suggested LFs" in out
    assert main(["review", "push", "--config", str(small_project), "--strategy", "bogus"]) == 2
