"""One headless Chromium per warm function process, reachable over CDP on loopback by each check's sandbox.
Used by the check-synthetic function.

Why CDP: the sandbox is a separate process (so the function's credentials stay out of its reach), yet launching
Chromium for every check costs most of a second. Chromium listens on 127.0.0.1 with a random debugging port; each
sandbox connects with Playwright's `connect_over_cdp` and opens its own fresh context, so cookies and storage
never cross checks. If the browser dies (or a script closes it) the next check launches a new one.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from shared.settings import get_settings

DEBIAN_CHROMIUM = "/usr/bin/chromium"
OTHER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Flags that run as root, with no display and no network beyond what a script asks for.
LAUNCH_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--metrics-recording-only",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)
_LAUNCH_TIMEOUT_SECONDS = 30.0
_PR_SET_PDEATHSIG = 1


class ChromiumNotFound(RuntimeError):
    pass


def playwright_download_candidates() -> list[Path]:
    """Where `playwright install chromium` puts its build (PLAYWRIGHT_BROWSERS_PATH or ~/.cache/ms-playwright)."""
    root = Path(get_settings().playwright_browsers_path or Path.home() / ".cache" / "ms-playwright")
    return sorted(root.glob("chromium-*/chrome-linux*/chrome"), reverse=True)


def find_chromium(configured: str | None) -> str:
    if configured:
        if os.path.isfile(configured) and os.access(configured, os.X_OK):
            return configured
        raise ChromiumNotFound(
            f"PLAYWRIGHT_CHROMIUM_PATH={configured} is not an executable file; "
            "fix the path, or unset it to use Debian's /usr/bin/chromium"
        )
    if os.access(DEBIAN_CHROMIUM, os.X_OK):
        return DEBIAN_CHROMIUM
    for name in OTHER_NAMES:
        if found := shutil.which(name):
            return found
    for candidate in playwright_download_candidates():
        if os.access(candidate, os.X_OK):
            return str(candidate)
    raise ChromiumNotFound(
        "no Chromium found for synthetic tests: install it with `apt-get install chromium` "
        "(or `scripts/install-chromium.sh`), or set PLAYWRIGHT_CHROMIUM_PATH to a Chromium binary"
    )


def _kill_with_parent() -> None:
    """Runs in the forked child before exec: Chromium must not outlive a killed function process."""
    ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def read_devtools_port(user_data_dir: Path) -> str | None:
    """Chromium writes the chosen port and browser path to DevToolsActivePort once it listens."""
    try:
        port, path = (user_data_dir / "DevToolsActivePort").read_text().split("\n")[:2]
    except (OSError, ValueError):
        return None
    return f"ws://127.0.0.1:{port.strip()}{path.strip()}" if port.strip() and path.strip() else None


class WarmBrowser:
    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.user_data_dir: Path | None = None
        self.endpoint: str | None = None
        self.launches = 0
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None

    def _launch_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def ws_endpoint(self) -> str:
        """The running browser's CDP address, launching (or relaunching) it first if needed."""
        async with self._launch_lock():
            if self.alive() and self.endpoint and await self._answers():
                return self.endpoint
            self.close()
            await asyncio.to_thread(self._launch)
            return self.endpoint

    async def _answers(self) -> bool:
        port = self.endpoint.split(":")[2].split("/")[0]
        try:
            async with httpx.AsyncClient(timeout=2.0, trust_env=False) as client:
                response = await client.get(f"http://127.0.0.1:{port}/json/version")
            return response.status_code == 200
        except httpx.HTTPError:
            return False

    def _launch(self) -> None:
        executable = find_chromium(get_settings().playwright_chromium_path)
        self.user_data_dir = Path(tempfile.mkdtemp(prefix="sc-chromium-"))
        log = open(self.user_data_dir.parent / f"{self.user_data_dir.name}.log", "wb")
        self.process = subprocess.Popen(
            [executable, *LAUNCH_FLAGS, f"--user-data-dir={self.user_data_dir}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # its renderers and helpers form one group we can kill at once
            preexec_fn=_kill_with_parent,
            # Nothing of the function's environment: a script can open file:///proc/<browser>/environ.
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(self.user_data_dir),
                "LANG": "C.UTF-8",
            },
        )
        log.close()
        deadline = time.monotonic() + _LAUNCH_TIMEOUT_SECONDS
        while (endpoint := read_devtools_port(self.user_data_dir)) is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise ChromiumNotFound(
                    f"Chromium at {executable} did not start (exit code {self.process.returncode if self.process else '?'}); "
                    f"see {log.name}"
                )
            time.sleep(0.02)
        self.endpoint = endpoint
        self.launches += 1

    def close(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                self.process.wait(timeout=5)
        if self.user_data_dir is not None:
            shutil.rmtree(self.user_data_dir, ignore_errors=True)
            Path(f"{self.user_data_dir}.log").unlink(missing_ok=True)
        self.process = self.user_data_dir = self.endpoint = None


_warm_browser = WarmBrowser()
atexit.register(_warm_browser.close)


def warm_browser() -> WarmBrowser:
    return _warm_browser
