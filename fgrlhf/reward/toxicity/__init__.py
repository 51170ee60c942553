"""Toxicity rewards for the detoxification experiment of Wu et al. (2023, §4).

The paper scores the generated continuation ``y`` (not the prompt) with the Perspective API:

- holistic: one reward per continuation, ``1 − tox(y)``, at its last segment;
- sentence level: for sentence j, ``r_j = −(tox(y_≤j) − tox(y_≤j−1))``, the change in
  toxicity that sentence causes. The sum over sentences telescopes to
  ``−(tox(y) − tox(y_≤0))``: the dense reward only redistributes the holistic one over the
  sentences (up to a constant), so it changes credit assignment, not the objective.

``y_≤j`` is the text up to the end of sentence j; ``y_≤0`` is the empty string, whose
toxicity is by default what the scorer says of ``""`` (scored in the same batch): then the
first sentence is judged against the scorer's own baseline, not against 0, and a scorer's
bias on short texts does not fall on the first sentence alone. ``empty_toxicity=0.0``
fixes it to 0 instead.

Where toxicity comes from is pluggable (``TextToxicity``: ``toxicity(texts) → [0, 1]``):
``ToxicityScorer``, a MiniLM regressor trained offline on RTP's Perspective scores by
``fgrlhf-toxicity`` (no network), ``FastTextToxicityScorer``, a bag of n-grams trained the
same way, or ``PerspectiveScorer``, the API itself for users with a key.

- ``scorers``: the offline scorers, their checkpoints and the ``OfflineToxicityScorer`` contract;
- ``rewards``: the reward arithmetic and the holistic / sentence-level reward models;
- ``perspective``: the Perspective API client and the paper's own reward.
"""

from fgrlhf.reward.toxicity.perspective import (
    PERSPECTIVE_KEY_ENV,
    PERSPECTIVE_URL,
    PerspectiveReward,
    PerspectiveScorer,
    perspective_request_body,
    perspective_toxicity,
)
from fgrlhf.reward.toxicity.rewards import (
    HolisticToxicityReward,
    SentenceToxicityReward,
    holistic_rewards,
    holistic_toxicity_rows,
    prefix_delta_rewards,
    sentence_prefixes,
    sentence_toxicity_rows,
)
from fgrlhf.reward.toxicity.scorers import (
    CATEGORY,
    SPLIT_FILE,
    BagOfNgrams,
    FastTextToxicityScorer,
    OfflineToxicityScorer,
    TextToxicity,
    ToxicityScorer,
    batched_toxicity,
    load_toxicity_scorer,
    new_toxicity_scorer,
    ngram_buckets,
    toxicity_metadata,
)

__all__ = [
    "CATEGORY",
    "PERSPECTIVE_KEY_ENV",
    "PERSPECTIVE_URL",
    "SPLIT_FILE",
    "BagOfNgrams",
    "FastTextToxicityScorer",
    "HolisticToxicityReward",
    "OfflineToxicityScorer",
    "PerspectiveReward",
    "PerspectiveScorer",
    "SentenceToxicityReward",
    "TextToxicity",
    "ToxicityScorer",
    "batched_toxicity",
    "holistic_rewards",
    "holistic_toxicity_rows",
    "load_toxicity_scorer",
    "new_toxicity_scorer",
    "ngram_buckets",
    "perspective_request_body",
    "perspective_toxicity",
    "prefix_delta_rewards",
    "sentence_prefixes",
    "sentence_toxicity_rows",
    "toxicity_metadata",
]
