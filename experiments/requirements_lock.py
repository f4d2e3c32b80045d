"""Writes ``requirements-lock.txt``: the installed versions of requirements.txt's packages
and of everything they depend on, so `make setup` reproduces the environment the test suite
passed in.

    .venv/bin/python -m experiments.requirements_lock           # rewrite requirements-lock.txt
    .venv/bin/python -m experiments.requirements_lock --check   # exit 1 if it differs

The pins are ``pip freeze --all --exclude-editable`` (``--all``: setuptools and wheel are
requirements too, for building without isolation) kept to the dependency closure of
requirements.txt: each requirement, then, recursively, every requirement its installed
distribution declares whose environment marker holds here (extras included when asked for).
Packages installed for other reasons (benchmark comparisons, editors) stay out of the lock.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIREMENTS = os.path.join(REPO, "requirements.txt")
LOCK = os.path.join(REPO, "requirements-lock.txt")

HEADER = """\
# Pinned, tested environment: the packages of requirements.txt and everything they depend on,
# as installed when the test suite passed (CPU build of JAX). `make setup` installs this file;
# requirements.txt and setup.cfg keep the version ranges.
# Regenerate: .venv/bin/python -m experiments.requirements_lock
"""


def read_requirements(path: str = REQUIREMENTS) -> list[Requirement]:
    """The requirements of a requirements file (comments and blank lines skipped)."""
    with open(path) as f:
        lines = [line.split("#", 1)[0].strip() for line in f]
    return [Requirement(line) for line in lines if line]


def dependency_closure(requirements: list[Requirement]) -> dict[str, str]:
    """``{canonical name: installed version}`` of ``requirements`` and all their dependencies.

    Raises:
      importlib.metadata.PackageNotFoundError: a needed package is not installed (its name in
        the message).
    """
    found: dict[str, str] = {}
    extras_seen: dict[str, set[str]] = {}
    stack = list(requirements)
    while stack:
        req = stack.pop()
        name = canonicalize_name(req.name)
        extras = set(req.extras)
        if name in extras_seen and extras <= extras_seen[name]:
            continue
        extras_seen.setdefault(name, set()).update(extras)
        dist = importlib.metadata.distribution(req.name)
        found[name] = dist.version
        for line in dist.requires or ():
            dep = Requirement(line)
            if dep.marker is None or any(dep.marker.evaluate({"extra": extra})
                                         for extra in extras | {""}):
                stack.append(dep)
    return found


def _pinned_name(line: str) -> str:
    """The canonical package name of a ``name==version`` (or ``name @ url``) line."""
    return canonicalize_name(line.split("==")[0].split(" @ ")[0].strip())


def lock_text() -> str:
    """The lock file's text for the running environment."""
    wanted = dependency_closure(read_requirements())
    freeze = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--all", "--exclude-editable"],
        check=True, capture_output=True, text=True).stdout.splitlines()
    pins = sorted((line for line in freeze if _pinned_name(line) in wanted), key=_pinned_name)
    missing = set(wanted) - {_pinned_name(line) for line in pins}
    if missing:
        raise RuntimeError(f"pip freeze lists no pin for {sorted(missing)}")
    return HEADER + "\n".join(pins) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if requirements-lock.txt differs from this environment")
    args = parser.parse_args(argv)
    text = lock_text()
    if args.check:
        with open(LOCK) as f:
            if f.read() != text:
                print("requirements-lock.txt differs from the installed environment; "
                      "regenerate: python -m experiments.requirements_lock", file=sys.stderr)
                return 1
        return 0
    with open(LOCK, "w") as f:
        f.write(text)
    print(f"wrote {LOCK} ({text.count('==')} pins)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
