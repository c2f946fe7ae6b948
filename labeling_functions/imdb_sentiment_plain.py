"""The IMDB sentiment LFs written as plain Snorkel ``@labeling_function`` code.

The same ideas as ``imdb_sentiment.py`` (negative 0, positive 1), in the shapes
Snorkel users write: regexes with flags, words ``in x.text.lower()``, ``any``
over a tuple, a compiled module-level pattern, length thresholds, ``and``/``or``.
The applier compiles each of them to the multi-pattern scan
(``labeling/lf/compile.py``); ``benchmarks/retrain_scale.py`` times them against
Snorkel's ``PandasLFApplier`` and the tests check the votes are identical.
"""

from __future__ import annotations

import re

from snorkel.labeling import labeling_function

ABSTAIN = -1
NEG = 0
POS = 1

PRAISE = ("great", "excellent", "wonderful", "amazing", "superb", "brilliant")
SCORN = ("worst", "awful", "terrible", "horrible", "pathetic", "garbage")
MASTERPIECE = re.compile(r"\b(?:masterpiece|must[ -]see|a gem|classic)\b", re.IGNORECASE)


@labeling_function()
def kw_praise(x):
    return POS if re.search(r"\b(?:" + "|".join(PRAISE) + r")\b", x.text, re.IGNORECASE) else ABSTAIN


@labeling_function()
def kw_scorn(x):
    if any(word in x.text.lower() for word in SCORN):
        return NEG
    return ABSTAIN


@labeling_function()
def kw_boring(x):
    text = x.text.lower()
    if "boring" in text or "dull" in text or "pointless" in text or "tedious" in text or "waste of time" in text:
        return NEG
    return ABSTAIN


@labeling_function()
def kw_masterpiece(x):
    if MASTERPIECE.search(x.text):
        return POS
    return ABSTAIN


@labeling_function()
def re_high_rating(x):
    if re.search(r"\b(?:[7-9](?:\.\d)?|10)\s*(?:/|out\s+of)\s*10\b", x.text, flags=re.IGNORECASE) is not None:
        return POS
    return ABSTAIN


@labeling_function()
def re_low_rating(x):
    hit = re.search(r"\b[0-4](?:\.\d)?\s*(?:/|out\s+of)\s*10\b", x.text, flags=re.IGNORECASE)
    return NEG if hit else ABSTAIN


@labeling_function()
def re_recommend(x):
    if re.search(r"\b(?:highly|strongly|definitely)\s+recommend", x.text, re.I):
        return POS
    else:
        return ABSTAIN


@labeling_function()
def re_dont_bother(x):
    if not re.search(r"\b(?:don'?t|do\s+not)\s+(?:bother|waste)", x.text, re.I):
        return ABSTAIN
    return NEG


@labeling_function()
def re_shouting(x):
    return NEG if re.search(r"[!?]{3,}", x.text) or re.search(r"\b[A-Z]{5,}\b", x.text) else ABSTAIN


@labeling_function()
def long_review(x):
    return POS if len(x.text.split()) >= 400 else ABSTAIN
