"""Labeling functions for GoEmotions (Demszky et al. 2020): 28 labels, a comment may carry several.

Written from the label names and general knowledge of how Reddit comments voice
each emotion (no look at test rows). Keyword LFs (``keyword_lf``) vote one class
and are compiled into one scan; the Python LFs below show the multi-label API: a
list of classes is a yes vote for each, ``NOT(c)`` a "not this class" vote.
Class indices are positions in ``labels.txt`` (0 = admiration ... 27 = neutral).
"""

from __future__ import annotations

import re

from snorkel.labeling import labeling_function

from labeling.lf.declarative import keyword_lf
from labeling.multilabel.votes import NOT

ABSTAIN = -1
CLASSES = ("admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
           "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief",
           "joy", "love", "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness",
           "surprise", "neutral")
C = {name: i for i, name in enumerate(CLASSES)}

# class -> keyword groups; each group is one LF (several per class, so per-class models see agreement)
KEYWORDS = {
    "admiration": [["amazing", "awesome", "impressive", "incredible", "brilliant"],
                   ["beautiful", "gorgeous", "stunning", "great job", "well done"],
                   ["best", "respect", "legend", "genius", "so good"]],
    "amusement": [["lol", "lmao", "lmfao", "rofl"], ["haha", "hahaha", "hehe", "ha ha"],
                  ["funny", "hilarious", "made me laugh", "laughing"]],
    "anger": [["angry", "furious", "pissed", "rage", "mad at"], ["fuck you", "screw you", "hate you", "shut up"],
              ["fucking idiot", "asshole", "bastard"]],
    "annoyance": [["annoying", "annoyed", "irritating", "ugh"], ["sick of", "tired of", "fed up", "so dumb"],
                  ["stupid", "ridiculous", "seriously?"]],
    "approval": [["agree", "agreed", "exactly", "true"], ["yes", "yep", "yeah", "right"],
                 ["good point", "fair enough", "makes sense", "good idea"]],
    "caring": [["take care", "hope you", "be careful", "stay safe"], ["hugs", "sending love", "you okay", "are you ok"],
               ["here for you", "feel better", "hang in there"]],
    "confusion": [["confused", "confusing", "don't understand", "dont understand"],
                  ["what do you mean", "huh", "no idea", "not sure what"], ["wtf", "makes no sense", "i'm lost"]],
    "curiosity": [["curious", "wonder", "wondering", "interested in"], ["why", "how come", "what if"],
                  ["anyone know", "do you know", "can someone explain"]],
    "desire": [["wish", "i want", "i need", "want to"], ["would love", "can't wait to", "dying to", "craving"]],
    "disappointment": [["disappointed", "disappointing", "let down", "letdown"],
                       ["unfortunately", "sadly", "too bad", "what a shame"]],
    "disapproval": [["disagree", "not okay", "not cool", "wrong"], ["no way", "nope", "shouldn't", "should not"],
                    ["terrible idea", "bad idea", "not a good"]],
    "disgust": [["disgusting", "gross", "nasty", "vile"], ["ew", "eww", "yuck", "sickening", "repulsive"]],
    "embarrassment": [["embarrassed", "embarrassing", "awkward", "cringe"], ["ashamed", "humiliating", "blush"]],
    "excitement": [["excited", "exciting", "can't wait", "cant wait"], ["hype", "hyped", "wow", "woohoo", "yay"]],
    "fear": [["scared", "afraid", "terrified", "frightening"], ["scary", "fear", "horrifying", "creepy"]],
    "gratitude": [["thank", "thanks", "thank you", "thx"], ["grateful", "appreciate", "appreciated", "thankful"],
                  ["ty", "much appreciated", "cheers"]],
    "grief": [["rip", "rest in peace", "passed away", "condolences"], ["mourning", "grieving", "lost my"]],
    "joy": [["happy", "glad", "so happy", "delighted"], ["enjoy", "enjoyed", "fun", "joy"],
            ["feels good", "great day", "love it"]],
    "love": [["love", "loved", "loving", "i love"], ["adore", "<3", "my heart", "so cute"]],
    "nervousness": [["nervous", "anxious", "anxiety", "worried"], ["stress", "stressed", "panic", "uneasy"]],
    "optimism": [["hope", "hopefully", "fingers crossed", "optimistic"],
                 ["will get better", "it'll be ok", "good luck", "you got this"]],
    "pride": [["proud", "so proud", "pride"], ["accomplished", "achievement", "nailed it"]],
    "realization": [["realize", "realized", "just noticed", "turns out"], ["i see", "oh i get it", "now i know"]],
    "relief": [["relieved", "relief", "phew", "thank god"], ["finally", "glad it's over", "dodged a bullet"]],
    "remorse": [["sorry", "my bad", "apologize", "apologies"], ["regret", "feel bad", "my fault", "guilty"]],
    "sadness": [["sad", "depressing", "depressed", "heartbreaking"], ["cry", "crying", "tears", "miss you"],
                ["lonely", "unhappy", "hurts", "broke my heart"]],
    "surprise": [["surprised", "surprising", "shocked", "shocking"], ["omg", "oh my god", "no way!", "whoa"],
                 ["wow", "unexpected", "didn't expect", "can't believe"]],
}

