"""Start an N-process run on this machine: ``python -m experiments.launch --num_processes=2 --
--config experiments/configs/made_digits.py --workdir runs/made2``.

Each process is ``python -m experiments.main <args after -->`` with ``JAX_COORDINATOR_ADDRESS``
(127.0.0.1 and a free port: loopback only), ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` in
its environment; `jaxgen.training.sharding.initialize_distributed` joins them into one
``jax.distributed`` run (on CPU with gloo collectives), whose mesh has every process's
devices. ``--devices_per_process=K`` gives each CPU process K devices
(``--xla_force_host_platform_device_count``).

Exit code: 0 if every process exits 0, else the code of the first process seen to fail
(before the launcher stops the others; several at once: the lowest process index). When
one process fails the others cannot finish (they wait in collectives), so they get SIGTERM
(a run checkpoints and stops on it), then SIGKILL after ``--grace_s``. SIGINT/SIGTERM sent
to the launcher go to every process, so Ctrl-C stops and checkpoints the whole run.

Clusters (SLURM, TPU pods) start one process per host themselves: docs/SCALING.md.
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_env(base: dict, *, port: int, num_processes: int, process_id: int,
                devices_per_process: int | None) -> dict:
    """The environment of process ``process_id``."""
    env = dict(base, JAX_COORDINATOR_ADDRESS=f"127.0.0.1:{port}",
               JAX_NUM_PROCESSES=str(num_processes), JAX_PROCESS_ID=str(process_id))
    if devices_per_process is not None:
        flags = [f for f in env.get("XLA_FLAGS", "").split()
                 if not f.startswith("--xla_force_host_platform_device_count")]
        flags.append(f"--xla_force_host_platform_device_count={devices_per_process}")
        env["XLA_FLAGS"] = " ".join(flags)
    return env


def launch(args: list[str], *, num_processes: int, module: str = "experiments.main",
           devices_per_process: int | None = None, port: int | None = None,
           grace_s: float = 60.0, env: dict | None = None) -> int:
    """Runs ``python -m module *args`` as ``num_processes`` processes; returns the exit code
    (see the module docstring)."""
    if num_processes < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    if devices_per_process is not None and devices_per_process < 1:
        raise ValueError(f"devices_per_process must be >= 1, got {devices_per_process}")
    port = free_port() if port is None else port
    base = dict(os.environ if env is None else env)
    procs = [subprocess.Popen([sys.executable, "-m", module, *args],
                              env=process_env(base, port=port, num_processes=num_processes,
                                              process_id=i,
                                              devices_per_process=devices_per_process))
             for i in range(num_processes)]

    def forward(signum, _frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        failed_at, first_failure = None, None
        while any(p.poll() is None for p in procs):
            failing = [p.returncode for p in procs if p.poll() not in (None, 0)]
            if failed_at is None and failing:
                failed_at, first_failure = time.monotonic(), failing[0]
                for p in procs:
                    if p.poll() is None:
                        p.terminate()
            if failed_at is not None and time.monotonic() - failed_at > grace_s:
                for p in procs:
                    if p.poll() is None:
                        p.kill()
            time.sleep(0.1)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    codes = [p.returncode for p in procs]
    bad = [c for c in codes if c != 0]
    if bad:
        print(f"experiments.launch: exit codes of the {num_processes} processes: {codes}",
              file=sys.stderr)
    # the failure that ended the run, not the SIGTERM the launcher then sent the others;
    # a signal's negative returncode becomes the shell's 128 + signum
    code = first_failure if first_failure is not None else (bad[0] if bad else 0)
    return 128 - code if code < 0 else code


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" in argv:
        split = argv.index("--")
        own, rest = argv[:split], argv[split + 1:]
    else:
        own, rest = argv, []
    parser = argparse.ArgumentParser(
        prog="python -m experiments.launch",
        description="Run experiments.main (or --module) as N processes of one jax.distributed "
                    "run on this machine; its arguments follow '--'.")
    parser.add_argument("--num_processes", type=int, required=True)
    parser.add_argument("--devices_per_process", type=int, default=None,
                        help="CPU devices per process (default: XLA's, 1)")
    parser.add_argument("--module", default="experiments.main")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--grace_s", type=float, default=60.0,
                        help="seconds between SIGTERM and SIGKILL of the others when one fails")
    opts = parser.parse_args(own)
    if not rest:
        parser.error("no arguments for the processes: put them after '--'")
    try:
        return launch(rest, num_processes=opts.num_processes, module=opts.module,
                      devices_per_process=opts.devices_per_process, port=opts.port,
                      grace_s=opts.grace_s)
    except ValueError as err:
        parser.error(str(err))


if __name__ == "__main__":
    sys.exit(main())
