"""Test-session setup: one XLA compilation cache shared by every process of the session.

Most of the suite's time is XLA compiling tiny programs, and many tests compile the same
program again in another process: the xdist workers, and the ``experiments.main``
subprocesses and notebook kernels that the CLI tests start (an interrupted run, its resume
and its uninterrupted reference compile one train step three times). JAX's persistent
compilation cache, keyed by the program, the backend and the flags, lets the second
compile be a read. The directory is made fresh per session (so a suite run measures a cold
start, as CI does) by the controlling process before any worker or JAX import, reaches the
workers and subprocesses through the environment, and is removed at the end. A
``JAX_COMPILATION_CACHE_DIR`` set by the caller is used as is and kept.

The session also compiles with XLA's backend (LLVM) optimization level 0
(``--xla_backend_optimization_level=0``) and without XLA:CPU's MLIR fusion emitters
(``--xla_cpu_use_fusion_emitters=false``, the older LLVM IR emitters), each unless the
caller's ``XLA_FLAGS`` set it: the suite checks outputs, not speed, and its programs are
tiny, so code generation is most of their cost. The HLO the tests check is the same; only
the machine code differs (what each buys, measured on 2 cores: docs/PERFORMANCE_NOTES.md).
Timings printed by the benchmark smoke tests under pytest are therefore not benchmark
numbers; run the benchmarks themselves for those.
"""
import os
import shutil
import tempfile

_OWNED = None
if "PYTEST_XDIST_WORKER" not in os.environ and "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWNED = tempfile.mkdtemp(prefix="jaxgen-tests-xla-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWNED
    # every program, however quick to compile: the suite compiles thousands of small ones
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
_TEST_XLA_FLAGS = {"xla_backend_optimization_level": "0", "xla_cpu_use_fusion_emitters": "false"}
if "PYTEST_XDIST_WORKER" not in os.environ:
    _flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = " ".join(filter(None, [_flags] + [
        f"--{name}={value}" for name, value in _TEST_XLA_FLAGS.items() if name not in _flags]))


def pytest_unconfigure(config):
    if _OWNED is not None:
        shutil.rmtree(_OWNED, ignore_errors=True)


# Scheduling only: the modules whose tests run for tens of seconds each (subprocess runs of
# `experiments.main`, notebooks, benchmarks, training to a quality bound) go first, so that
# the xdist workers end on short tests instead of one worker finishing a long one alone.
_LONG_FIRST = ("test_notebooks", "test_benchmarks", "test_run_life", "test_distributed",
               "test_flows_2d", "test_experiments", "test_energy_training", "test_training",
               "test_pipeline")


def pytest_collection_modifyitems(config, items):
    def rank(item):
        name = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        return _LONG_FIRST.index(name) if name in _LONG_FIRST else len(_LONG_FIRST)

    items.sort(key=rank)  # stable: file order within each rank
