"""Human review in Label Studio: which rows to show, what a task holds, push and pull.

The functional core picks rows and builds task payloads from arrays:

- ``sample_scores`` / ``select_for_review``: one score per row for a strategy
  (label-model ``entropy`` or ``margin`` among the rows at least one LF votes
  on, LF ``conflict``, ``uncovered`` rows as their own strategy,
  ``low_confidence`` served predictions, served predictions whose feedback
  ``disagreed``, or ``random`` for unbiased estimates); the top ``n``, ties
  broken by a seeded permutation so a pick is reproducible.
- ``labeling_config``: a Label Studio config generated from the class names,
  every value XML-escaped. Texts are shown with ``<Text>``, which renders a
  plain text node: nothing from the data is ever parsed as HTML.
- ``build_tasks``: task payloads with the (optionally redacted) text, the LF
  votes for the reviewer, and a pre-annotation (the model's prediction with
  its score), each keyed by a stable ``task_key``. A row whose top classes tie
  gets no pre-annotation: handing the tie to the first class would nudge the
  reviewer towards it.

The imperative shell (``LabelStudioReview``) talks to a Label Studio server
through ``label-studio-sdk``: it creates or updates the project, imports only
tasks whose key it has not seen (so re-pushing never duplicates a task), and
reads annotations back for ``labeling.gold`` to store.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import quoteattr

import numpy as np

from ..errors import ConfigError, LabelError, LabelingError, LabelMatrixError
from ..matrix import ABSTAIN, check_label_matrix

STRATEGIES = ("entropy", "margin", "conflict", "uncovered", "low_confidence", "disagreed", "random")
TEXT_NAME, LABEL_NAME, VOTES_NAME = "text", "label", "lf_votes"
KEY_FIELD = "task_key"


class ReviewError(LabelingError):
    """Label Studio refused a request, or its data does not match the project."""


# --------------------------------------------------------------------------- scores


def entropy(probs) -> np.ndarray:
    """Per row: Shannon entropy of the class probabilities (nats); high = uncertain."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1)


def margin(probs) -> np.ndarray:
    """Per row: 1 - (top probability - runner-up); high = uncertain."""
    p = np.sort(np.asarray(probs, dtype=np.float64), axis=1)
    return 1.0 - (p[:, -1] - p[:, -2])


def conflict_strength(L) -> np.ndarray:
    """Per row: share of the votes that disagree with the most-voted class (0 = no conflict)."""
    L = check_label_matrix(L)
    if not L.size:
        return np.zeros(len(L))
    k = int(L.max()) + 1
    counts = np.stack([(L == c).sum(axis=1) for c in range(max(k, 1))], axis=1)
    total = counts.sum(axis=1)
    return np.where(total > 0, 1.0 - counts.max(axis=1) / np.maximum(total, 1), 0.0)


def _require(name: str, value, strategy: str):
    if value is None:
        raise ConfigError(f"review strategy {strategy!r} needs {name}")
    return value


