"""Run an external program (wkhtmltopdf, Ghostscript) with a hard time limit.

``subprocess.run(timeout=…)`` kills only the direct child; a wrapper script
such as ``xvfb-run`` would leave its grandchild running.  So the program runs
in its own process group, killed whole when the time is up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_STDERR_LIMIT = 2000


class ProcessTimeout(Exception):
    """The program did not finish in time and was killed; ``stderr`` is what it wrote."""

    def __init__(self, stderr: bytes) -> None:
        super().__init__("timed out")
        self.stderr = stderr


@dataclass(frozen=True)
class Finished:
    returncode: int
    stdout: bytes
    stderr: bytes


def _kill_group(process_group: int) -> None:
    """Called while the child is not yet reaped, so the group id cannot have been reused."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process_group, signal.SIGKILL)


class Running:
    """A started program waiting for its input: it can start up while the input is made.

    Call :meth:`finish` once, or :meth:`abandon` to kill it.
    """

    def __init__(self, command: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        """:class:`OSError` if the program cannot be started."""
        self.process = subprocess.Popen(
            list(command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )

    def finish(self, stdin: bytes, *, timeout: float) -> Finished:
        """Send ``stdin``, wait; :class:`ProcessTimeout` after ``timeout`` seconds."""
        try:
            stdout, stderr = self.process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(self.process.pid)
            _, stderr = self.process.communicate()
            raise ProcessTimeout(stderr) from None
        except BrokenPipeError:  # it exited before reading its input
            stdout, stderr = self.process.communicate()
        except BaseException:
            # Interrupted (a worker told to stop at once): the program must not outlive it.
            self.abandon()
            raise
        return Finished(self.process.returncode, stdout, stderr)

    def abandon(self) -> None:
        """Kill the program (and its group) if it still runs, and reap it."""
        if self.process.returncode is None:
            _kill_group(self.process.pid)
            self.process.communicate()


def run_bounded(
    command: Sequence[str],
    stdin: bytes,
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
) -> Finished:
    """Run ``command`` with ``stdin``; :class:`ProcessTimeout` after ``timeout`` seconds.

    ``env`` is added to this process's environment.  :class:`OSError` if the
    program cannot be started.
    """
    return Running(command, env).finish(stdin, timeout=timeout)


def stderr_text(data: bytes | None) -> str:
    """The end of a program's stderr as text, for an error message."""
    text = (data or b"").decode("utf-8", errors="replace").strip()
    return text[-_STDERR_LIMIT:] or "(no output)"
