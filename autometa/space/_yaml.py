"""The YAML loaders of space files: safe, limited, and on libyaml when it is installed.

Both loaders are PyYAML's safe loader with the same additions: ``1e-3`` reads as a float
(YAML 1.1 wants ``1.0e-3``), aliases may expand to at most ``MAX_ALIAS_NODES`` nodes in all
("billion laughs": nested aliases, or merge keys ``<<``, that would expand exponentially), an
alias inside its own anchor (an endless document) is refused, and ``[`` or ``{`` nested deeper
than ``MAX_FLOW_DEPTH`` stop the reading.

- :data:`FastLoader` parses with libyaml (``yaml.CParser``, C) and composes the nodes in
  Python, where the limits are checked; it reads a large file several times faster than
  the pure loader. It is None when PyYAML was built without libyaml.
- :class:`PureLoader` is PyYAML in pure Python: the fallback without libyaml, and the loader
  that words a syntax error (libyaml words them differently), so messages do not depend on
  how PyYAML was built.

Both report marks the same way (0-based line and column), so ``file:line:col`` in messages is
the same whichever read the file.
"""

from __future__ import annotations

import re
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import Resolver
from yaml.scanner import Scanner

from autometa.space._errors import Text

try:
    from yaml.cyaml import CParser
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    CParser = None
from autometa.space._limits import MAX_ALIAS_NODES, MAX_FLOW_DEPTH

__all__ = ["FastLoader", "LimitError", "PureLoader", "SpaceLoader"]

_ALIAS_EXPECTED = f"aliases that expand to at most {MAX_ALIAS_NODES} nodes in all"
_DEPTH_EXPECTED = f"[ ] and {{ }} nested at most {MAX_FLOW_DEPTH} deep"


class LimitError(yaml.YAMLError):
    """A limit broken while composing the YAML document, located at ``mark``."""

    def __init__(self, mark: Any, expected: str, got: str, code: str) -> None:
        super().__init__(got)
        self.mark, self.expected, self.got, self.code = mark, expected, Text(got), code


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _expanded_size(node: Any, sizes: dict[int, int], cap: int) -> int:
    """Nodes under ``node`` (itself included) with every alias written out, at most ``cap``.

    ``sizes`` memoises by node, so each node is counted once however often it is aliased;
    the composed graph is acyclic here (an alias inside its own anchor is refused first).
    """
    stack = [(node, False)]
    while stack:
        item, ready = stack.pop()
        if id(item) in sizes:
            continue
        kids = _children(item)
        if ready:
            sizes[id(item)] = min(cap, 1 + sum(sizes[id(k)] for k in kids))
        else:
            stack.append((item, True))
            stack.extend((k, False) for k in kids if id(k) not in sizes)
    return sizes[id(node)]


class _Resolver(Resolver):
    """YAML 1.1's implicit tags, plus floats written without a dot (``1e-3``)."""


_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


class _LimitedComposer(Composer):
    """PyYAML's composer, counting alias expansion and flow nesting as it builds nodes.

    It reads events from whichever parser the loader has (libyaml's or PyYAML's), so the
    limits hold for both.
    """

    def _start_limits(self) -> None:
        self._alias_nodes = 0
        self._sizes: dict[int, int] = {}
        self._open: set[str] = set()  # anchors of the nodes being composed
        self._flow_depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            node = self.anchors.get(event.anchor)
            if node is not None:
                if event.anchor in self._open:
                    got = f"an alias inside its own anchor &{event.anchor}"
                    raise LimitError(event.start_mark, _ALIAS_EXPECTED, got, "too_many_aliases")
                self._alias_nodes += _expanded_size(node, self._sizes, MAX_ALIAS_NODES + 1)
                if self._alias_nodes > MAX_ALIAS_NODES:
                    got = f"more than {MAX_ALIAS_NODES}"
                    raise LimitError(event.start_mark, _ALIAS_EXPECTED, got, "too_many_aliases")
            return super().compose_node(parent, index)
        flow = isinstance(event, yaml.CollectionStartEvent) and bool(event.flow_style)
        if flow:
            if self._flow_depth >= MAX_FLOW_DEPTH:
                raise LimitError(event.start_mark, _DEPTH_EXPECTED, "a deeper one", "too_deep")
            self._flow_depth += 1
        if event.anchor is not None:
            self._open.add(event.anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open.discard(event.anchor)
            self._flow_depth -= flow


class PureLoader(Reader, Scanner, Parser, _LimitedComposer, SafeConstructor, _Resolver):
    """The limited safe loader in pure Python.

    Its scanner also stops at the ``[`` or ``{`` that nests too deep, before PyYAML's scanner
    (which does work per open level for every token) would take quadratic time.
    """

    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _LimitedComposer.__init__(self)
        SafeConstructor.__init__(self)
        _Resolver.__init__(self)
        self._start_limits()

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= MAX_FLOW_DEPTH:
            raise LimitError(self.get_mark(), _DEPTH_EXPECTED, "a deeper one", "too_deep")
        super().fetch_flow_collection_start(TokenClass)


def _fast_loader() -> type | None:
    """The limited safe loader on libyaml's parser, or None without libyaml."""
    parser = CParser
    if parser is None:  # pragma: no cover - PyYAML built without libyaml
        return None

    class FastLoader(_LimitedComposer, parser, SafeConstructor, _Resolver):
        """The limited safe loader: libyaml parses, Python composes (the limits) and builds."""

        def __init__(self, stream: str) -> None:
            parser.__init__(self, stream)
            _LimitedComposer.__init__(self)
            SafeConstructor.__init__(self)
            _Resolver.__init__(self)
            self._start_limits()

    return FastLoader


FastLoader: type | None = _fast_loader()
"""The loader on libyaml (C), or None when PyYAML has no libyaml."""

SpaceLoader = FastLoader if FastLoader is not None else PureLoader
"""The loader space files are read with: :data:`FastLoader` when there is one."""
