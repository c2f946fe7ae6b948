"""PII redaction: emails, URLs, phone numbers and person names become placeholders."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labeling.review.redact import RedactionSettings, redact_text, redact_texts

REGEX_ONLY = RedactionSettings(persons=False)


@pytest.mark.parametrize("text, expected", [
    ("write to john.doe+yt@example.co.uk today", "write to [EMAIL] today"),
    ("see http://bit.ly/abc?x=1 and www.foo.com/page", "see [URL] and [URL]"),
    ("my site promo-beats.net/free is up", "my site [URL] is up"),
    ("call +1 (555) 123-4567!", "call [PHONE]!"),
    ("text 07700 900123 or 555.123.4567", "text [PHONE] or [PHONE]"),
    ("in 2014 it had 1,000,000 views", "in 2014 it had 1,000,000 views"),
    ("<img src=x onerror=alert(1)>", "<img src=x onerror=alert(1)>"),
])
def test_regex_redaction(text, expected):
    assert redact_text(text, REGEX_ONLY) == expected


def test_person_names_use_spacy_ner():
    out = redact_text("Barack Obama sings better than my cat", RedactionSettings())
    assert "Obama" not in out and out.startswith("[PERSON]") and out.endswith("my cat")


def test_each_kind_can_be_turned_off():
    text = "a@b.com http://x.org 5551234567"
    # emails off: the address's domain still goes as a URL; both off keeps it
    assert redact_text(text, RedactionSettings(emails=False, persons=False)) == "a@[URL] [URL] [PHONE]"
    assert redact_text(text, RedactionSettings(emails=False, urls=False, persons=False)) == "a@b.com http://x.org [PHONE]"
    assert redact_texts([text], RedactionSettings(emails=False, urls=False, phones=False, persons=False)) == [text]


_LOCAL = st.from_regex(r"[a-z][a-z0-9._]{0,10}[a-z0-9]", fullmatch=True)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40), _LOCAL, _LOCAL,
       st.from_regex(r"\+?[1-9]\d{2}[ -]?\d{3}[ -]?\d{4}", fullmatch=True))
def test_seeded_pii_never_survives(noise, user, domain, phone):
    email = f"{user}@{domain}.com"
    out = redact_text(f"{noise} {email} {noise} {phone} {noise}", REGEX_ONLY)
    assert email not in out and phone not in out