KEYWORD_LFS = [keyword_lf(f"kw_{name}_{i}", words, C[name]) for name, groups in KEYWORDS.items()
               for i, words in enumerate(groups)]
# discovery collects module-level LFs: each keyword LF gets its own name here
globals().update({lf.name: lf for lf in KEYWORD_LFS})

_ANY_EMOTION = re.compile(r"(?<!\w)(?:" + "|".join(sorted({re.escape(w) for groups in KEYWORDS.values()
                                                              for ws in groups for w in ws}, key=len, reverse=True))
                          + r")(?!\w)", re.IGNORECASE)
_QUESTION = re.compile(r"^\s*(why|how|what|who|where|when|is|are|do|does|did|can|could)\b.*\?\s*$",
                       re.IGNORECASE | re.DOTALL)


@labeling_function()
def plain_statement_neutral(x):
    """No emotion word, no '!' and no '?': neutral; otherwise not neutral."""
    if _ANY_EMOTION.search(x.text):
        return NOT(C["neutral"])
    if "!" in x.text or "?" in x.text:
        return ABSTAIN
    return C["neutral"]


@labeling_function()
def short_plain_neutral(x):
    """A short remark with no emotion word and no punctuation of feeling: neutral."""
    if len(x.text.split()) <= 12 and not _ANY_EMOTION.search(x.text) and not re.search(r"[!?]", x.text):
        return C["neutral"]
    return ABSTAIN


@labeling_function()
def question_curiosity(x):
    """A question opening with a question word: curiosity, and not neutral."""
    return [C["curiosity"], NOT(C["neutral"])] if _QUESTION.match(x.text) else ABSTAIN


@labeling_function()
def thanks_and_love(x):
    """'thank you so much' / 'thanks, love': gratitude, often with love or admiration."""
    t = x.text.lower()
    if re.search(r"\bthank(s| you)\b.*\b(love|amazing|awesome)\b", t):
        return [C["gratitude"], C["love"] if "love" in t else C["admiration"]]
    return ABSTAIN


@labeling_function()
def sorry_for_loss(x):
    """'sorry for your loss': grief and sadness (caring too), not remorse."""
    t = x.text.lower()
    if re.search(r"sorry (for|about) your (loss|dad|mom|father|mother|friend|dog|cat)", t):
        return [C["sadness"], C["caring"], NOT(C["remorse"])]
    return ABSTAIN


@labeling_function()
def laughing_exclaim(x):
    """Laughter with an exclamation: amusement and joy."""
    t = x.text.lower()
    return [C["amusement"], C["joy"]] if re.search(r"\b(lol|haha\w*|lmao)\b", t) and "!" in t else ABSTAIN


PYTHON_LFS = [plain_statement_neutral, short_plain_neutral, question_curiosity, thanks_and_love, sorry_for_loss,
              laughing_exclaim]
