"""Where an export goes: which folders may receive it, and putting it in place safely.

An export is built in a hidden folder next to its destination and renamed into place, so a
failed export leaves nothing half-written. Replacing (``overwrite=True``) deletes only what an
earlier export wrote: the destination must be empty or hold exactly an earlier autometa export
(``model.json`` with its manifest, and the files it lists, unchanged). The current folder, its
parents and the folders holding the study database are never replaced.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from autometa.errors import ExportError
from autometa.export import _files as F

__all__ = ["check_out_dir", "move_into_place", "study_files", "work_folder"]

log = logging.getLogger(__name__)

_ONLY_EXPORTS = (
    "overwrite replaces only an earlier autometa export, so move this folder away or choose "
    "another one"
)


def study_files(*holders: Any) -> list[Path]:
    """The study database files named by storages, paths or records (``.storage``/``.path``)."""
    found: list[Path] = []
    for holder in holders:
        for value in (holder, getattr(holder, "storage", None)):
            if isinstance(value, str | os.PathLike) and str(value) != ":memory:":
                found.append(Path(value))
            elif isinstance(getattr(value, "path", None), str | os.PathLike):
                found.append(Path(value.path))
    return found


def check_out_dir(out_dir: Path, *, overwrite: bool, keep: Iterable[Path] = ()) -> list[str]:
    """Check that ``out_dir`` may receive an export; returns the files an export there replaces.

    Args:
        out_dir: the destination as the user gave it (used in messages).
        overwrite: whether an earlier export in ``out_dir`` may be replaced.
        keep: files that must survive (the study database): their folders are never replaced.

    Returns:
        The names of the earlier export's files (``model.json`` included), empty when
        ``out_dir`` does not exist or is empty.

    Raises:
        ExportError: one line saying why the folder cannot receive the export.
    """
    if out_dir.is_symlink():
        raise ExportError(f"{out_dir}: is a symbolic link; give the folder itself")
    if not out_dir.exists():
        return []
    if not out_dir.is_dir():
        raise ExportError(f"{out_dir}: exists and is not a folder")
    target = out_dir.resolve()
    cwd = Path.cwd().resolve()
    if target == cwd:
        raise ExportError(
            f"{out_dir}: is the current folder; export to a new folder (e.g. {out_dir / 'export'})"
        )
    if target in cwd.parents:
        raise ExportError(f"{out_dir}: is a parent of the current folder; export to a new folder")
    entries = sorted(p.name for p in target.iterdir())
    if not entries:
        return []
    if not overwrite:
        raise ExportError(
            f"{out_dir}: folder is not empty (pass overwrite=True, or --overwrite, to replace it)"
        )
    for path in keep:
        held = path.resolve()
        if target == held.parent or target in held.parents:
            raise ExportError(
                f"{out_dir}: holds the study database {path}; export to another folder"
            )
    if not (target / F.MODEL_JSON).is_file():
        raise ExportError(
            f"{out_dir}: is not an autometa export (no {F.MODEL_JSON}); " + _ONLY_EXPORTS
        )
    try:
        model = F.read_model_json(target)
    except ExportError as exc:
        raise ExportError(
            f"{out_dir}: is not an autometa export ({F.MODEL_JSON} does not check: "
            f"{str(exc).removeprefix(f'{target / F.MODEL_JSON}: ')}); " + _ONLY_EXPORTS
        ) from exc
    listed = {F.MODEL_JSON, *model["files"]}
    extra = [name for name in entries if name not in listed]
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise ExportError(
            f"{out_dir}: holds files the earlier export did not write ({shown}); " + _ONLY_EXPORTS
        )
    for name in sorted(model["files"]):
        path = target / name
        if Path(name).name != name or not path.is_file() or path.is_symlink():
            raise ExportError(
                f"{out_dir}: {name!r} listed in {F.MODEL_JSON} is not a file of the folder; "
                + _ONLY_EXPORTS
            )
        if F.file_sha256(path) != model["files"][name]:
            raise ExportError(
                f"{out_dir}: {name} was changed after the earlier export; " + _ONLY_EXPORTS
            )
    return sorted(listed)


def _fresh_sibling(target: Path, label: str) -> Path:
    """A new hidden name next to ``target`` that nothing uses yet (not created)."""
    while True:
        path = target.parent / f".{target.name}.{label}{secrets.token_hex(4)}"
        if not os.path.lexists(path):
            return path


def work_folder(target: Path) -> Path:
    """Create the hidden folder next to ``target`` that an export is built in.

    Made with ``mkdir`` (mode 0o777 less the user's umask) rather than ``tempfile.mkdtemp``
    (always 0o700), because the folder itself becomes the export.
    """
    while True:
        path = _fresh_sibling(target, "")
        try:
            path.mkdir()
        except FileExistsError:  # pragma: no cover - another process took the name just now
            continue
        return path


def move_into_place(work: Path, out_dir: Path, replaced: list[str]) -> None:
    """Rename the finished ``work`` folder to ``out_dir``, replacing what was checked.

    An empty destination is removed with ``rmdir`` (which fails on anything else); an earlier
    export is first renamed aside, so the destination is never missing for long, and then only
    the files it listed are deleted.
    """
    if not out_dir.exists():
        work.rename(out_dir)
        return
    if not replaced:
        out_dir.rmdir()
        work.rename(out_dir)
        return
    aside = _fresh_sibling(out_dir, "old.")
    out_dir.rename(aside)
    try:
        work.rename(out_dir)
    except BaseException:
        aside.rename(out_dir)
        raise
    for name in replaced:
        (aside / name).unlink(missing_ok=True)
    try:
        aside.rmdir()
    except OSError:
        log.warning("%s: left in place, it holds files the earlier export did not write", aside)
