"""Labeling functions for the YouTube Spam Collection: spam (1) vs ham (0) comments.

Every LF sees one comment as ``x.text`` (the raw comment, with the dataset's
HTML entities, ``<br />`` tags and trailing U+FEFF); spaCy LFs also get
``x.doc``. Importing this module only defines LFs: regexes are compiled here,
resource files are read lazily (and once) when an LF first runs.
"""

from __future__ import annotations

import functools
import html
import re
from pathlib import Path

from snorkel.labeling import labeling_function

from labeling.lf.core import spacy_labeling_function

ABSTAIN = -1
HAM = 0
SPAM = 1

RESOURCES = Path(__file__).parent / "resources"

# ---------------------------------------------------------------------------
# helpers (plain functions and regexes; not labeling functions)

_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def clean_text(text: object) -> str:
    """The comment as a reader sees it: entities decoded, tags and U+FEFF dropped."""
    text = html.unescape(str(text)).replace("\ufeff", " ").replace("\xa0", " ")
    return _SPACE.sub(" ", _TAG.sub(" ", text)).strip()


@functools.lru_cache(maxsize=8)
def phrase_pattern(path: str | Path) -> re.Pattern[str]:
    """One case-insensitive regex matching any phrase (a line) of the file ``path``."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    phrases = sorted({ln.strip().lower() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")},
                     key=len, reverse=True)
    alternatives = "|".join(re.escape(p) for p in phrases) or r"(?!x)x"
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


_MY_PROMO = re.compile(
    r"\b(?:my|our)\s+(?:[\w'-]+\s+){0,2}?(?:channel|chanel|chanell|videos?|vids?|music|songs?|page|rap|raps|"
    r"covers?|mixtape|album|band|playlist|site|website|blog|account|youtube|twitter|instagram|facebook|vines?|"
    r"stuff|work|beats?|tracks?|shop|store|app|game|comment|profile|friend)\b",
    re.IGNORECASE,
)
_SUBSCRIBE = re.compile(r"\b(?:subscri\w*|suscri\w*|subscr\w*|sub4sub|subs)\b", re.IGNORECASE)
_LINK = re.compile(
    r"https?://|\bwww\.|\b[\w-]+\.(?:com|net|org|ly|tv|info|me|co)\b(?!\w)|/watch\?v=|youtu\.be",
    re.IGNORECASE,
)
_PLEASE = re.compile(r"\b(?:please|pleas|plz|pls|plzz+)\b", re.IGNORECASE)
_SONG = re.compile(r"\bsongs?\b", re.IGNORECASE)
_CHECK_OUT = re.compile(r"\bcheck\w*\s+(?:\w+\s+){0,2}?out\b|\bcheck\s+(?:it|this|my|me|us)\b", re.IGNORECASE)
_VIEWS = re.compile(
    r"\b(?:views?|viewers?|billions?|bilion|millions?|mil|\d+\s?b|\d[\d,.]*\s?(?:m|k))\b|"
    r"\b(?:watching|listening|still|here)\b[^.!?]*\b20(?:1\d|20)\b|\b20(?:1\d|20)\b[^.!?]*\b(?:still|anyone|who)\b",
    re.IGNORECASE,
)
_PROMO = re.compile(
    r"\b(?:my|our)\b|\bsubscri|\bsuscri|\bchannel\b|\bchanell?\b|https?://|www\.|\.com\b|\bcheck\b|\bvisit\b|\bfollow\b",
    re.IGNORECASE,
)
_PRAISE = re.compile(
    r"\b(?:love|luv|loved|loving|best|awesome|awsome|amazing|great|beautiful|cool|nice|epic|perfect|"
    r"fantastic|brilliant|classic|legend\w*|masterpiece|catchy|memories|miss|queen|king|"
    r"lol|lmao|haha\w*|omg|wow|xd)\b",
    re.IGNORECASE,
)
_LETTER = re.compile(r"[^\W\d_]")
_PHONE = re.compile(r"(?:\+\d[\d\s-]{8,}\d)|\b\d{9,}\b(?![.,]\d)")
_VIEW_WORD = re.compile(r"\bviews?\b", re.IGNORECASE)


def _words(text: str) -> list[str]:
    return clean_text(text).split()


# Public for the slicing functions (youtube_slices.py), which cut the data the same way.
LINK = _LINK
words = _words


# ---------------------------------------------------------------------------
# keyword LFs


@labeling_function()
def keyword_my(x):
    """Spammers advertise *their* channel, video or music: 'my/our (new) channel|video|music|...' -> spam."""
    return SPAM if _MY_PROMO.search(clean_text(x.text)) else ABSTAIN


@labeling_function()
def keyword_subscribe(x):
    """Asking for subscribers ('subscribe', 'sub4sub', 'subs') -> spam."""
    return SPAM if _SUBSCRIBE.search(x.text) else ABSTAIN


@labeling_function()
def keyword_please(x):
    """Begging ('please', 'plz', 'pls') is how promoters ask for clicks -> spam."""
    return SPAM if _PLEASE.search(x.text) else ABSTAIN


@labeling_function()
def keyword_song(x):
    """Comments that talk about the song are about the video -> ham."""
    return HAM if _SONG.search(x.text) else ABSTAIN


# ---------------------------------------------------------------------------
# regex LFs


_MY_PERSONAL = re.compile(
    r"\b(?:oh my (?:god|gosh|goodness)|omg|in my (?:opinion|head|mind|life)|my (?:fav\w*|opinion|"
    r"mom|mum|mother|dad|father|sister|brother|son|daughter|kids?|baby|family|wife|husband|"
    r"girlfriend|boyfriend|life|head|heart|childhood|memories|ears?|eyes|god|school|class|teacher))\b",
    re.IGNORECASE,
)


@labeling_function()
def regex_my_personal(x):
    """'my' about family, feelings or taste ('my mom', 'in my opinion', 'my favorite') -> ham."""
    text = clean_text(x.text)
    if _MY_PERSONAL.search(text) and not _MY_PROMO.search(text) and not _LINK.search(text):
        return HAM
    return ABSTAIN


@labeling_function()
def regex_link(x):
    """A URL, a domain or a /watch?v= link -> spam."""
    return SPAM if _LINK.search(x.text) else ABSTAIN


@labeling_function()
def regex_check_out(x):
    """'check out', 'check it out', 'check my ...' -> spam."""
    return SPAM if _CHECK_OUT.search(x.text) else ABSTAIN


@labeling_function()
def regex_view_count(x):
    """Remarks on the view count or 'still watching in 2015' -> ham."""
    return HAM if _VIEWS.search(clean_text(x.text)) else ABSTAIN


@labeling_function()
def regex_phone_number(x):
    """A phone number or another long digit run (not a view count) -> spam."""
    text = clean_text(x.text)
    if _PHONE.search(text) and not _VIEW_WORD.search(text):
        return SPAM
    return ABSTAIN


_THIRD_PERSON = re.compile(
    r"\b(?:she|he|her|hers|him|his|they|them|their|she's|he's|shes|hes|the (?:guy|girl|dude|kid|robot|tiger|"
    r"elephant|monkey|video|singer|lyrics|beat|dance|end|beginning|part)|lyrics)\b",
    re.IGNORECASE,
)


@labeling_function()
def regex_about_the_video(x):
    """Talk about the performers or the video ('she', 'the guy', 'the lyrics') without self-promotion -> ham."""
    text = clean_text(x.text)
    if len(text.split()) <= 40 and _THIRD_PERSON.search(text) and not _PROMO.search(text):
        return HAM
    return ABSTAIN


@labeling_function()
def regex_question(x):
    """A short question ('Where did she find ...?') without self-promotion -> ham."""
    text = clean_text(x.text)
    if text.endswith("?") and len(text.split()) <= 25 and not _PROMO.search(text):
        return HAM
    return ABSTAIN


# ---------------------------------------------------------------------------
# length / shape LFs


@labeling_function()
def short_comment(x):
    """Fewer than 5 words and no self-promotion word (my, subscribe, channel, link) -> ham."""
    text = clean_text(x.text)
    if len(text.split()) < 5 and not _PROMO.search(text):
        return HAM
    return ABSTAIN


@labeling_function()
def long_comment(x):
    """More than 50 words: pitches are long, reactions are short -> spam."""
    return SPAM if len(_words(x.text)) > 50 else ABSTAIN


@labeling_function()
def few_letters(x):
    """Mostly emoji, digits or punctuation (few letters) and no link -> ham."""
    text = clean_text(x.text)
    if not text or _LINK.search(text):
        return ABSTAIN
    letters = len(_LETTER.findall(text))
    return HAM if letters < 0.5 * len(text.replace(" ", "")) else ABSTAIN


@labeling_function()
def short_praise(x):
    """A short (<= 12 words) reaction with praise or laughter words and no self-promotion -> ham."""
    text = clean_text(x.text)
    if len(text.split()) <= 12 and _PRAISE.search(text) and not _PROMO.search(text):
        return HAM
    return ABSTAIN


# ---------------------------------------------------------------------------
# resource LF


@labeling_function(resources=dict(path=RESOURCES / "spam_phrases.txt"))
def phrase_list_spam(x, path):
    """A phrase from resources/spam_phrases.txt (self-promotion, money, giveaways, contacts) -> spam."""
    return SPAM if phrase_pattern(path).search(clean_text(x.text)) else ABSTAIN


# ---------------------------------------------------------------------------
# spaCy LFs

_PROMO_VERBS = frozenset(
    {"check", "subscribe", "visit", "watch", "follow", "share", "click", "go", "add", "help", "support",
     "join", "listen", "look", "view", "download", "sign", "vote", "give", "take", "come"}
)


@spacy_labeling_function()
def spacy_person_short(x):
    """A short comment (< 20 tokens) naming a PERSON (the artist, an actor) -> ham."""
    doc = x.doc
    if len(doc) < 20 and any(ent.label_ == "PERSON" for ent in doc.ents) and not _PROMO.search(doc.text):
        return HAM
    return ABSTAIN


@spacy_labeling_function()
def spacy_url_or_email(x):
    """A token spaCy sees as a URL or an e-mail address -> spam."""
    return SPAM if any(tok.like_url or tok.like_email for tok in x.doc) else ABSTAIN


@spacy_labeling_function()
def spacy_imperative_promo(x):
    """A sentence opening with an imperative call to action (check, subscribe, visit, ...) -> spam."""
    for sent in x.doc.sents:
        words = [tok for tok in sent if not (tok.is_punct or tok.is_space)]
        if not words:
            continue
        first = words[0]
        if first.lower_ in ("hey", "hi", "hello", "guys", "please", "plz", "pls") and len(words) > 2:
            first = words[1] if words[1].lower_ not in ("guys", "everyone", "there", ",") else words[2]
        if first.lemma_.lower() in _PROMO_VERBS and first.tag_ in ("VB", "VBP", "NNP", "NN") and len(words) > 1:
            return SPAM
    return ABSTAIN


@spacy_labeling_function()
def spacy_no_verb_short(x):
    """A short (<= 8 tokens) exclamation without any verb or URL ('Best song ever!!') -> ham."""
    doc = x.doc
    words = [tok for tok in doc if not (tok.is_punct or tok.is_space)]
    if not words or len(words) > 8:
        return ABSTAIN
    if any(tok.pos_ in ("VERB", "AUX") or tok.like_url or tok.like_email for tok in words):
        return ABSTAIN
    if _PROMO.search(doc.text):
        return ABSTAIN
    return HAM
