"""Where meta-training stopped, so that a later evaluation can continue it exactly.

Multi-fidelity search evaluates a promoted candidate again with more meta-iterations. Instead
of starting over, the evaluation continues from a :class:`TrainingState`: the meta-parameters,
the outer optimiser's state (Adam's moments, ProMP's KL weights), the action-noise
generator's state, the curves so far and the iteration reached. Task seeds are derived from
the absolute iteration index, so a candidate trained to 2 iterations and continued to 5 ends
with the same numbers (bitwise on the CPU, with the same TRPO backend) as one trained
straight to 5.

:meth:`TrainingState.to_tensors` gives a flat dict of CPU tensors (stored as safetensors, no
pickle); :meth:`TrainingState.from_tensors` checks such a dict, which may come from a file,
before anything uses it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from autometa.meta.rollout import Params

__all__ = ["TrainingState", "capture_outer", "restore_outer"]

_META, _OUTER = "meta.", "outer."
_SEED_MASK = (1 << 63) - 1  # seeds are stored as int64


@dataclass
class TrainingState:
    """Meta-training after ``iteration`` meta-iterations of one candidate and seed.

    Attributes:
        iteration: meta-iterations done (the next one has this index).
        seed: the evaluation seed it was trained with (continuing needs the same).
        meta: the meta-parameters (with Meta-SGD's ``"alpha.<name>"``), on the CPU.
        outer: the outer step's state as named tensors (empty for TRPO).
        generator: the action-noise generator's state (``torch.Generator.get_state()``).
        post_curve: mean post-adaptation return of every iteration so far.
        pre_curve: the same before adaptation.
        env_steps: transitions stepped so far.
    """

    iteration: int
    seed: int
    meta: dict[str, torch.Tensor]
    outer: dict[str, torch.Tensor]
    generator: torch.Tensor
    post_curve: list[float]
    pre_curve: list[float]
    env_steps: int

    def to_tensors(self) -> dict[str, torch.Tensor]:
        """A flat dict of contiguous CPU tensors (safetensors-ready)."""
        out = {_META + n: t.detach().cpu().contiguous() for n, t in self.meta.items()}
        out.update({_OUTER + n: t.detach().cpu().contiguous() for n, t in self.outer.items()})
        out["generator"] = self.generator.detach().cpu().contiguous()
        out["post_curve"] = torch.tensor(self.post_curve, dtype=torch.float64)
        out["pre_curve"] = torch.tensor(self.pre_curve, dtype=torch.float64)
        out["counters"] = torch.tensor(
            [self.iteration, self.env_steps, int(self.seed) & _SEED_MASK], dtype=torch.int64
        )
        return out

    @classmethod
    def of(cls, value: TrainingState | dict[str, torch.Tensor] | None) -> TrainingState | None:
        """``value`` as a checked state: a state as is, tensors read by :meth:`from_tensors`."""
        return value if value is None or isinstance(value, cls) else cls.from_tensors(value)

    @classmethod
    def from_tensors(cls, tensors: Any) -> TrainingState:
        """Check and read :meth:`to_tensors`'s output (which may come from a file).

        Raises:
            ValueError: one line naming the entry that is missing or wrong and what was
                expected.
        """
        if not isinstance(tensors, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in tensors.items()
        ):
            raise ValueError("training state: expected a dict of named tensors")
        for name in ("generator", "post_curve", "pre_curve", "counters"):
            if name not in tensors:
                raise ValueError(f"training state: entry {name!r} is missing")
        counters = tensors["counters"]
        if counters.dtype != torch.int64 or tuple(counters.shape) != (3,):
            raise ValueError("training state: 'counters' must be 3 int64 values")
        iteration, env_steps, seed = (int(v) for v in counters.tolist())
        if iteration < 0 or env_steps < 0:
            raise ValueError(
                f"training state: 'counters' must not be negative, got iteration={iteration}, "
                f"env_steps={env_steps}"
            )
        curves = []
        for name in ("post_curve", "pre_curve"):
            curve = tensors[name]
            if curve.dtype != torch.float64 or tuple(curve.shape) != (iteration,):
                raise ValueError(
                    f"training state: {name!r} must be {iteration} float64 values (one per "
                    f"iteration), got {curve.dtype} of shape {tuple(curve.shape)}"
                )
            curves.append(curve.tolist())
        generator = tensors["generator"]
        if generator.dtype != torch.uint8 or generator.dim() != 1:
            raise ValueError("training state: 'generator' must be a 1-d uint8 tensor")
        known = {"generator", "post_curve", "pre_curve", "counters"}
        odd = sorted(k for k in tensors if k not in known and not k.startswith((_META, _OUTER)))
        if odd:
            raise ValueError(f"training state: unexpected entry {odd[0]!r}")
        meta = {k[len(_META) :]: v for k, v in tensors.items() if k.startswith(_META)}
        outer = {k[len(_OUTER) :]: v for k, v in tensors.items() if k.startswith(_OUTER)}
        if not meta:
            raise ValueError("training state: it holds no meta-parameters ('meta.<name>')")
        return cls(iteration, seed, meta, outer, generator, curves[0], curves[1], env_steps)

    def check_for(self, meta: Params, seed: int, total: int) -> None:
        """Check that this state can continue training of ``meta``'s candidate and ``seed``
        up to ``total`` iterations.

        Raises:
            ValueError: one line naming what does not match.
        """
        if self.seed != int(seed) & _SEED_MASK:
            raise ValueError(
                f"resume_from: the training state was made with another seed (stored "
                f"{self.seed}, evaluating seed {int(seed) & _SEED_MASK})"
            )
        if self.iteration > total:
            raise ValueError(
                f"resume_from: the training state is at iteration {self.iteration}, past "
                f"meta_iterations={total}"
            )
        if set(self.meta) != set(meta):
            missing = sorted(set(meta) ^ set(self.meta))[0]
            raise ValueError(
                f"resume_from: parameter {missing!r} does not match the candidate's parameters"
            )
        for name, want in meta.items():
            got = self.meta[name]
            if got.shape != want.shape or got.dtype != want.dtype:
                raise ValueError(
                    f"resume_from: parameter {name!r} is {got.dtype} {tuple(got.shape)}, the "
                    f"candidate's is {want.dtype} {tuple(want.shape)}"
                )


def _as_dict(state: Any) -> dict[str, Any]:
    """The outer state as named parts: Adam's optimiser alone is ``{"optimizer": ...}``."""
    if state is None:
        return {}
    return state if isinstance(state, dict) else {"optimizer": state}


def capture_outer(state: Any) -> dict[str, torch.Tensor]:
    """The outer step's state as named CPU tensors: ``"<part>/<index>.<key>"`` for an
    optimiser's per-parameter entries, ``"<part>"`` for a tensor."""
    out: dict[str, torch.Tensor] = {}
    for part, value in _as_dict(state).items():
        if isinstance(value, torch.optim.Optimizer):
            for index, entry in value.state_dict()["state"].items():
                for key, tensor in entry.items():
                    tensor = torch.as_tensor(tensor)
                    out[f"{part}/{index}.{key}"] = tensor.detach().cpu().clone()
        elif isinstance(value, torch.Tensor):
            out[part] = value.detach().cpu().clone()
        else:
            raise TypeError(f"outer state part {part!r}: cannot capture a {type(value).__name__}")
    return out


def restore_outer(fresh: Any, stored: dict[str, torch.Tensor]) -> Any:
    """``fresh`` (the outer step's ``init`` output) with ``stored``'s values loaded into it.

    Raises:
        ValueError: an entry the outer step does not have, or of the wrong shape or type.
    """
    parts = _as_dict(fresh)
    used: set[str] = set()
    for part, value in parts.items():
        if isinstance(value, torch.optim.Optimizer):
            _load_optimizer(value, part, stored, used)
        elif isinstance(value, torch.Tensor):
            got = stored.get(part)
            if got is None or got.shape != value.shape or got.dtype != value.dtype:
                raise ValueError(
                    f"resume_from: outer state {part!r} must be {value.dtype} {tuple(value.shape)}"
                )
            parts[part] = got.to(value.device).clone()
            used.add(part)
    extra = sorted(set(stored) - used)
    if extra:
        raise ValueError(f"resume_from: unexpected outer state entry {extra[0]!r}")
    return parts if isinstance(fresh, dict) else parts.get("optimizer", fresh)


def _load_optimizer(
    optimizer: torch.optim.Optimizer, part: str, stored: dict[str, torch.Tensor], used: set[str]
) -> None:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    entries: dict[int, dict[str, torch.Tensor]] = {}
    for name, tensor in stored.items():
        if not name.startswith(part + "/"):
            continue
        index_text, _, key = name[len(part) + 1 :].partition(".")
        if not index_text.isdigit() or int(index_text) >= len(params) or not key:
            raise ValueError(f"resume_from: outer state entry {name!r} names no parameter")
        index = int(index_text)
        if tensor.dim() and tensor.shape != params[index].shape:
            raise ValueError(
                f"resume_from: outer state entry {name!r} is {tuple(tensor.shape)}, its "
                f"parameter is {tuple(params[index].shape)}"
            )
        if not tensor.is_floating_point():
            raise ValueError(f"resume_from: outer state entry {name!r} must be floating point")
        entries.setdefault(index, {})[key] = tensor.clone()
        used.add(name)
    if entries and (
        len(entries) != len(params) or len({frozenset(e) for e in entries.values()}) != 1
    ):
        raise ValueError(
            f"resume_from: outer state {part!r} must hold the same entries for every parameter"
        )
    state_dict = optimizer.state_dict()
    state_dict["state"] = entries
    optimizer.load_state_dict(state_dict)
