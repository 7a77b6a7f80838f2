"""How a sandbox process shuts itself off from the function: another uid, Landlock, and a probe for both.

Standard library only, and it imports nothing of the project: shared.synthetic.sandbox loads this file by its
path inside the sandbox (`python -I`), and the function imports it to learn what the kernel offers.

Landlock (Linux >= 5.13, unprivileged) is reached through its three syscalls with ctypes. The ruleset allows
reading the system and the interpreter's own files, everything in the sandbox's working directory, and, from
ABI 4 on, TCP connections to one port only (the function's vetting proxy, shared.synthetic.egress) and no TCP
bind at all. From ABI 6 on it also scopes signals and abstract unix sockets to the sandbox's own processes.
Any Landlock domain already forbids ptrace, and so /proc/<pid>/environ and /mem, of processes outside it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from pathlib import Path

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446  # the same on x86_64 and arm64
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
_PR_SET_NO_NEW_PRIVS, _PR_SET_DUMPABLE = 38, 4
_CLONE_NEWUSER = 0x10000000

FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_ABI1_ALL = (1 << 13) - 1  # execute .. make_sym
_FS_REFER, _FS_TRUNCATE = 1 << 13, 1 << 14
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX_SOCKET, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_FILE_ONLY_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | _FS_TRUNCATE

READ_ONLY = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
# Read-only for the sandbox: the system, its configuration and libraries; /proc and /sys for Chromium and Python
# (other processes' /proc entries stay out of reach: Landlock forbids ptrace-style access across its domains).
SYSTEM_READ_ONLY = ("/usr", "/lib", "/lib32", "/lib64", "/bin", "/sbin", "/etc", "/opt", "/sys")
DEVICES_READ_WRITE = ("/dev/null", "/dev/zero", "/dev/random", "/dev/urandom")


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class _NetPort(ctypes.Structure):
    _fields_ = [("allowed", ctypes.c_uint64), ("port", ctypes.c_uint64)]


class ConfinementError(OSError):
    """The sandbox could not shut itself off as asked; it must not run the script."""


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _syscall(number: int, *args) -> int:
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(ctypes.c_long(number), *args)
    if result < 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))
    return result


def landlock_abi() -> int:
    """The kernel's Landlock ABI version, 0 when Landlock is missing or disabled (e.g. not in `lsm=`)."""
    try:
        return _syscall(
            _SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION)
        )
    except (OSError, AttributeError):
        return 0


def user_namespaces_available() -> str | None:
    """None if this process may create a user namespace (what Chromium's own sandbox needs), else why not."""
    pid = os.fork()
    if pid == 0:  # the child tries, so this process stays in its namespace either way
        code = 1
        try:
            code = 0 if _libc().unshare(_CLONE_NEWUSER) == 0 else min(ctypes.get_errno(), 255) or 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    errno = os.waitstatus_to_exitcode(status)
    return None if errno == 0 else f"cannot create a user namespace ({os.strerror(errno)})"


