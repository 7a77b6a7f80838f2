"""Reading what a sandbox left behind without trusting it: its output through this process's own descriptors, and
its artifacts only if they are plain files of its own. Used by shared.synthetic.runner."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from shared.synthetic.sandbox import SCREENSHOT_FILE, TRACE_FILE

_READ_TAIL_BYTES = 16 * 1024
_MAX_ARTIFACT_BYTES = 256 * 1024 * 1024


def read_plain_file(path: Path, limit: int = _MAX_ARTIFACT_BYTES) -> bytes | None:
    """The content of a file the sandbox wrote, if it is a plain file of its own: never through a symlink, a
    FIFO or a device, nor a hard link (which could name a file the script could not read itself)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with open(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1 or info.st_size > limit:
            return None
        return handle.read(limit)


def copy_artifacts(workdir: Path, folder: Path) -> None:
    (folder / "sandbox").mkdir()
    for name in (TRACE_FILE, SCREENSHOT_FILE):
        content = read_plain_file(workdir / name)
        if content:
            (folder / "sandbox" / name).write_bytes(content)


def output_marks(sandbox) -> tuple[int, ...]:
    return tuple(handle.seek(0, os.SEEK_END) for handle in sandbox.outputs)


def output_since(handle, mark: int) -> str:
    """What the sandbox wrote since the job began (its tail), read through this process's own descriptor: the
    name in the workdir may have been replaced by a symlink."""
    try:
        end = handle.seek(0, os.SEEK_END)
        handle.seek(max(mark, end - _READ_TAIL_BYTES))
        return handle.read(end - handle.tell()).decode("utf-8", "replace")
    except (OSError, ValueError):
        return ""
