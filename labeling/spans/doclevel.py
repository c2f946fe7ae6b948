"""Document-level evidence: what one part of a document says about another.

Abstracts define abbreviations once ("rheumatoid arthritis (RA)") and then use the short
form, which dictionaries rarely hold: on BC5CDR's valid split 18% of gold entities get
no LF span at all, many of them such short forms. ``add_abbreviations`` gives every
occurrence of a short form its long form's entity type, after aggregation, in the
manner of skweak's document-level annotators (Lison et al. 2021) with the "long form
(short form)" pattern of Schwartz & Hearst (2003). ``add_repeats`` is skweak's
document-level majority in its simplest form (one sense per discourse, Gale et al.
1992): a string marked as an entity once in a document is marked at its other
occurrences there too.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence

_LETTER = re.compile(r"[^\W\d_]")


def abbreviation_spans(tokens: Sequence[str], spans: Sequence[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Spans ``(i, i + 1, type)`` for every occurrence of a short form in the document.

    A short form is the single token ``X`` of ``<entity> ( X )`` where ``X`` has at
    least two characters and a letter; it takes the entity's type (the first definition
    of ``X`` in the document wins). ``spans``: the document's entities (token offsets).
    """
    defined: dict[str, int] = {}
    for start, end, label in sorted(spans):
        if end + 2 < len(tokens) and tokens[end] == "(" and tokens[end + 2] == ")":
            short = tokens[end + 1]
            if len(short) >= 2 and _LETTER.search(short):
                defined.setdefault(short, label)
    return [(i, i + 1, defined[tok]) for i, tok in enumerate(tokens) if tok in defined]


def add_abbreviations(tokens: Sequence[str], spans: Sequence[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """``spans`` plus ``abbreviation_spans``, sorted; a short-form span that overlaps an
    existing entity is dropped (the entity stays)."""
    taken = set()
    for start, end, _ in spans:
        taken.update(range(start, end))
    extra = [s for s in abbreviation_spans(tokens, spans) if s[0] not in taken]
    return sorted([*map(tuple, spans), *extra])


def add_repeats(tokens: Sequence[str], spans: Sequence[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """``spans`` plus every other occurrence in the document of a string they mark (tokens
    compared lower-cased), with the type most of its marks give it (ties: the lower type
    index); longest strings first, left to right, and an occurrence that overlaps an
    existing entity or an earlier added one is skipped. ``spans``: token offsets
    ``(start, end, type)``, end exclusive."""
    low = [w.lower() for w in tokens]
    marks: dict[tuple[str, ...], Counter] = defaultdict(Counter)
    for start, end, label in spans:
        marks[tuple(low[start:end])][label] += 1
    types = {k: min(c, key=lambda t: (-c[t], t)) for k, c in marks.items()}
    taken, extra = set(), []
    for start, end, _ in spans:
        taken.update(range(start, end))
    for string in sorted(types, key=lambda k: (-len(k), k)):
        n = len(string)
        for i in range(len(low) - n + 1):
            if tuple(low[i:i + n]) == string and taken.isdisjoint(range(i, i + n)):
                extra.append((i, i + n, types[string]))
                taken.update(range(i, i + n))
    return sorted([*map(tuple, spans), *extra])


# the document-level steps an end model may add after its own predictions, simplest first
DOC_RULES = {
    "none": (),
    "abbreviations": (add_abbreviations,),
    "repeats": (add_repeats,),
    "abbreviations+repeats": (add_abbreviations, add_repeats),
}


def apply_doc_rules(rules: str, tokens: Sequence[str], spans: Sequence[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """``spans`` after each step of ``DOC_RULES[rules]`` in turn."""
    out = sorted(map(tuple, spans))
    for step in DOC_RULES[rules]:
        out = step(tokens, out)
    return out