def sample_scores(
    strategy: str,
    *,
    n_rows: int,
    probs=None,
    L=None,
    predicted=None,
    feedback_labels=None,
) -> np.ndarray:
    """One score per row, higher = review first; ``-inf`` marks rows the strategy excludes.

    ``probs``: (n, k) model probabilities (entropy, margin, low_confidence);
    ``L``: the label matrix (conflict, uncovered; with entropy and margin it
    limits them to rows at least one LF votes on: an uncovered row's
    probabilities are the class balance, the same for all of them, and its
    answer checks no LF; ``uncovered`` asks for those rows); ``predicted`` and
    ``feedback_labels``: served labels and the labels feedback gave (-1 = none)
    for ``disagreed``.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown review strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if strategy == "random":
        return np.zeros(n_rows)
    if strategy in ("entropy", "margin", "low_confidence"):
        p = np.asarray(_require("probs", probs, strategy), dtype=np.float64)
        if p.ndim != 2 or len(p) != n_rows or p.shape[1] < 2:
            raise LabelMatrixError(f"probs must have shape ({n_rows}, k >= 2), got {p.shape}")
        if strategy == "low_confidence":
            return -p.max(axis=1)
        score = entropy(p) if strategy == "entropy" else margin(p)
        if L is not None:
            L = check_label_matrix(L)
            if len(L) != n_rows:
                raise LabelMatrixError(f"L has {len(L)} rows; expected {n_rows}")
            score = np.where((L != ABSTAIN).any(axis=1), score, -np.inf)
        return score
    if strategy in ("conflict", "uncovered"):
        L = check_label_matrix(_require("L", L, strategy))
        if len(L) != n_rows:
            raise LabelMatrixError(f"L has {len(L)} rows; expected {n_rows}")
        if strategy == "uncovered":
            return np.where((L == ABSTAIN).all(axis=1), 0.0, -np.inf)
        strength = conflict_strength(L)
        return np.where(strength > 0, strength, -np.inf)
    pred = np.asarray(_require("predicted", predicted, strategy))
    fb = np.asarray(_require("feedback_labels", feedback_labels, strategy))
    if pred.shape != (n_rows,) or fb.shape != (n_rows,):
        raise LabelMatrixError(f"predicted and feedback_labels must have shape ({n_rows},)")
    return np.where((fb >= 0) & (fb != pred), 0.0, -np.inf)


def select_for_review(scores, n: int, *, random_state: int = 0, exclude=None) -> np.ndarray:
    """Positions of the ``n`` highest-scoring rows (fewer when fewer qualify).

    Ties (all of them, for ``random``) go in a seeded random order; ``exclude``
    (a boolean mask) drops rows, e.g. ones already reviewed or test rows.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if n < 0:
        raise ConfigError(f"n must be >= 0, got {n}")
    eligible = np.isfinite(scores)
    if exclude is not None:
        eligible &= ~np.asarray(exclude, dtype=bool)
    order = np.random.default_rng(random_state).permutation(len(scores))
    order = order[eligible[order]]
    # stable sort by score, descending, keeps the random order within ties
    order = order[np.argsort(-scores[order], kind="stable")]
    return order[:n]


# --------------------------------------------------------------------------- payloads


def labeling_config(classes: Sequence[str], *, title: str = "Which class is this text?") -> str:
    """A Label Studio config: the text (plain), the LF votes, single-choice classes."""
    if len(classes) < 2:
        raise ConfigError(f"need at least two classes, got {list(classes)!r}")
    choices = "\n".join(f"    <Choice value={quoteattr(str(c))}/>" for c in classes)
    return (
        "<View>\n"
        f"  <Header value={quoteattr(title)}/>\n"
        f'  <Text name="{TEXT_NAME}" value="${TEXT_NAME}" valueType="text"/>\n'
        f'  <Choices name="{LABEL_NAME}" toName="{TEXT_NAME}" choice="single" showInline="true" required="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        '  <Header value="Labeling-function votes" size="6"/>\n'
        f'  <Text name="{VOTES_NAME}" value="${VOTES_NAME}" valueType="text"/>\n'
        "</View>\n"
    )


_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)


def display_text(text: str) -> str:
    """The text as a reviewer should read it: HTML entities decoded (``&#39;`` -> ``'``)
    and ``<br>`` tags as line breaks. Sources such as the YouTube comments store HTML
    escapes, which Label Studio's plain-text ``<Text>`` would show raw. Only the
    copy sent for display changes; the store keeps the original text."""
    return html.unescape(_BREAK.sub("\n", str(text)))


def format_votes(votes: Sequence[int] | None, lf_names: Sequence[str], classes: Sequence[str]) -> str:
    """``lf_a: spam, lf_b: ham`` for the LFs that voted; a plain word when none did."""
    if votes is None:
        return "(LF votes not available)"
    said = [f"{name}: {classes[v]}" for name, v in zip(lf_names, votes) if v != ABSTAIN]
    return ", ".join(said) if said else "(no LF votes)"


@dataclass(frozen=True)
class ReviewItem:
    """One row to push: its stable key, the text as sent, votes and the model's view."""

    task_key: str
    text: str  # as it leaves: redacted when redaction is on
    probs: tuple[float, ...] | None
    votes: tuple[int, ...] | None
    strategy: str
    model_version: str | None = None  # the model that gave ``probs``, when not the push's model_version


def build_tasks(
    items: Sequence[ReviewItem],
    *,
    classes: Sequence[str],
    lf_names: Sequence[str],
    model_version: str,
) -> list[dict]:
    """Label Studio task payloads (``data`` + ``predictions``) for ``items``."""
    tasks = []
    for item in items:
        task: dict = {
            "data": {
                TEXT_NAME: item.text,
                VOTES_NAME: format_votes(item.votes, lf_names, classes),
                KEY_FIELD: item.task_key,
                "strategy": item.strategy,
            }
        }
        prediction = None if item.probs is None else prediction_payload(item.probs, classes,
                                                                        item.model_version or model_version)
        if prediction is not None:
            task["predictions"] = [prediction]
        tasks.append(task)
    return tasks


