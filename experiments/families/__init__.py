"""Model families register their builders here, one module per family.

Every module of this package is imported by `experiments.registry` (after `register` is
defined), so a new family adds a file such as ``experiments/families/flows.py`` containing
``@register("realnvp", data_kind="continuous", ...)`` builders and nothing else changes.
"""
