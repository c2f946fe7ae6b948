"""Slices of the YouTube comments whose metrics the run report shows.

Snorkel slicing functions: each returns whether a comment belongs to the slice.
"""

from __future__ import annotations

from snorkel.slicing import slicing_function

from labeling_functions.youtube_spam import LINK, words


@slicing_function()
def short_comment(x):
    """Five words or fewer: little text for the model to go on."""
    return len(words(x.text)) <= 5


@slicing_function()
def has_link(x):
    """Comments with a URL: the LFs lean on links, so check the model does not."""
    return bool(LINK.search(x.text))


@slicing_function()
def long_comment(x):
    """More than 40 words."""
    return len(words(x.text)) > 40
