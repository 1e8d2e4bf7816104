"""Run an external program (wkhtmltopdf, Ghostscript) with a hard time limit.

``subprocess.run(timeout=…)`` kills only the direct child; a wrapper script
such as ``xvfb-run`` would leave its grandchild running.  So the program runs
in its own process group, killed whole when the time is up.

Renderers are background work: on a small machine two wkhtmltopdf and a
Ghostscript would otherwise take every core from the back-office's requests.
A program started with ``nice`` runs at that niceness (see :func:`niced`);
the scheduler then gives it only the CPU time nothing else wants.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_STDERR_LIMIT = 2000
#: The niceness of the renderer processes unless the config says otherwise
#: (``BILLING_RENDER_NICE``): well below interactive work, above idle-only.
DEFAULT_RENDER_NICE = 10


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


def nicer_by(nice: int) -> int:
    """How much nicer than the calling thread ``nice`` is (0 if it is as nice or nicer).

    Linux keeps the niceness per thread, and a thread or child starts with
    that of the thread that made it.
    """
    return max(0, nice - os.getpriority(os.PRIO_PROCESS, 0))


def niced(command: Sequence[str], nice: int) -> list[str]:
    """``command`` run at niceness ``nice`` (0-19) or nicer, through ``nice(1)``.

    ``nice`` sets the niceness and then execs the program, so the program keeps
    its process id (and group), and every thread and child it starts inherits
    it.  Niceness is relative to the caller's, which may be nicer already (a
    batch command that lowered its own priority): only the difference is added.
    A ``preexec_fn`` would do the same without the extra exec, but it is not
    safe in a process with threads, and the renderers start programs from theirs.
    """
    increment = nicer_by(nice)
    if increment == 0:
        return list(command)
    program = shutil.which("nice")
    if program is None:
        raise OSError("the nice program (coreutils) is not on the PATH")
    return [program, "-n", str(increment), *command]


class Running:
    """A started program waiting for its input: it can start up while the input is made.

    Call :meth:`finish` once, or :meth:`abandon` to kill it.
    """

    def __init__(
        self, command: Sequence[str], env: Mapping[str, str] | None = None, *, nice: int = 0
    ) -> None:
        """:class:`OSError` if the program cannot be started; ``nice``: see :func:`niced`."""
        self.process = subprocess.Popen(
            niced(command, nice),
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
    nice: int = 0,
) -> Finished:
    """Run ``command`` with ``stdin``; :class:`ProcessTimeout` after ``timeout`` seconds.

    ``env`` is added to this process's environment; ``nice`` is the niceness to
    run at (:func:`niced`).  :class:`OSError` if the program cannot be started.
    """
    return Running(command, env, nice=nice).finish(stdin, timeout=timeout)


def stderr_text(data: bytes | None) -> str:
    """The end of a program's stderr as text, for an error message."""
    text = (data or b"").decode("utf-8", errors="replace").strip()
    return text[-_STDERR_LIMIT:] or "(no output)"
