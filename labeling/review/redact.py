"""PII redaction for text that leaves the project (review tasks for annotators).

Emails, URLs and phone numbers are found by regular expressions, person names by
spaCy's named-entity recognizer (``PERSON``) when a pipeline is configured. Each
match is replaced by a placeholder (``[EMAIL]``, ``[URL]``, ``[PHONE]``,
``[PERSON]``) so a reviewer still sees that something was there: a link in a
comment is itself a spam signal.

Redaction errs on the side of hiding: a long digit run that is really a view
count is hidden as a phone number. It is meant for annotators' eyes, never for
training: the store keeps the original text, and models learn from that.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ConfigError

EMAIL = "[EMAIL]"
URL = "[URL]"
PHONE = "[PHONE]"
PERSON = "[PERSON]"

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.UNICODE)
# Any scheme://, www., or a bare domain with a common top-level domain.
_URL = re.compile(
    r"\b(?:[a-z][a-z0-9+.-]*://|www\.)[^\s<>\"']+"
    r"|\b(?:[\w-]+\.)+(?:com|net|org|info|biz|io|ly|me|co|tv|us|uk|de|fr|ru|gl|gg|xyz|site|online|app)\b(?:/[^\s<>\"']*)?",
    re.IGNORECASE,
)
# Seven or more digits, optionally with a leading +, spaces, dots, dashes or
# parentheses between them: international and national formats alike.
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d(?:[\s().-]{0,2}\d){6,}(?!\w)")


@dataclass(frozen=True)
class RedactionSettings:
    emails: bool = True
    urls: bool = True
    phones: bool = True
    persons: bool = True
    spacy_model: str | None = None  # None: resolve_spacy_model() (project setting / $LABELING_SPACY_MODEL)


def _regex_redact(text: str, settings: RedactionSettings) -> str:
    # Emails before URLs: an address's domain would otherwise become a URL.
    if settings.emails:
        text = _EMAIL.sub(EMAIL, text)
    if settings.urls:
        text = _URL.sub(URL, text)
    if settings.phones:
        text = _PHONE.sub(PHONE, text)
    return text


def _redact_persons(texts: list[str], spacy_model: str | None) -> list[str]:
    from ..lf.core import load_spacy, resolve_spacy_model

    nlp = load_spacy(resolve_spacy_model(spacy_model))
    if "ner" not in nlp.pipe_names:
        raise ConfigError(f"spaCy pipeline {nlp.meta.get('name')!r} has no NER component; cannot redact person names")
    out = []
    for text, doc in zip(texts, nlp.pipe(texts, batch_size=256)):
        pieces, last = [], 0
        for ent in doc.ents:
            if ent.label_ == "PERSON":
                pieces += [text[last:ent.start_char], PERSON]
                last = ent.end_char
        out.append("".join(pieces) + text[last:])
    return out


def redact_texts(texts: Sequence[str], settings: RedactionSettings = RedactionSettings()) -> list[str]:
    """``texts`` with the PII kinds ``settings`` names replaced by placeholders."""
    out = [_regex_redact(str(t), settings) for t in texts]
    if settings.persons and out:
        out = _redact_persons(out, settings.spacy_model)
    return out


def redact_text(text: str, settings: RedactionSettings = RedactionSettings()) -> str:
    return redact_texts([text], settings)[0]


__all__ = ["EMAIL", "PERSON", "PHONE", "URL", "RedactionSettings", "redact_text", "redact_texts"]
