"""Conformance suites shipped with the package, for built-in and third-party implementations."""

from autometa.testing.strategies import (
    StrategyTestCase,
    check_candidates_valid,
    check_resume,
    check_strategy,
    check_unknown_option,
    result_value,
    run_trials,
)

__all__ = [
    "StrategyTestCase",
    "check_candidates_valid",
    "check_resume",
    "check_strategy",
    "check_unknown_option",
    "result_value",
    "run_trials",
]
