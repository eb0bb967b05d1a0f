"""Article files uploaded from the chat page, copied into the index's own uploads folder.

A browser names the file, so the name is untrusted: it is reduced to safe
characters, must keep a supported extension, and the copy must land inside the
uploads folder. A name already taken by different content gets a content-hash
suffix, so an upload never silently replaces the articles of an earlier one.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from newsdesk.errors import NewsdeskError

SUFFIXES = (".jsonl", ".json", ".csv", ".tsv", ".txt", ".md", ".markdown", ".html", ".htm")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 100


class UploadRejected(NewsdeskError, ValueError):
    """An upload we will not store; the message names the file and the reason."""


@dataclass(frozen=True)
class Upload:
    name: str  # as the browser sent it
    path: Path  # the temporary file the web server wrote


def safe_name(name: str) -> str:
    """A plain file name from whatever the browser sent (no folders, no dot-files)."""
    base = re.split(r"[\\/]", name)[-1]
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = _UNSAFE.sub("_", stem).strip("._-")[:_MAX_NAME].rstrip("._-") or "upload"
    suffix = _UNSAFE.sub("", suffix).lower()
    return f"{stem}.{suffix}" if suffix else stem


def store_uploads(uploads: Sequence[Upload], folder: Path, max_bytes: int) -> list[Path]:
    """Copy the uploads into `folder`; all or nothing, so a refused file stores none."""
    checked = [_check(u, max_bytes) for u in uploads]
    folder.mkdir(parents=True, exist_ok=True)
    root = folder.resolve()
    stored: list[Path] = []
    created: list[Path] = []
    for upload, name in checked:
        target = _free_target(root, name, upload.path)
        if not target.resolve().is_relative_to(root):  # defence in depth: safe_name
            raise UploadRejected(f"{upload.name}: refusing to write outside {root}")
        if not target.exists():
            partial = target.with_name(f".{target.name}.part")
            try:
                shutil.copyfile(upload.path, partial)
                partial.replace(target)
            except OSError:
                partial.unlink(missing_ok=True)
                for done in created:  # all or nothing; files from earlier uploads stay
                    done.unlink(missing_ok=True)
                raise
            created.append(target)
        stored.append(target)
    return stored


def _check(upload: Upload, max_bytes: int) -> tuple[Upload, str]:
    name = safe_name(upload.name)
    if not name.lower().endswith(SUFFIXES):
        raise UploadRejected(
            f"{upload.name}: not an article file; use one of {', '.join(SUFFIXES)}"
        )
    size = upload.path.stat().st_size
    if size > max_bytes:
        raise UploadRejected(
            f"{upload.name}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:g} MB limit "
            "(chat.max_upload_mb); index large files with `newsdesk index update`"
        )
    if size == 0:
        raise UploadRejected(f"{upload.name}: the file is empty")
    return upload, name


def _free_target(root: Path, name: str, source: Path) -> Path:
    """`name`, unless it holds other content: then `stem-<hash>.suffix`."""
    target = root / name
    if not target.exists() or _digest(target) == _digest(source):
        return target
    stem, _, suffix = name.rpartition(".")
    return root / f"{stem}-{_digest(source)[:10]}.{suffix}"


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()
