"""fgrlhf: fine-grained, dense-reward RLHF."""

__version__ = "0.1.0"
