"""What keeps a synthetic script away from the function here: a uid of its own (where the function is root),
Landlock (wherever the kernel has it), both, or nothing, in which case scripts do not run unless allowed.
Used by shared.synthetic.check (the decision) and shared.synthetic.runner (each sandbox's uid).

- As root (`make run`, CI): each sandbox switches to an unprivileged uid that no account owns, from
  SYNTHETIC_SANDBOX_UID upwards, so files only the function's user may read (OpenFaaS secrets, .data) and its
  /proc entries are closed to it; its working folder is chowned to that uid.
- With Landlock (Linux >= 5.13; the network rules need 6.7): the sandbox may read only the system, the
  interpreter, Playwright and Chromium, write only its working folder, and connect only to its vetting proxy.
  This is what protects a non-root function (OpenFaaS images run as `app`), whose files share the script's uid.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import pwd
import random
import tempfile
from dataclasses import dataclass
from functools import cache

from shared.settings import get_settings
from shared.synthetic import confine

_UID_RANGE = 1000
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Isolation:
    switch_uid: bool  # the function is root: each sandbox gets a uid of its own
    landlock_abi: int  # 0: none

    @property
    def available(self) -> bool:
        return self.switch_uid or self.landlock_abi >= 1

    @property
    def landlock_network(self) -> bool:
        return self.landlock_abi >= 4

    def describe(self) -> str:
        parts = ["a separate unprivileged uid"] if self.switch_uid else []
        if self.landlock_abi:
            parts.append(f"Landlock ABI {self.landlock_abi}")
        return " and ".join(parts) or "none"

    def why_unavailable(self) -> str:
        return (
            "no isolation from the function is available for synthetic scripts: the function does not run as "
            "root (so cannot give a script another uid) and this kernel has no Landlock (Linux 5.13+, enabled "
            "in lsm=); set SYNTHETIC_ALLOW_UNISOLATED=true to run them anyway"
        )


@cache
def _probe() -> Isolation:
    isolation = Isolation(switch_uid=os.geteuid() == 0, landlock_abi=confine.landlock_abi())
    if isolation.available and not isolation.landlock_network:
        log.warning(
            "synthetic scripts are isolated by %s, without Landlock network rules (Linux 6.7+): a script "
            "could open TCP connections around the vetting proxy",
            isolation.describe(),
        )
    return isolation


def available() -> Isolation:
    """What this process can give a sandbox (probed once). Tests replace it to declare isolation missing."""
    return _probe()


def unisolated_allowed() -> bool:
    return get_settings().synthetic_allow_unisolated


def reserve_sandbox_uid() -> tuple[int, int]:
    """A uid no account owns and no other live sandbox holds (in any process of this host, by an flock on a
    file under the temp folder), so sandboxes cannot reach each other either. Returns (uid, the lock's fd);
    closing the fd frees the uid."""
    first = get_settings().synthetic_sandbox_uid
    candidates = list(range(first, first + _UID_RANGE))
    random.shuffle(candidates)
    for uid in candidates:
        try:
            pwd.getpwuid(uid)
            continue  # an account's uid: its files are not the sandbox's to read
        except KeyError:
            pass
        lock = os.open(
            os.path.join(tempfile.gettempdir(), f"sc-sandbox-uid-{uid}.lock"),
            os.O_CREAT | os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW,
            0o600,
        )
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return uid, lock
        except OSError:
            os.close(lock)
    raise RuntimeError(f"no free sandbox uid in {first}..{first + _UID_RANGE - 1} (SYNTHETIC_SANDBOX_UID)")


def release_sandbox_uid(lock: int | None) -> None:
    if lock is not None:
        with contextlib.suppress(OSError):
            os.close(lock)
