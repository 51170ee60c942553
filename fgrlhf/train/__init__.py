"""Training: the trainers (``ppo``: fine-grained PPO, with ``parallel`` for its data
parallelism; ``sft``: supervised fine-tuning; ``rm``: reward models) and the recipes that
build a run from a config and drive them."""
