"""Span review in Label Studio: ``<Labels>`` on ``<Text>``, pre-annotated with the model's
spans, and reviewers' spans read back as gold.

Offsets are character offsets into the task's text, end exclusive, as Label Studio's
``labels`` results give them (``value.start``, ``value.end``, ``value.text``). Reading a
result checks that ``value.text`` equals the text between its offsets and raises
``ReviewError`` naming the task otherwise, so gold spans are exact or absent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import quoteattr

from ..errors import ConfigError
from .label_studio import KEY_FIELD, LABEL_NAME, TEXT_NAME, LabelStudioReview, ReviewError, sdk_call

Span = tuple[int, int, str]


def span_labeling_config(types: Sequence[str], *, title: str = "Mark every entity") -> str:
    """A Label Studio config: the entity types as ``<Labels>`` over the plain ``<Text>``."""
    if not types:
        raise ConfigError("a span review needs at least one entity type")
    labels = "\n".join(f"    <Label value={quoteattr(str(t))}/>" for t in types)
    return (
        "<View>\n"
        f"  <Header value={quoteattr(title)}/>\n"
        f'  <Labels name="{LABEL_NAME}" toName="{TEXT_NAME}">\n{labels}\n  </Labels>\n'
        f'  <Text name="{TEXT_NAME}" value="${TEXT_NAME}" valueType="text"/>\n'
        "</View>\n"
    )


def span_result(spans: Sequence[Span], text: str, *, from_name: str = LABEL_NAME, to_name: str = TEXT_NAME,
                scores: Sequence[float] | None = None) -> list[dict]:
    """The ``result`` of an annotation or prediction marking ``spans`` in ``text`` with the
    ``<Labels>`` control ``from_name`` on the ``<Text>`` ``to_name``; ``scores``: each
    span's confidence (a prediction's regions)."""
    return [{"from_name": from_name, "to_name": to_name, "type": "labels",
             "value": {"start": int(s), "end": int(e), "text": text[s:e], "labels": [str(label)]},
             **({"score": float(scores[i])} if scores is not None else {})}
            for i, (s, e, label) in enumerate(spans)]


def span_tasks(keys: Sequence[str], texts: Sequence[str], spans: Sequence[Sequence[Span]] | None = None, *,
               model_version: str = "") -> list[dict]:
    """Task payloads: the text and its key, and (``spans``) the model's spans as a prediction."""
    tasks = []
    for d, (key, text) in enumerate(zip(keys, texts)):
        task = {"data": {TEXT_NAME: text, KEY_FIELD: str(key)}}
        if spans is not None:
            task["predictions"] = [{"model_version": model_version, "result": span_result(spans[d], text)}]
        tasks.append(task)
    return tasks


def result_spans(result: Sequence[Mapping] | None, text: str, *, where: str = "a task",
                 types: Sequence[str] | None = None, from_name: str = LABEL_NAME) -> list[Span]:
    """The spans of the ``labels`` results of the control ``from_name``, sorted; raises
    ``ReviewError`` naming ``where`` for offsets outside the text, a ``value.text`` that
    differs from the text at the offsets, or (``types``) an undeclared type."""
    out = []
    for item in result or ():
        if item.get("type") != "labels" or item.get("from_name") != from_name:
            continue
        value = item.get("value") or {}
        start, end, labels = value.get("start"), value.get("end"), value.get("labels") or []
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            raise ReviewError(f"{where}: span {start!r}..{end!r} is not inside its text of {len(text)} characters")
        if "text" in value and value["text"] != text[start:end]:
            raise ReviewError(f"{where}: span {start}..{end} says {value['text']!r} but the text there is "
                              f"{text[start:end]!r}")
        for label in labels:
            if types is not None and label not in types:
                raise ReviewError(f"{where}: span {start}..{end} has type {label!r}, not one of {list(types)}")
            out.append((start, end, str(label)))
    return sorted(set(out))


class SpanReview(LabelStudioReview):
    """A Label Studio project reviewing spans (``classes``: the entity types)."""

    def labeling_config_xml(self) -> str:
        return span_labeling_config(self.classes)

    def gold_spans(self) -> dict[str, tuple[str, list[Span]]]:
        """task key -> (its text, the spans of its latest submitted annotation), for every
        task a reviewer answered (cancelled answers skipped)."""
        return {key: (text, spans) for key, (text, spans, _) in self.span_answers().items()}

    def span_answers(self) -> dict[str, tuple[str, list[Span], int]]:
        """task key -> (its text, the spans of its latest submitted annotation, that
        annotation's id), for every task a reviewer answered now: a task whose answers were
        all deleted or skipped is absent. Raises ``ReviewError`` as ``result_spans``."""
        out = {}
        for key, task in self.existing_tasks(update_config=False).items():
            answers = [a for a in task.get("annotations") or () if not a.get("was_cancelled")]
            if not answers:
                continue
            latest = max(answers, key=lambda a: (a.get("updated_at") or a.get("created_at") or "", a.get("id") or 0))
            text = task["data"][TEXT_NAME]
            spans = result_spans(latest.get("result"), text, where=f"task {key!r}", types=self.classes)
            out[key] = (text, spans, int(latest["id"]))
        return out

    def annotate_spans(self, task_id: int, spans: Sequence[Span], text: str) -> int:
        """Submit a reviewer's spans for a task (tests stand in for a person); returns its id."""
        ann = sdk_call("create an annotation", self.client.annotations.create, task_id,
                        result=span_result(spans, text))
        return int(ann.id)
