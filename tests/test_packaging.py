"""The wheel installs the library only, and the lock file pins what requirements.txt names.

The install test builds a wheel from a copy of the repository (so no ``build/`` or
``*.egg-info`` lands in the checkout) without build isolation and without dependencies, and
installs it into a throwaway virtual environment that sees the parent environment's
packages (jax, flax, ...): nothing is downloaded.
"""
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from experiments import requirements_lock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Not part of a source tree: the environment, VCS data, outputs and build artefacts.
_NOT_SOURCE = shutil.ignore_patterns(".venv", ".git", "runs", "build", "dist", "*.egg-info",
                                     "__pycache__", ".pytest_cache", ".ipynb_checkpoints")


def _lock_pins() -> dict[str, str]:
    """``{canonical name: specifier}`` of requirements-lock.txt."""
    reqs = requirements_lock.read_requirements(requirements_lock.LOCK)
    return {canonicalize_name(req.name): str(req.specifier) for req in reqs}


def _run(args, **kwargs):
    proc = subprocess.run(args, capture_output=True, text=True, timeout=300, **kwargs)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc


def test_lock_pins_every_requirement_exactly():
    pins = _lock_pins()
    for req in requirements_lock.read_requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} (requirements.txt) is not in requirements-lock.txt"
        spec = pins[name]
        assert spec.startswith("==") and "," not in spec, f"{req.name} is pinned as {spec!r}"
        version = spec[2:]
        assert req.specifier.contains(version, prereleases=True), (
            f"{req.name}=={version} (lock) is outside requirements.txt's {req.specifier}")


def test_lock_pins_the_installed_dependencies_of_every_requirement():
    """The lock is complete: `make setup` installs no unpinned transitive dependency."""
    closure = requirements_lock.dependency_closure(requirements_lock.read_requirements())
    missing = sorted(set(closure) - set(_lock_pins()))
    assert not missing, f"dependencies of requirements.txt missing from the lock: {missing}"


def test_install_requires_are_in_requirements_txt():
    """setup.cfg's install_requires is a subset of requirements.txt (the lock covers it)."""
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, "setup.cfg"))
    install = {canonicalize_name(Requirement(line).name)
               for line in cfg["options"]["install_requires"].split("\n") if line.strip()}
    listed = {canonicalize_name(req.name) for req in requirements_lock.read_requirements()}
    assert install <= listed, sorted(install - listed)


@pytest.mark.slow
def test_wheel_installs_jaxgen_only(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    wheels = tmp_path / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
          "--wheel-dir", str(wheels), str(source)])
    (wheel,) = wheels.glob("jaxgen-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names}
    assert "jaxgen" in top and "jaxgen/__init__.py" in names
    assert not [n for n in names if n.startswith(("experiments/", "tests/", "notebooks/"))], top
    assert not {t for t in top if not t.startswith("jaxgen")}, top
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names), names  # ships LICENSE

    # A venv made from this (itself virtual) environment's interpreter would see only the
    # base interpreter's packages, so a .pth file adds this environment's site-packages:
    # appended after the venv's own, and their .pth files (the editable jaxgen's finder,
    # which also maps experiments/) are not run.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    venv_site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]
                     ).stdout.strip()
    parent_site = [p for p in site.getsitepackages() + [sysconfig.get_path("purelib")]
                   if os.path.isdir(p)]
    with open(os.path.join(venv_site, "parent_environment.pth"), "w") as f:
        f.write("\n".join(dict.fromkeys(parent_site)) + "\n")
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
          "--no-index", str(wheel)])

    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["JAX_PLATFORMS"] = "cpu"
    imported = _run([str(python), "-c", "import jaxgen, jaxgen.flows; print(jaxgen.__file__)"],
                    cwd=outside, env=env).stdout.strip()
    assert imported.startswith(venv_site), imported  # the wheel's copy, not the checkout's
    probe = subprocess.run([str(python), "-c", "import experiments"], cwd=outside, env=env,
                           capture_output=True, text=True, timeout=120)
    assert probe.returncode != 0 and "No module named 'experiments'" in probe.stderr, (
        probe.stdout + probe.stderr)
