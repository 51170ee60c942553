"""The training toolkit every recipe and every trainable reward model shares: one AdamW
builder and one warmup/decay schedule (``optim``), one fit loop (``fit``), one atomic writer
of model folders (``save``). It sits below ``reward/`` and ``train/`` and imports neither."""
