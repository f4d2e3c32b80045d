"""Reproduces a run from its record: ``--config experiments/configs/from_json.py:PATH``.

``PATH`` is a workdir's ``config.json`` or ``results.json`` (which embeds the full config).
Overrides work as usual, e.g. ``--config.seed=1``.
"""
from experiments.config_io import load_config


def get_config(path: str):
    if not path.endswith(".json"):
        raise ValueError(f"from_json.py needs a .json path after ':', got {path!r}")
    return load_config(path)