def drop_privileges(uid: int, gid: int) -> None:
    """Root to an unprivileged uid, for good: no supplementary groups, real, effective and saved ids all changed."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid or os.getegid() != gid:
        raise ConfinementError(f"could not switch to uid {uid}")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise ConfinementError(f"uid {uid} could switch back to root")


def keep_import_paths_reachable() -> list[int]:
    """Before dropping root: opens each sys.path folder (O_PATH) and reaches it by /proc/self/fd afterwards.

    The interpreter may live where the sandbox's uid cannot look (pyenv under /root, mode 0700); a folder opened
    while root stays reachable through its descriptor, and only that folder, not its parents. Packages already
    imported (encodings, asyncio, ...) find their submodules by their own __path__, so those move too.
    Returns the fds."""
    moved: dict[str, str] = {}
    for index, entry in enumerate(list(sys.path)):
        if entry and os.path.isdir(entry):
            fd = os.open(entry, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            moved[entry.rstrip("/")] = sys.path[index] = f"/proc/self/fd/{fd}"

    def reachable(folder: str) -> str:
        for entry, replacement in moved.items():
            if folder == entry or folder.startswith(entry + "/"):
                return replacement + folder[len(entry) :]
        return folder

    for module in list(sys.modules.values()):
        search = getattr(module, "__path__", None)
        if isinstance(search, list):
            search[:] = [reachable(folder) for folder in search]
    sys.path_importer_cache.clear()
    return [int(path.rsplit("/", 1)[1]) for path in moved.values()]


def shed_capabilities() -> None:
    """For root without a uid of its own: a new user namespace (mapping our uid to itself) leaves this process no
    capability outside it, so CAP_SYS_PTRACE and CAP_DAC_OVERRIDE no longer open the function's /proc entries or
    files. A non-root process has none to shed, and may lack user namespaces: it skips this."""
    if os.geteuid() != 0:
        return
    uid, gid = os.geteuid(), os.getegid()
    if _libc().unshare(_CLONE_NEWUSER) != 0:
        raise ConfinementError(f"root cannot shed its capabilities: {os.strerror(ctypes.get_errno())}")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")


def make_dumpable() -> None:
    """A uid change leaves a process non-dumpable, which hides /proc/self/fd from itself; this undoes that."""
    _libc().prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)


def _rule_fd(path: str | int) -> tuple[int, bool]:
    if isinstance(path, int):
        return path, False
    return os.open(path, os.O_PATH | os.O_CLOEXEC), True


def _add_path_rule(ruleset: int, path: str | int, access: int, handled: int) -> None:
    try:
        fd, owned = _rule_fd(path)
    except OSError:
        return  # a folder this system lacks (/lib32, /opt) needs no rule
    try:
        if not os.path.isdir(f"/proc/self/fd/{fd}"):
            access &= _FILE_ONLY_RIGHTS
        rule = _PathBeneath(access & handled, fd)
        _syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0))
    finally:
        if owned:
            os.close(fd)


def _handled_rights(abi: int) -> tuple[int, int, int, int]:
    fs = _FS_ABI1_ALL | (_FS_REFER if abi >= 2 else 0) | (_FS_TRUNCATE if abi >= 3 else 0)
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if abi >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX_SOCKET | _SCOPE_SIGNAL if abi >= 6 else 0
    size = ctypes.sizeof(ctypes.c_uint64) * (3 if abi >= 6 else 2 if abi >= 4 else 1)
    return fs, net, scoped, size


def landlock_confine(
    workdir: Path, read_only: list[str | int], *, connect_port: int | None, require_network: bool = True
) -> int:
    """Restricts this process and all it starts from now on; returns the ABI used. Raises ConfinementError."""
    abi = landlock_abi()
    if abi < 1:
        raise ConfinementError("Landlock is not available in this kernel")
    if require_network and abi < 4:
        raise ConfinementError(f"Landlock ABI {abi} cannot restrict TCP connections (needs 4, Linux 6.7)")
    fs, net, scoped, size = _handled_rights(abi)
    attr = _RulesetAttr(fs, net, scoped)
    try:
        ruleset = _syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    except OSError as error:
        raise ConfinementError(f"Landlock ruleset refused: {error.strerror}") from None
    try:
        for path in (*SYSTEM_READ_ONLY, *read_only):
            _add_path_rule(ruleset, path, READ_ONLY, fs)
        # Chromium writes its own /proc/self entries (oom_score_adj, uid_map for its sandbox).
        _add_path_rule(ruleset, "/proc", READ_ONLY | FS_WRITE_FILE, fs)
        for device in DEVICES_READ_WRITE:
            _add_path_rule(ruleset, device, FS_READ_FILE | FS_WRITE_FILE, fs)
        _add_path_rule(ruleset, str(workdir), fs, fs)
        if net and connect_port:
            port_rule = _NetPort(_NET_CONNECT_TCP, connect_port)
            _syscall(_SYS_ADD_RULE, ruleset, _RULE_NET_PORT, ctypes.byref(port_rule), ctypes.c_uint32(0))
        if _libc().prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise ConfinementError("prctl(PR_SET_NO_NEW_PRIVS) failed")
        _syscall(_SYS_RESTRICT_SELF, ruleset, ctypes.c_uint32(0))
    except OSError as error:
        raise ConfinementError(f"Landlock could not be applied: {error.strerror or error}") from None
    finally:
        os.close(ruleset)
    return abi
