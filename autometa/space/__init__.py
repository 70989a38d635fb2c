"""The search-space language: space files -> ``SearchSpace`` -> candidate graphs.

See ``docs/spaces.md`` for the file format and ``docs/design.md`` for the API contract.
"""

from autometa._shipped import shipped_spaces
from autometa.space._errors import SpaceError
from autometa.space._limits import (
    MAX_ALIAS_NODES,
    MAX_FILE_BYTES,
    MAX_FLOW_DEPTH,
    MAX_INT_DIGITS,
)
from autometa.space.dims import (
    Boolean,
    Categorical,
    Dimension,
    Float,
    Integer,
    condition_holds,
    dimension_from_dict,
)
from autometa.space.load import load_space
from autometa.space.space import SearchSpace

__all__ = [
    "MAX_ALIAS_NODES",
    "MAX_FILE_BYTES",
    "MAX_FLOW_DEPTH",
    "MAX_INT_DIGITS",
    "Boolean",
    "Categorical",
    "Dimension",
    "Float",
    "Integer",
    "SearchSpace",
    "SpaceError",
    "condition_holds",
    "dimension_from_dict",
    "load_space",
    "shipped_spaces",
]
