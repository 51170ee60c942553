"""Dataset loaders and validation."""

from fgrlhf.data.errors import DataError
from fgrlhf.data.qa_feedback import (
    FACTUALITY_ERRORS,
    PREFERENCE_PAIRS,
    RELEVANCE_ERRORS,
    ErrorSpan,
    FeedbackExample,
    MissingInfo,
    PromptExample,
    error_family,
    load_feedback,
    load_prompts,
)

__all__ = [
    "FACTUALITY_ERRORS",
    "PREFERENCE_PAIRS",
    "RELEVANCE_ERRORS",
    "DataError",
    "ErrorSpan",
    "FeedbackExample",
    "MissingInfo",
    "PromptExample",
    "error_family",
    "load_feedback",
    "load_prompts",
]
