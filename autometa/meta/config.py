"""Every hyperparameter of the MAML evaluator, with its default and where that default is from.

The definitions live in :mod:`autometa._maml_config`, below every package and free of
torch, so that ``autometa validate`` checks a space without importing the evaluator; this
module is their public home.
"""

from autometa._maml_config import (
    PRESETS,
    MAMLConfig,
    check_space_hyperparameters,
    close_match_hint,
    config_for,
    field_problem,
    settable_fields,
)

__all__ = [
    "MAMLConfig",
    "PRESETS",
    "check_space_hyperparameters",
    "close_match_hint",
    "config_for",
    "field_problem",
    "settable_fields",
]
