"""SIGINT / SIGTERM during training: finish the step, checkpoint, stop cleanly.

A signal handler only records the request (`InterruptGuard`); the training loop polls it
between step calls, writes a checkpoint, waits for it to be on disk and raises
`TrainingInterrupted`. Nothing is interrupted inside a compiled call or an asynchronous
checkpoint write (raising ``KeyboardInterrupt`` there is what can leave a half-written
checkpoint or crash the process). A second signal while the first is being handled gets
the previous handler (Ctrl-C twice forces the usual ``KeyboardInterrupt``).
"""
from __future__ import annotations

import signal
import threading

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on a signal after writing a checkpoint.

    A ``KeyboardInterrupt`` (so notebooks and scripts that catch Ctrl-C still do).

    Attributes:
      signum: the signal received (``signal.SIGINT`` or ``signal.SIGTERM``).
      step: the step of the checkpoint written (the run resumes from it).
      checkpoint_dir: where it is (``None`` when the run keeps nothing on disk).
    """

    def __init__(self, signum: int, step: int, checkpoint_dir: str | None):
        self.signum, self.step, self.checkpoint_dir = int(signum), int(step), checkpoint_dir
        name = signal.Signals(self.signum).name
        where = (f"checkpoint of step {step} written to {checkpoint_dir}; run the same "
                 "command (or train() with the same workdir) again to resume"
                 if checkpoint_dir else "no workdir, so nothing was saved")
        super().__init__(f"training interrupted by {name} at step {step}: {where}")

    @property
    def exit_code(self) -> int:
        """The shell's convention for a process ended by this signal: ``128 + signum``."""
        return 128 + self.signum


class InterruptGuard:
    """Context manager: while active, SIGINT/SIGTERM set `requested` instead of stopping.

    Handlers can only be installed from the main thread; elsewhere the guard does nothing
    (the signal keeps its usual effect).
    """

    def __init__(self):
        self.requested: int | None = None
        self._previous: dict = {}

    def _handle(self, signum, frame):
        if self.requested is None:
            self.requested = signum
            # A second signal gets the handler that was there before (hard stop).
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
        else:  # pragma: no cover - the previous handlers are already back
            raise KeyboardInterrupt

    def __enter__(self) -> "InterruptGuard":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                try:
                    self._previous[sig] = signal.signal(sig, self._handle)
                except (ValueError, OSError):  # not allowed here (embedded interpreter)
                    pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


__all__ = ["InterruptGuard", "SIGNALS", "TrainingInterrupted"]
