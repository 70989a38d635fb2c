"""Canonical hashing: graphs that compute the same function shape share one key."""

from __future__ import annotations

import hashlib
import json

import networkx as nx

from autometa.graph._validate import INPUT, OUTPUT

__all__ = ["canonical_hash", "node_label"]


def node_label(graph: nx.DiGraph, node: str) -> str:
    """What a node computes, without its name: op, width, merge and residual."""
    attrs = graph.nodes[node]
    if node in (INPUT, OUTPUT):
        return node
    label = {
        "op": attrs.get("op"),
        "width": attrs.get("width"),
        "merge": attrs.get("merge", "sum"),
        "residual": bool(attrs.get("residual", False)),
    }
    return json.dumps(label, sort_keys=True)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def canonical_hash(graph: nx.DiGraph) -> str:
    """A 16-hex-digit key that ignores node names and input order.

    Each node's signature hashes its label with the sorted signatures of its inputs (a
    Merkle hash over the DAG), so isomorphic relabelings collide. The key is the hash of the
    sorted multiset of all signatures, which also tells a shared node from two copies of it,
    plus the graph's hyperparameters. Node names and edge ``order`` never enter it: a
    permuted concat is the same function class.
    """
    signatures: dict[str, str] = {}
    for node in nx.lexicographical_topological_sort(graph, key=str):
        preds = sorted(signatures[u] for u in graph.pred[node])
        signatures[node] = _digest(node_label(graph, node) + "|" + ",".join(preds))
    hyper = graph.graph.get("hyperparameters") or {}
    payload = json.dumps(
        {"nodes": sorted(signatures.values()), "hyperparameters": hyper},
        sort_keys=True,
        default=str,
    )
    return _digest(payload)[:16]