def choice_result(class_name: str) -> list[dict]:
    """The ``result`` of an annotation or prediction that picks ``class_name``."""
    return [{"from_name": LABEL_NAME, "to_name": TEXT_NAME, "type": "choices", "value": {"choices": [str(class_name)]}}]


TIE_TOLERANCE = 1e-9


def top_classes_tie(probs: Sequence[float]) -> bool:
    """Whether the most probable classes tie (within ``TIE_TOLERANCE``)."""
    p = np.asarray(probs, dtype=np.float64)
    return bool(np.sum(p >= p.max() - TIE_TOLERANCE) > 1)


def prediction_payload(probs: Sequence[float], classes: Sequence[str], model_version: str) -> dict | None:
    """A pre-annotation: the most probable class, scored by its probability; None when
    the top classes tie (within ``TIE_TOLERANCE``): no class is preferred, so none is shown."""
    if top_classes_tie(probs):
        return None
    best = int(np.argmax(np.asarray(probs, dtype=np.float64)))
    return {"model_version": model_version, "score": float(probs[best]), "result": choice_result(classes[best])}


@dataclass(frozen=True)
class Annotation:
    """One reviewer's answer on one task, as read from Label Studio."""

    annotation_id: int
    task_key: str
    annotator: str
    label: int  # the class index; -1 for a multi-label answer, whose set is ``labels``
    updated_at: str
    labels: tuple[int, ...] | None = None  # a multi-label answer: sorted class indices (``()``: no class)


PROGRAM_KEY = "labeling_program"


def program_result(class_name: str, program: str) -> list[dict]:
    """``choice_result`` marked as made by ``program`` (a simulation, a script): the marker
    is what tells a program's annotation from a person's, since both may use one account.
    ``meta.text`` shows the marker to annotators in Label Studio too."""
    return [{**region, PROGRAM_KEY: program, "meta": {"text": [f"answered by the program {program!r}"]}}
            for region in choice_result(class_name)]


def annotation_program(result: Sequence[Mapping] | None) -> str | None:
    """The program that made an annotation (``program_result``), or None: made by a person."""
    for region in result or ():
        if isinstance(region, Mapping) and region.get(PROGRAM_KEY):
            return str(region[PROGRAM_KEY])
    return None


def annotation_choices(result: Sequence[Mapping] | None, from_name: str = LABEL_NAME) -> list[str] | None:
    """Every class name ``result`` ticks in the ``Choices`` control ``from_name``; None when
    the answer has no region for that control (cleared, or only another control answered)."""
    found = None
    for region in result or ():
        if isinstance(region, Mapping) and region.get("from_name") == from_name and region.get("type") == "choices":
            value = region.get("value") if isinstance(region.get("value"), Mapping) else {}
            chosen = value.get("choices") or []
            found = (found or []) + [str(c) for c in (chosen if isinstance(chosen, list) else [chosen])]
    return found


def annotation_choice(result: Sequence[Mapping], from_name: str = LABEL_NAME) -> str | None:
    """The one class name an annotation's ``result`` chose, or None (no single choice)."""
    chosen = annotation_choices(result, from_name)
    return chosen[0] if chosen is not None and len(chosen) == 1 else None


def annotation_label(result: Sequence[Mapping], classes: Sequence[str]) -> int | None:
    """The class index an annotation's ``result`` chose, or None (no choice / unknown class)."""
    choice = annotation_choice(result)
    return list(classes).index(choice) if choice is not None and choice in classes else None


def unclear_reason(result: Sequence[Mapping] | None, from_name: str = LABEL_NAME) -> str:
    """Why an answer gives no single class: ``"N classes"``, ``"no class"`` (cleared) or
    ``"no class (another control)"``; "" when it gives exactly one."""
    chosen = annotation_choices(result, from_name)
    if chosen is None:
        return "no class (another control)" if result else "no class"
    if len(chosen) == 1:
        return ""
    return f"{len(chosen)} classes" if chosen else "no class"


