"""The Perspective API (the paper's toxicity judge): an HTTP client that spaces and retries
its requests, and the paper's own reward on top of it. Needs a key and network access."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from fgrlhf.reward.base import RewardInputs, SegmentScores
from fgrlhf.reward.toxicity.rewards import holistic_toxicity_rows, sentence_toxicity_rows
from fgrlhf.segment.base import Granularity, Span

PERSPECTIVE_URL = "https://commentanalyzer.googleapis.com/v1alpha1/comments:analyze"
PERSPECTIVE_KEY_ENV = "PERSPECTIVE_API_KEY"
# Rate-limit and server-side failures worth waiting for; anything else (a bad key, a
# malformed request) fails at once.
_RETRY_STATUS = (429, 500, 502, 503, 504)


def perspective_request_body(text: str, attributes: Sequence[str] = ("TOXICITY",),
                             languages: Sequence[str] = ("en",), do_not_store: bool = True) -> dict[str, Any]:
    """The JSON body of one ``comments:analyze`` request. ``doNotStore``: generated text is
    not training data for Google's models."""
    return {"comment": {"text": text}, "languages": list(languages),
            "requestedAttributes": {a: {} for a in attributes}, "doNotStore": do_not_store}


def perspective_toxicity(response: dict[str, Any], attribute: str = "TOXICITY") -> float:
    """The summary score of ``attribute`` in a ``comments:analyze`` response."""
    try:
        return float(response["attributeScores"][attribute]["summaryScore"]["value"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"Perspective response has no {attribute} summary score: {str(response)[:300]}") from err


class PerspectiveScorer:
    """Toxicity from the Perspective API, one request per distinct non-blank text.

    Requests are spaced by ``1 / rate_limit`` seconds (the API's default quota is 1 request/s)
    and retried with exponential backoff on 429 and 5xx answers and network errors. A blank
    text is not sent (the API rejects empty comments) and gets toxicity 0.
    """

    def __init__(self, api_key: str | None = None, rate_limit: float = 1.0, max_retries: int = 5,
                 timeout: float = 30.0, url: str = PERSPECTIVE_URL, languages: Sequence[str] = ("en",)) -> None:
        key = api_key or os.environ.get(PERSPECTIVE_KEY_ENV)
        if not key:
            raise RuntimeError(
                f"the Perspective API needs a key: set {PERSPECTIVE_KEY_ENV} or pass api_key=... "
                "(https://developers.perspectiveapi.com/s/docs-get-started); without network access "
                "use the offline scorer (fgrlhf-toxicity, reward=detox_sentence / detox_holistic)")
        if rate_limit <= 0:
            raise ValueError(f"rate_limit must be positive (requests per second), not {rate_limit}")
        self._key = key
        self.interval = 1.0 / rate_limit
        self.max_retries, self.timeout, self.url, self.languages = max_retries, timeout, url, tuple(languages)
        self._last = 0.0
        self._lock = threading.Lock()

    def _wait_turn(self) -> None:
        with self._lock:
            delay = self._last + self.interval - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            self._last = time.monotonic()

    def _request(self, text: str) -> float:
        body = json.dumps(perspective_request_body(text, languages=self.languages)).encode()
        request = urllib.request.Request(f"{self.url}?key={self._key}", data=body,
                                         headers={"Content-Type": "application/json"}, method="POST")
        for attempt in range(self.max_retries + 1):
            self._wait_turn()
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                    return perspective_toxicity(json.load(resp))
            except urllib.error.HTTPError as err:
                if err.code not in _RETRY_STATUS or attempt == self.max_retries:
                    detail = err.read().decode(errors="replace")[:300]
                    raise RuntimeError(f"Perspective API answered HTTP {err.code}: {detail}") from err
            except (urllib.error.URLError, TimeoutError) as err:
                if attempt == self.max_retries:
                    raise RuntimeError(f"Perspective API unreachable after {attempt + 1} tries: {err}") from err
            time.sleep(min(60.0, 2.0 ** attempt))
        raise AssertionError("unreachable")

    def toxicity(self, texts: Sequence[str]) -> list[float]:
        scores = {t: (0.0 if not t.strip() else None) for t in texts}
        for t in scores:
            if scores[t] is None:
                scores[t] = self._request(t)
        return [float(scores[t]) for t in texts]  # type: ignore[arg-type]


class PerspectiveReward:
    """The paper's own reward: holistic (``granularity=sequence``) or Δ-toxicity per sentence
    (``granularity=sentence``) from the Perspective API. Fails at construction without a key."""

    def __init__(self, granularity: str = "sentence", api_key: str | None = None, rate_limit: float = 1.0,
                 max_retries: int = 5, timeout: float = 30.0, empty_toxicity: float | None = 0.0) -> None:
        self.granularity = Granularity(granularity)
        if self.granularity not in (Granularity.SEQUENCE, Granularity.SENTENCE):
            raise ValueError(f"PerspectiveReward: granularity must be sequence or sentence, not {granularity!r}")
        self.scorer = PerspectiveScorer(api_key, rate_limit, max_retries, timeout)
        # The API scores "" as nothing: 0 unless told otherwise (None scores "" → 0 as well).
        self.empty_toxicity = empty_toxicity

    def score(self, inputs: RewardInputs, spans: Sequence[Sequence[Span]]) -> SegmentScores:
        if self.granularity is Granularity.SEQUENCE:
            rows = holistic_toxicity_rows(self.scorer, inputs.texts, spans)
        else:
            rows = sentence_toxicity_rows(self.scorer, inputs.texts, spans, self.empty_toxicity)
        return SegmentScores.from_lists(rows)
