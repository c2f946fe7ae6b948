"""Keyword, regex and length LFs for IMDB movie reviews: negative (0) vs positive (1).

Built with the declarative factories, so they run as ordinary Snorkel LFs and as
one multi-pattern scan in the fast applier. ``benchmarks/apply_speed.py`` times
this set against Snorkel's ``PandasLFApplier``.
"""

from __future__ import annotations

import re

from labeling.lf.declarative import keyword_lf, length_lf, regex_lf

NEG = 0
POS = 1

kw_praise = keyword_lf("kw_praise", ["great", "excellent", "wonderful", "amazing", "superb", "brilliant"], POS)
kw_scorn = keyword_lf("kw_scorn", ["worst", "awful", "terrible", "horrible", "pathetic", "garbage"], NEG)
kw_boring = keyword_lf("kw_boring", ["boring", "dull", "pointless", "tedious", "waste of time"], NEG)
kw_masterpiece = keyword_lf("kw_masterpiece", ["masterpiece", "must see", "must-see", "a gem", "classic"], POS)
re_high_rating = regex_lf("re_high_rating", r"\b(?:[7-9](?:\.\d)?|10)\s*(?:/|out\s+of)\s*10\b", POS, flags=re.IGNORECASE)
re_low_rating = regex_lf("re_low_rating", r"\b[0-4](?:\.\d)?\s*(?:/|out\s+of)\s*10\b", NEG, flags=re.IGNORECASE)
re_recommend = regex_lf("re_recommend", r"\b(?:highly|strongly|definitely)\s+recommend", POS, flags=re.IGNORECASE)
re_dont_bother = regex_lf("re_dont_bother", r"\b(?:don'?t|do\s+not)\s+(?:bother|waste)", NEG, flags=re.IGNORECASE)
re_shouting = regex_lf("re_shouting", r"[!?]{3,}|\b[A-Z]{5,}\b", NEG)
long_review = length_lf("long_review", POS, min_words=400)