def annotator_of(annotation: Mapping) -> str:
    """Who gave an answer: ``program:NAME`` for a program's (``program_result``), else the
    Label Studio user (e-mail or id). A program's answer is its own annotator, so it never
    replaces a person's."""
    program = annotation_program(annotation.get("result"))
    if program is not None:
        return f"program:{program}"
    who = annotation.get("completed_by")
    if isinstance(who, Mapping):
        who = who.get("email") or who.get("id")
    return str(who)


@dataclass(frozen=True)
class UnclearAnswer:
    """An answer that gives no single declared class: the gold it had is kept, never deleted."""

    annotation_id: int
    task_key: str
    annotator: str
    reason: str  # "2 classes", "no class", "no class (another control)", "undeclared class 'x'"


def describe_unclear(unclear: Sequence[UnclearAnswer], fix: str = "answer with exactly one class to change it") -> str:
    """``2 answers on tasks [...] give 2 classes / no class: their stored gold is kept``; "" for none.
    ``fix``: what a reviewer does to change it (a multi-label answer: tick only declared classes)."""
    if not unclear:
        return ""
    tasks = sorted({u.task_key for u in unclear})
    reasons = " / ".join(sorted({u.reason for u in unclear}))
    return (f"{len(unclear)} answer(s) on tasks {tasks[:10]}{' ...' if len(tasks) > 10 else ''} give {reasons}: "
            f"their stored gold is kept as it was ({fix})")


def read_answers(
    tasks: Mapping[str, Mapping],
    classes: Sequence[str],
    *,
    renames: Mapping[str, str] | None = None,
    title: str = "",
) -> tuple[list[Annotation], list[UnclearAnswer]]:
    """``(answers, unclear)`` of ``tasks`` (task_key -> Label Studio task JSON): every
    submitted (not skipped) answer that gives one declared class, and every one that gives
    two classes or none (kept as it was by the gold store, and reported).

    ``renames`` maps old class names to declared ones (a class renamed in the config).
    An answer choosing a class the project does not declare raises ``LabelError`` naming
    the classes and tasks, and nothing is returned: reading on would make the pull delete
    the stored gold of those answers as if a reviewer had removed them.
    """
    classes = tuple(classes)
    renames = dict(renames or {})
    bad_targets = {old: new for old, new in renames.items() if new not in classes}
    if bad_targets:
        raise ConfigError(f"renamed classes must map onto project.classes {list(classes)}; got {bad_targets}")
    out, unclear, unknown = [], [], {}
    for key, task in tasks.items():
        for ann in task.get("annotations") or ():
            if ann.get("was_cancelled"):
                continue
            choice = annotation_choice(ann.get("result"))
            if choice is None:
                unclear.append(UnclearAnswer(int(ann["id"]), key, annotator_of(ann), unclear_reason(ann.get("result"))))
                continue
            choice = renames.get(choice, choice)
            if choice not in classes:
                unknown.setdefault(choice, []).append(key)
                continue
            out.append(Annotation(int(ann["id"]), key, annotator_of(ann), classes.index(choice),
                                  str(ann.get("updated_at") or ann.get("created_at") or "")))
    if unknown:
        names = sorted(unknown)
        keys = sorted({k for ks in unknown.values() for k in ks})
        n = sum(len(ks) for ks in unknown.values())
        raise LabelError(
            f"Label Studio project {title!r}: {n} answer(s) on {len(keys)} task(s) choose class(es) {names} that "
            f"project.classes {list(classes)} does not declare (renamed or removed in the config?). Nothing was "
            "pulled and no stored gold label was changed or removed. To migrate: pull with "
            f"`labeling review pull --rename OLD=NEW` for each old name (e.g. --rename '{names[0]}=<new name>'), "
            f"or put the old name(s) back in project.classes, or relabel those tasks in Label Studio "
            f"(e.g. {keys[:5]})")
    return out, unclear


def annotations_from_tasks(
    tasks: Mapping[str, Mapping],
    classes: Sequence[str],
    *,
    renames: Mapping[str, str] | None = None,
    title: str = "",
) -> list[Annotation]:
    """The answers of ``read_answers`` that give one declared class."""
    return read_answers(tasks, classes, renames=renames, title=title)[0]


# --------------------------------------------------------------------------- Label Studio shell


@dataclass(frozen=True)
class PushResult:
    project_id: int
    created: int
    skipped: int  # already in the project: not imported again
    task_ids: dict  # task_key -> Label Studio task id, for every pushed key


@dataclass(frozen=True)
class TaskPage:
    """One page of a task listing: task id -> task data, and how many tasks matched the
    listing's filter when the page was read (this page's and those after it)."""

    tasks: dict
    remaining: int


