"""Spans: token-level weak supervision for entity (span) labeling.

Enters: tokenized documents and, per LF, spans ``(start, end, type)`` (token offsets,
end exclusive), from a ``spans_json`` file (the CHMM/WRENCH format) or from span LFs
applied to texts (character offsets, mapped to tokens).
Leaves: the token vote tensor (n_tokens x m; a type index, or ABSTAIN where the LF gave
no span), aggregated entity spans per document (majority vote, weighted vote, HMM,
selected on dev), and entity-level precision / recall / F1.
"""

import lazy_loader

#: module -> the public names it gives this stage (``labeling`` exports them all too)
EXPORTS = {
    "tags": ["spans_to_tags", "tags_to_spans", "vote_tensor"],
    "data": ["SpanDataset", "load_bc5cdr", "load_spans_json"],
    "metrics": ["entity_counts", "entity_scores"],
    "doclevel": ["abbreviation_spans", "add_abbreviations"],
    "aggregate": ["SpanHMM", "SpanSelection", "TokenMajorityVote", "TokenWeightedVote", "select_span_aggregator"],
    "lfs": ["Gazetteer", "SpanLF", "SpanVotes", "apply_span_lfs", "char_spans_to_tokens", "matcher_lf",
            "phrase_matcher_lf", "regex_span_lf", "spacy_ner_lf", "span_labeling_function", "token_offsets"],
    "end_model": ["SpacyNER"],
    "analysis": ["span_lf_summary"],
}

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=EXPORTS)
