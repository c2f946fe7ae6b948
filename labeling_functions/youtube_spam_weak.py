"""A deliberately weak LF set for the YouTube project: four of the example LFs.

The review loop (``pipelines/close_loop.py``) starts from it to show that
reviews, refinement and gold labels raise the end model's accuracy.
"""

from labeling_functions.youtube_spam import keyword_song, keyword_subscribe, regex_check_out, short_comment

__all__ = ["keyword_song", "keyword_subscribe", "regex_check_out", "short_comment"]
