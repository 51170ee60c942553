"""QA-Feedback's error categories, defined once: their names, what kind of model judges
each and at which granularity, and where a segment's error probability becomes an error."""

from __future__ import annotations

# category: (kind of reward model, granularity it judges)
RM_CATEGORIES = {
    "relevance": ("segment", "subsentence"),  # R1
    "factuality": ("segment", "sentence"),  # R2
    "completeness": ("sequence", "sequence"),  # R3
    "preference": ("sequence", "sequence"),  # the holistic preference RM
}
# The fine-grained reward's categories, in the paper's order (R1, R2, R3).
QA_CATEGORIES = ("relevance", "factuality", "completeness")
# Judged per segment: the metric is the share of segments judged error-free.
RATIO_CATEGORIES = ("relevance", "factuality")
# Judged per answer: the metric is the mean score.
SEQUENCE_CATEGORIES = ("completeness",)

# A segment is an error when its judge gives P(error) > 0.5: training (label mode), the
# evaluation metrics and the reports draw the line at the same place.
ERROR_THRESHOLD = 0.5


def is_error(p_error: float) -> bool:
    return p_error > ERROR_THRESHOLD
