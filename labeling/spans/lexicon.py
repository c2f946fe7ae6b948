"""A span lexicon learnt from (weak) entity annotations, for an entity ruler.

An entity string (its lower-cased tokens) joins the lexicon with type ``t`` when the
annotations mark it as ``t`` at least ``min_count`` times and in at least ``min_ratio`` of
all its occurrences in the annotated documents (annotated or not): a precision estimate
of "this string is a ``t``" under the annotations themselves, the "high agreement"
entries of a gazetteer induced from the weak labels (as in skweak's and Safranchik et
al.'s use of labelled strings as dictionaries).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from ..errors import ConfigError


def span_lexicon(tokens: Sequence[Sequence[str]], spans: Sequence[Sequence[tuple[int, int, int]]], *,
                 min_count: int = 1, min_ratio: float = 0.5) -> dict[tuple[str, ...], int]:
    """``{lower-cased token tuple: type index}`` from the documents ``tokens[d]`` and their
    entities ``spans[d]`` (token offsets ``(start, end, type)``, end exclusive).

    Ties between types go to the more frequent type (then the lower index). Raises
    ``ConfigError`` for ``min_count < 1`` or ``min_ratio`` outside (0, 1].
    """
    if min_count < 1 or not 0 < min_ratio <= 1:
        raise ConfigError(f"span_lexicon needs min_count >= 1 and 0 < min_ratio <= 1, got {min_count!r}, "
                          f"{min_ratio!r}")
    tagged: Counter = Counter()
    for toks, doc_spans in zip(tokens, spans):
        low = [w.lower() for w in toks]
        for start, end, label in doc_spans:
            tagged[(tuple(low[start:end]), label)] += 1
    strings = {s for s, _ in tagged}
    occurrences = Counter()
    longest = max((len(s) for s in strings), default=0)
    for toks in tokens:
        low = [w.lower() for w in toks]
        for i in range(len(low)):
            for n in range(1, min(longest, len(low) - i) + 1):
                key = tuple(low[i:i + n])
                if key in strings:
                    occurrences[key] += 1
    best: dict[tuple[str, ...], tuple[int, int]] = {}
    for (string, label), count in sorted(tagged.items()):
        if count >= min_count and count >= min_ratio * occurrences[string] and count > best.get(string, (0, 0))[0]:
            best[string] = (count, label)
    return {s: label for s, (_, label) in sorted(best.items())}


def ruler_patterns(lexicon: dict[tuple[str, ...], int], types: Sequence[str], id: str = "lexicon") -> list[dict]:
    """spaCy ``EntityRuler`` token patterns (``LOWER`` per token) for ``lexicon``, each with
    the pattern ``id`` (the matched entity's ``ent_id_``)."""
    return [{"label": types[label], "pattern": [{"LOWER": w} for w in string], "id": id}
            for string, label in lexicon.items()]
