"""``plot``: pictures of a stored search (progress, size vs score with its Pareto front, best)."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from autometa.errors import ExportError
from autometa.experiment import check_study
from autometa.experiment._best import Best, best_of
from autometa.experiment.storage import SQLiteStorage
from autometa.export._table import param_count, write_trials_csv
from autometa.graph import draw, to_dot

__all__ = ["open_study", "pareto_front", "plot"]

log = logging.getLogger(__name__)

_DONE, _FAILED, _PRUNED = "DONE", "FAILED", "PRUNED"


def open_study(path: str | Path) -> Any:
    """Open an existing study database (never creates one).

    The study's recorded names must be registered (nothing it names is imported).

    Raises:
        ExportError: the file does not exist or holds no study.
        StorageError: the study is malformed or names something no registry holds.
    """
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such study database")
    storage = SQLiteStorage(path, read_only=True)
    try:
        study = storage.get_study()
        if study is None:
            raise ExportError(f"{path}: the database holds no study")
        check_study(study, str(path))
    except BaseException:
        storage.close()
        raise
    return storage


def pareto_front(points: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
    """The points ``(params, score, number)`` no other point beats on both axes.

    A point is on the front when every point with at most as many parameters scores lower
    (ties go to the earlier trial). Returned by increasing parameter count.
    """
    front: list[tuple[float, float, int]] = []
    best = -math.inf
    for params, score, number in sorted(points, key=lambda p: (p[0], -p[1], p[2])):
        if score > best:
            front.append((params, score, number))
            best = score
    return front


def _rows(trials: list[Any]) -> list[dict[str, Any]]:
    return [
        {
            "number": t.number,
            "state": t.state.name,
            "score": t.score if t.has_score else None,
            "params": param_count(t),
        }
        for t in trials
    ]


def plot(storage: Any, out_dir: str | Path) -> list[Path]:
    """Draw a stored search: progress, score vs size with the Pareto front, the best graph.

    Writes into ``out_dir``:

    - ``progress.png``: every scored trial's score by trial number, the best-so-far curve,
      failed trials as red crosses along the bottom and pruned ones as hollow circles;
    - ``pareto.png``: score vs parameter count (log axis) with the Pareto front (highest
      score for fewest parameters) drawn as a line and labelled by trial number;
    - ``best_graph.png`` (and ``best_graph.dot``): the best trial's graph;
    - ``trials.csv``: every trial, one row each (always; see
      :func:`autometa.export.write_trials_csv` for the columns).

    Without matplotlib the images are skipped with a logged note (CSV and DOT still written).

    Args:
        storage: the study's storage, or the path of its SQLite file.
        out_dir: the folder to write to (created when missing).

    Returns:
        The files written.

    Raises:
        ExportError: the database does not exist or holds no study.
    """
    store = open_study(storage) if isinstance(storage, str | Path) else storage
    study = store.get_study()
    trials = store.get_all_trials()
    info = best_of(store)
    best = None if info is None else info.trial
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = _rows(trials)
    written = [out / "trials.csv"]
    write_trials_csv(trials, written[0])
    if best is not None:
        (out / "best_graph.dot").write_text(to_dot(best.graph))
        written.append(out / "best_graph.dot")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning(
            "plots skipped: matplotlib is not installed (pip install 'autometa-nas[plot]')"
        )
        return written
    title = _title(study, rows)
    written.append(_progress(plt, rows, out / "progress.png", title, info))
    written.append(_pareto(plt, rows, out / "pareto.png", title))
    if best is not None:
        caption = info.describe()
        params = param_count(best)
        if params is not None:
            caption += f", {int(params):,} params"
        written.append(draw(best.graph, out / "best_graph.png", title=caption))
    return written


def _title(study: Any, rows: list[dict[str, Any]]) -> str:
    counts = {s: sum(r["state"] == s for r in rows) for s in (_DONE, _FAILED, _PRUNED)}
    name = f"{study.space_name} / {study.strategy}" if study is not None else "study"
    parts = [f"{len(rows)} trials", f"{counts[_DONE]} done"]
    parts += [f"{counts[s]} {s.lower()}" for s in (_FAILED, _PRUNED) if counts[s]]
    return f"{name}: " + ", ".join(parts)


def _progress(
    plt: Any, rows: list[dict[str, Any]], path: Path, title: str, info: Best | None = None
) -> Path:
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    done = [r for r in rows if r["state"] == _DONE and r["score"] is not None]
    pruned = [r for r in rows if r["state"] == _PRUNED and r["score"] is not None]
    failed = [r for r in rows if r["state"] == _FAILED]
    if done:
        ax.scatter(
            [r["number"] for r in done],
            [r["score"] for r in done],
            s=18,
            color="#7f9cbf",
            alpha=0.8,
            label="trial score",
            zorder=2,
        )
        xs, ys, best = [], [], -math.inf
        for r in done:
            best = max(best, r["score"])
            xs.append(r["number"])
            ys.append(best)
        last = max(r["number"] for r in rows)
        ax.step(
            xs + [last],
            ys + [ys[-1]],
            where="post",
            color="#1f4e8c",
            linewidth=2,
            label=f"best search score so far ({ys[-1]:.4g})",
            zorder=3,
        )
        top = next((r for r in done if info is not None and r["number"] == info.number), None)
        if top is not None:  # the study's best by the one rule, which may not be the top dot
            ax.scatter([top["number"]], [top["score"]], s=90, marker="*", color="#d4a017",
                       label=f"#{top['number']}: {info.label} {info.value:.4g}",  # type: ignore[union-attr]
                       zorder=5)  # fmt: skip
            ax.annotate(
                f"#{top['number']}",
                (top["number"], top["score"]),
                textcoords="offset points",
                xytext=(4, 6),
                fontsize=8,
            )
    if pruned:
        ax.scatter(
            [r["number"] for r in pruned],
            [r["score"] for r in pruned],
            s=22,
            facecolors="none",
            edgecolors="#999999",
            label="pruned",
            zorder=2,
        )
    if failed:
        scores = [r["score"] for r in done + pruned] or [0.0]
        low, high = min(scores), max(scores)
        span = (high - low) or 1.0
        band = (low - 0.16 * span, low - 0.06 * span)  # a strip under every score
        ax.axhspan(*band, color="#c0392b", alpha=0.08, linewidth=0, zorder=1)
        ax.scatter(
            [r["number"] for r in failed],
            [sum(band) / 2] * len(failed),
            marker="x",
            s=30,
            color="#c0392b",
            label=f"failed ({len(failed)}, no score)",
            zorder=4,
        )
        ax.set_ylim(band[0] - 0.02 * span, high + 0.1 * span)
    if not done and not pruned:
        ax.text(0.5, 0.5, "no scored trials yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("trial number")
    ax.set_ylabel("score (higher is better)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if done or pruned or failed:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _pareto(plt: Any, rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    fig, ax = plt.subplots(figsize=(9.5, 4.5))
    points = [
        (r["params"], r["score"], r["number"])
        for r in rows
        if r["state"] == _DONE and r["score"] is not None and r["params"]
    ]
    if points:
        front = pareto_front(points)
        on_front = {p[2] for p in front}
        rest = [p for p in points if p[2] not in on_front]
        ax.scatter(
            [p[0] for p in rest],
            [p[1] for p in rest],
            s=18,
            color="#b8c4d6",
            label="dominated trials",
            zorder=2,
        )
        xs = [p[0] for p in front] + [max(p[0] for p in points)]
        ys = [p[1] for p in front] + [front[-1][1]]
        ax.step(xs, ys, where="post", color="#d35400", linewidth=1.5, zorder=3)
        ax.scatter(
            [p[0] for p in front],
            [p[1] for p in front],
            s=40,
            color="#d35400",
            edgecolors="black",
            linewidths=0.6,
            zorder=4,
            label=f"Pareto front ({len(front)})",
        )
        for params, score, number in front:
            ax.annotate(
                f"#{number}",
                (params, score),
                textcoords="offset points",
                xytext=(4, 5),
                fontsize=8,
            )
        ax.set_xscale("log")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    else:
        ax.text(
            0.5,
            0.5,
            "no scored trials with a parameter count",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
    ax.set_xlabel("parameters (fewer is better)")
    ax.set_ylabel("score (higher is better)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