def _sdk_call(what: str, func, *args, **kwargs):
    from label_studio_sdk.core.api_error import ApiError

    try:
        return func(*args, **kwargs)
    except ApiError as exc:
        raise ReviewError(f"Label Studio refused to {what}: HTTP {exc.status_code}: {exc.body}") from exc


def review_title(config) -> str:
    """The Label Studio project (and store key) of a labeling project's review: ``review.title``, else its name."""
    return config.review.title or config.name


sdk_call = _sdk_call  # the same, for the span review (labeling.review.spans)


class LabelStudioReview:
    """A Label Studio project for one labeling project (found by its title)."""

    def __init__(self, url: str, api_key: str, *, title: str, classes: Sequence[str], httpx_client=None):
        from label_studio_sdk import LabelStudio

        if not url or not api_key:
            raise ConfigError("Label Studio needs a URL and an API key (LABEL_STUDIO_URL, LABEL_STUDIO_API_KEY)")
        self.client = LabelStudio(base_url=url, api_key=api_key, httpx_client=httpx_client)
        self.title = title
        self.classes = tuple(classes)
        self._project_id: int | None = None
        self._config_current = False

    def ensure_project(self, *, update_config: bool = True) -> int:
        """The project's id; created, or (``update_config``) its labeling config updated to the
        current classes. Reading answers does not update it: a class renamed in the config
        must first be reconciled with the answers that still use the old name."""
        if self._project_id is not None and (self._config_current or not update_config):
            return self._project_id
        config = self.labeling_config_xml()
        found = [p for p in _sdk_call("list projects", self.client.projects.list, title=self.title) if p.title == self.title]
        if found:
            project = found[0]
            stale = (project.label_config or "").strip() != config.strip()
            if stale and update_config:
                _sdk_call("update the labeling config", self.client.projects.update, project.id, label_config=config)
            self._config_current = not stale or update_config
        else:
            project = _sdk_call("create a project", self.client.projects.create, title=self.title, label_config=config,
                                description="Review queue of the labeling pipeline (weak supervision).")
            self._config_current = True
        self._project_id = int(project.id)
        return self._project_id

    def labeling_config_xml(self) -> str:
        """The project's labeling config (a span review overrides it with ``<Labels>``)."""
        return labeling_config(self.classes)

    def existing_tasks(self, *, update_config: bool = True) -> dict[str, dict]:
        """task_key -> the task (id, data, annotations) for every task of the project."""
        pid = self.ensure_project(update_config=update_config)
        out = {}
        for task in _sdk_call("list tasks", self.client.tasks.list, project=pid, page_size=500):
            raw = task.model_dump() if hasattr(task, "model_dump") else dict(task)
            key = (raw.get("data") or {}).get(KEY_FIELD)
            if key is not None:
                out[str(key)] = raw
        return out

    def push(self, tasks: Sequence[dict]) -> PushResult:
        """Import the tasks whose key the project does not hold yet; never duplicates."""
        pid = self.ensure_project()
        existing = self.existing_tasks()
        seen: set[str] = set()
        new = []
        for task in tasks:
            key = task["data"][KEY_FIELD]
            if key not in existing and key not in seen:
                new.append(task)
            seen.add(key)
        if new:
            _sdk_call("import tasks", self.client.projects.import_tasks, pid, request=list(new), return_task_ids=True)
            existing = self.existing_tasks()
        missing = sorted(seen - set(existing))
        if missing:
            raise ReviewError(f"Label Studio did not create tasks {missing[:5]} (of {len(missing)})")
        return PushResult(pid, len(new), len(seen) - len(new), {k: int(existing[k]["id"]) for k in seen})

    def annotations(self, *, renames: Mapping[str, str] | None = None) -> list[Annotation]:
        """Every submitted (not skipped) annotation of the project, with its task key
        (``annotations_from_tasks``: an undeclared class raises ``LabelError``)."""
        return self.answers(renames=renames)[0]

    def answers(self, *, renames: Mapping[str, str] | None = None) -> tuple[list[Annotation], list[UnclearAnswer]]:
        """``read_answers`` over every task of the project: answers with one class, and the unclear ones."""
        return read_answers(self.existing_tasks(update_config=False), self.classes, renames=renames, title=self.title)

    def connect_backend(self, url: str, *, title: str = "labeling", basic_auth: tuple[str, str] | None = None) -> dict:
        """Register ``url`` (our server's ``/ls/``) as the project's ML backend, or reuse the
        connection that already has that URL; returns ``{"id", "url", "state", "reused",
        "error"}`` as Label Studio reports them (state ``CO``: connected, ``ER``: error).
        Label Studio checks ``/ls/health`` and ``/ls/setup`` when the backend is saved."""
        pid = self.ensure_project(update_config=False)
        wanted = url.rstrip("/") + "/"
        found = [b for b in _sdk_call("list ML backends", self.client.ml.list, project=pid)
                 if str(b.url).rstrip("/") + "/" == wanted]
        auth = {"auth_method": "BASIC_AUTH", "basic_auth_user": basic_auth[0], "basic_auth_pass": basic_auth[1]} \
            if basic_auth else {"auth_method": "NONE"}
        if found:
            backend = found[0]
            if basic_auth:  # the password is never read back: set it again, in case it changed
                _sdk_call("update the ML backend", self.client.ml.update, backend.id, url=wanted, project=pid, **auth)
        else:
            backend = _sdk_call("connect the ML backend", self.client.ml.create, project=pid, url=wanted, title=title,
                                is_interactive=False, **auth)
        backend = _sdk_call("read the ML backend", self.client.ml.get, backend.id)
        state = getattr(backend.state, "value", backend.state)
        return {"id": int(backend.id), "url": wanted, "state": str(state), "reused": bool(found),
                "error": getattr(backend, "error_message", None) or ""}

    def task_pages_without_prediction(self, model_version: str, *, page_size: int = 1000) -> Iterator[TaskPage]:
        """Pages of at most ``page_size`` tasks with no prediction of ``model_version``, in task
        id order: each a ``TaskPage`` (task id -> task data, and how many such tasks were left
        when it was read).

        Label Studio selects them (its Data Manager filter ``predictions_model_versions``
        ``not_contains``), and the tasks come without their predictions: a rerun after a
        finished run lists nothing. The filter matches substrings: a version that is part of
        another (our run ids never are) would count as done where that other is stored.

        Each page asks for the tasks after the last id read (``filter:tasks:id`` ``greater``),
        never for page *n*: predictions imported while the listing goes on shrink the filtered
        set, and page numbers would then skip tasks. ``include=id,data`` leaves out every other
        field, whose per-task work (state, counters, users) made listing 10,000 tasks take
        36 s instead of 8 s (Label Studio 1.23.2, loaded 2-core machine)."""
        if page_size < 1:
            raise ConfigError(f"page_size must be at least 1 (got {page_size})")
        pid = self.ensure_project(update_config=False)
        last = 0
        while True:
            query = json.dumps({"filters": {"conjunction": "and", "items": [
                {"filter": "filter:tasks:predictions_model_versions", "operator": "not_contains", "type": "List",
                 "value": [model_version]},
                {"filter": "filter:tasks:id", "operator": "greater", "type": "Number", "value": last}]},
                "ordering": ["tasks:id"]})
            page = _sdk_call("list tasks", self.client.tasks.list, project=pid, page=1, page_size=page_size,
                             fields="task_only", include="id,data", query=query)
            tasks = {int(task.id): dict(task.data or {}) for task in page.items or ()}
            if not tasks:
                return
            yield TaskPage(tasks, int(getattr(page.response, "total", None) or len(tasks)))
            if len(tasks) < page_size:
                return
            last = max(tasks)

    def tasks_without_prediction(self, model_version: str) -> dict[int, dict]:
        """Label Studio task id -> task data, for every task with no prediction of
        ``model_version`` (``task_pages_without_prediction`` read to the end)."""
        out: dict[int, dict] = {}
        for page in self.task_pages_without_prediction(model_version):
            out.update(page.tasks)
        return out

    def label_config(self) -> str:
        pid = self.ensure_project(update_config=False)
        return str(_sdk_call("read the project", self.client.projects.get, pid).label_config or "")

    def import_predictions(self, predictions: Sequence[dict]) -> int:
        """Store ``predictions`` (each with ``task``, ``result``, ``score``, ``model_version``) in one call."""
        pid = self.ensure_project(update_config=False)
        _sdk_call("import predictions", self.client.projects.import_predictions, pid, request=list(predictions))
        return len(predictions)

    def annotate(self, task_id: int, label: int, *, program: str | None = None) -> int | None:
        """Submit an annotation; returns its id.

        Without ``program`` it is a person's answer (tests stand in for one). With
        ``program`` the annotation is marked as that program's, and a task that
        already holds any submitted annotation is left alone (returns None): a
        program never answers over a person, nor twice."""
        result = choice_result(self.classes[label])
        if program is not None:
            task = _sdk_call("read a task", self.client.tasks.get, task_id)
            raw = task.model_dump() if hasattr(task, "model_dump") else dict(task)
            if any(not a.get("was_cancelled") for a in raw.get("annotations") or ()):
                return None
            result = program_result(self.classes[label], program)
        ann = _sdk_call("create an annotation", self.client.annotations.create, task_id, result=result)
        return int(ann.id)

    def update_annotation(self, annotation_id: int, label: int, *, program: str | None = None) -> bool:
        """Change an annotation's answer; returns whether it was changed.

        With ``program`` only an annotation that program made is changed: one
        without its marker (a person's, or another program's) is left as it is
        and False is returned, for the caller to report."""
        result = choice_result(self.classes[label])
        if program is not None:
            current = _sdk_call("read an annotation", self.client.annotations.get, annotation_id)
            if annotation_program(getattr(current, "result", None)) != program:
                return False
            result = program_result(self.classes[label], program)
        _sdk_call("update an annotation", self.client.annotations.update, annotation_id, result=result)
        return True

    def migrate_schema(self, old_classes: Sequence[str], new_classes: Sequence[str],
                       names: Mapping[str, str | None]) -> dict:
        """Move the project to ``new_classes`` without losing an answer (label-schema change).

        Label Studio refuses a config that drops a class some answer uses, so: the config first
        takes the union of both class lists; each answer choosing a class of ``names`` is rewritten
        to its new name (rename, merge), or, when it maps to None (split, retire), deleted with the
        old class kept in the task's ``previous_label`` (the store keeps the answer in its history)
        so the task is back in the queue; then the config is set to ``new_classes``. Idempotent:
        a re-run after an interruption finishes the job. Returns ``{"renamed", "unlabelled"}`` counts.
        """
        pid = self.ensure_project(update_config=False)
        union = list(new_classes) + [c for c in old_classes if c not in new_classes]
        _sdk_call("update the labeling config", self.client.projects.update, pid, label_config=labeling_config(union))
        counts = {"renamed": 0, "unlabelled": 0}
        for task in self.existing_tasks(update_config=False).values():
            for ann in task.get("annotations") or ():
                if ann.get("was_cancelled"):
                    continue
                result, gone, changed = [], [], False
                for region in ann.get("result") or ():
                    if region.get("from_name") == LABEL_NAME and region.get("type") == "choices":
                        chosen = list((region.get("value") or {}).get("choices") or [])
                        mapped = [names.get(c, c) for c in chosen]
                        gone += [c for c, m in zip(chosen, mapped) if m is None]
                        if mapped != chosen and None not in mapped:
                            region = {**region, "value": {**region["value"], "choices": mapped}}
                            changed = True
                    result.append(region)
                if gone:
                    data = {**(task.get("data") or {}), "previous_label": ", ".join(gone)}
                    _sdk_call("keep the old label on a task", self.client.tasks.update, task["id"], data=data)
                    _sdk_call("delete an answer of a class that is gone", self.client.annotations.delete, ann["id"])
                    counts["unlabelled"] += 1
                elif changed:
                    _sdk_call("rename an answer's class", self.client.annotations.update, ann["id"], result=result)
                    counts["renamed"] += 1
        _sdk_call("update the labeling config", self.client.projects.update, pid,
                  label_config=labeling_config(new_classes))
        self.classes, self._config_current = tuple(new_classes), True
        return counts


__all__ = [
    "STRATEGIES",
    "Annotation",
    "LabelStudioReview",
    "PushResult",
    "ReviewError",
    "TaskPage",
    "ReviewItem",
    "UnclearAnswer",
    "annotation_choice",
    "annotation_choices",
    "annotator_of",
    "describe_unclear",
    "read_answers",
    "unclear_reason",
    "annotation_label",
    "annotation_program",
    "annotations_from_tasks",
    "program_result",
    "build_tasks",
    "choice_result",
    "conflict_strength",
    "display_text",
    "entropy",
    "format_votes",
    "labeling_config",
    "margin",
    "prediction_payload",
    "top_classes_tie",
    "sample_scores",
    "select_for_review",
]
