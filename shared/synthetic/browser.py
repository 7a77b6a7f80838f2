"""Which Chromium the sandboxes launch, and with which flags. Used by shared.synthetic.runner and the bench.

Each sandbox launches its own Chromium (shared/synthetic/sandbox.py), under its own uid and Landlock domain, and
drives it over `--remote-debugging-pipe`, a pipe only that process holds: no CDP port on loopback, which any uid
could reach, and so no way for one check's script to list or drive another check's pages.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from shared.settings import get_settings

DEBIAN_CHROMIUM = "/usr/bin/chromium"
OTHER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# No display, no background traffic. Not --no-sandbox: the sandbox adds it only where Chromium's own sandbox
# cannot work (as root, or without user namespaces), and says so.
LAUNCH_FLAGS = (
    "--headless",
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
)
# Everything through the vetting proxy (shared.synthetic.egress), loopback included (Chromium bypasses proxies
# for loopback by default), and no WebRTC over UDP, which a SOCKS proxy cannot carry.
EGRESS_FLAGS = (
    "--proxy-bypass-list=<-loopback>",
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
)


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


def chromium_folders(executable: str) -> list[str]:
    """What a sandbox must be able to read to run this Chromium (a wrapper script and the binary it starts)."""
    folders = {str(Path(executable).parent), str(Path(os.path.realpath(executable)).parent)}
    browsers = get_settings().playwright_browsers_path
    if browsers:
        folders.add(browsers)
    return sorted(folders)
