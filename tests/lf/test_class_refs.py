"""Class constants in LF modules: found, rewritten with a diff, or listed for a person."""

from __future__ import annotations

from labeling.lf.class_refs import class_constants, rewrite_class_constants

SOURCE = '''from snorkel.labeling import labeling_function

ABSTAIN = -1
HAM = 0
SPAM = 1


@labeling_function()
def song(x):
    return HAM if "song" in x.text else ABSTAIN


@labeling_function()
def link(x):
    return 1 if "http" in x.text else -1
'''


def test_module_level_int_constants_named_after_a_class_are_its_constants():
    found = class_constants(SOURCE, ["ham", "spam"])
    assert [(c.name, c.class_name, c.index) for c in found] == [("HAM", "ham", 0), ("SPAM", "spam", 1)]
    assert class_constants(SOURCE, ["spam", "ham"]) == []  # a value that is not the class's index is not one


def test_a_rename_renames_the_constant_everywhere_and_lists_its_votes():
    out = rewrite_class_constants(SOURCE, ["ham", "spam"], ["legit", "spam"], [0, 1], {"ham": "legit"}, path="m.py")
    assert "LEGIT = 0" in out.new_source and 'return LEGIT if "song"' in out.new_source and "HAM" not in out.new_source
    assert out.votes == ('m.py:10: return HAM if "song" in x.text else ABSTAIN',) and out.manual == ()
    body = out.diff.splitlines()[2:]  # after the ---/+++ header
    assert sum(line.startswith("-") for line in body) == sum(line.startswith("+") for line in body) == 2


def test_moved_indices_are_rewritten_gone_classes_abstain_and_literals_are_listed():
    # retire ham: spam moves 1 -> 0; "return 1" now means nothing it meant before
    out = rewrite_class_constants(SOURCE, ["ham", "spam", "x"], ["spam", "x"], [None, 0, 1], {}, path="m.py")
    assert "HAM = -1" in out.new_source and "SPAM = 0" in out.new_source and "X = 1" in out.new_source
    assert any("HAM ('ham') is no longer a class" in m for m in out.manual)
    assert any(m.startswith("m.py:15: returns a class index as a literal") for m in out.manual)
