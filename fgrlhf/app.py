"""What every ``fgrlhf-*`` command does around its recipe, written once.

``hydra_app(app, config_name, schema, run)`` registers the app's schema (``<config_name>_schema``,
named first in ``conf/<config_name>.yaml``'s defaults, so a misspelt key is an error),
and returns the Hydra ``main`` that merges the composed config into the schema, checks every
setting's range (``fgrlhf.validate``), runs the recipe and prints its result as one JSON line.
A user error (``fgrlhf.errors.UserError``) ends as one line and exit code 2.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from omegaconf import OmegaConf

from fgrlhf.errors import report_user_errors
from fgrlhf.paths import CONF_DIR, register_resolvers


def default_show(result: Any) -> str | None:
    return json.dumps(result) if result is not None else None


def hydra_app(app: str, config_name: str, schema: type, run: Callable[[Any], Any],
              show: Callable[[Any], str | None] = default_show) -> Callable[[], None]:
    """The ``main`` of command ``app`` (e.g. ``fgrlhf-rm``) over ``conf/<config_name>.yaml``."""
    ConfigStore.instance().store(name=f"{config_name}_schema", node=schema)
    register_resolvers()

    def main(cfg) -> None:
        def checked_run():
            from fgrlhf.validate import validate

            merged = OmegaConf.merge(OmegaConf.structured(schema), cfg)
            validate(merged, schema)
            return run(merged)

        result = report_user_errors(app, checked_run)
        line = show(result)
        if line is not None and int(os.environ.get("RANK", "0")) == 0:  # one line per run, not per process
            print(line)

    main.__name__ = main.__qualname__ = config_name
    hydra_main = hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")(main)

    def entry() -> None:
        # Hydra creates the run folder and writes its .hydra/ records before the recipe
        # starts: an unwritable folder, or one another run holds, is refused first.
        report_user_errors(app, check_run_dir_argument, sys.argv[1:])
        hydra_main()

    return entry


def check_run_dir_argument(argv: list[str]) -> None:
    """The ``hydra.run.dir=`` of a single run (not a multirun), checked writable and free."""
    from fgrlhf.errors import OutputError
    from fgrlhf.runlock import check_writable, holder, in_use_message

    if "-m" in argv or "--multirun" in argv:
        return
    given = [a.split("=", 1)[1] for a in argv if a.startswith("hydra.run.dir=")]
    if not given or "${" in given[-1]:
        return
    folder = Path(given[-1])
    check_writable(folder, "run folder (hydra.run.dir)")
    other = holder(folder)
    if other is not None:
        raise OutputError(in_use_message(folder, other))
