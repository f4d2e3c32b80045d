"""What a result needs to be reproduced: library versions, devices, host and git commit."""
from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import socket
import subprocess
import sys

import jax

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "orbax-checkpoint", "ml_collections")
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_info() -> dict:
    """``{"git_commit": sha or "unknown", "git_dirty": bool or None}`` of this checkout.

    Outside a git repository (or without git) the commit is ``"unknown"`` and dirty ``None``.
    """
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"git_commit": "unknown", "git_dirty": None}
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {"git_commit": commit, "git_dirty": None if status is None else bool(status)}


def environment_info() -> dict:
    """A JSON-able description of the software and hardware this process runs on."""
    devices = jax.devices()
    return {
        "versions": {name: _version(name) for name in _PACKAGES},
        "python": sys.version.split()[0],
        "platform": jax.default_backend(),
        "device_kind": devices[0].device_kind,
        "device_count": len(devices),
        "process_count": jax.process_count(),
        "os": platform.platform(),
        "hostname": socket.gethostname(),
        **git_info(),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def environment_line(env: dict) -> str:
    """One human-readable line, e.g. for a report."""
    v = env["versions"]
    dirty = "+dirty" if env.get("git_dirty") else ""
    return (f"jax {v['jax']} / jaxlib {v['jaxlib']} / flax {v['flax']} / optax {v['optax']}, "
            f"python {env['python']}, {env['device_count']} x {env['device_kind']} "
            f"({env['platform']}), host {env['hostname']}, "
            f"commit {env['git_commit'][:12]}{dirty}, {env['timestamp']}")
