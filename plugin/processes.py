"""Run an external program (wkhtmltopdf, Ghostscript) with a hard time limit.

``subprocess.run(timeout=…)`` kills only the direct child; a wrapper script
such as ``xvfb-run`` would leave its grandchild running.  So the program runs
in its own process group, killed whole when the time is up.  The group is in
the caller's session, not a new one: Linux's autogroup scheduler (on by
default in most distributions' kernels) shares the CPU between sessions
first and applies niceness only among a session's own processes, so a
renderer in a session of its own competed with the back-office as an equal,
whatever its niceness.

Renderers are background work: on a small machine two wkhtmltopdf and a
Ghostscript would otherwise take every core from the back-office's requests.
A program started with ``nice`` runs at that niceness (see :func:`niced`);
the scheduler then gives it only the CPU time nothing else wants.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

_STDERR_LIMIT = 2000
#: The niceness of the renderer processes unless the config says otherwise
#: (``BILLING_RENDER_NICE``): well below interactive work, above idle-only.
DEFAULT_RENDER_NICE = 10


class ProcessExited(Exception):
    """A long-running program ended while it was expected to answer; ``output`` is its last."""

    def __init__(self, output: bytes) -> None:
        super().__init__("exited")
        self.output = output


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

    Call :meth:`finish` once, or :meth:`abandon` to kill it.  A long-running
    program that answers request after request uses :meth:`request` instead
    (started with ``merge_stderr``, so that one stream holds all it writes).
    """

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        merge_stderr: bool = False,
        nice: int = 0,
    ) -> None:
        """:class:`OSError` if the program cannot be started; ``nice``: see :func:`niced`."""
        self.process = subprocess.Popen(
            niced(command, nice),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
            process_group=0,
            env={**os.environ, **(env or {})},
        )
        self._unread = b""

    def request(self, line: bytes, answer: bytes, *, timeout: float) -> tuple[bytes, bytes]:
        """Write ``line`` to the program, read until a line that starts with ``answer``.

        Returns what the program wrote before that line, and the line.  The
        program is killed on :class:`ProcessTimeout`; :class:`ProcessExited` if
        it ends (or closes its stdin) first.
        """
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        try:
            self.process.stdin.write(line)
            self.process.stdin.flush()
        except (BrokenPipeError, ValueError):
            raise ProcessExited(self._drain()) from None
        deadline = time.monotonic() + timeout
        fd = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while True:
                found = self._answer(answer)
                if found is not None:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    _kill_group(self.process.pid)
                    raise ProcessTimeout(self._unread + self._drain())
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.process.wait()
                    raise ProcessExited(self._unread)
                self._unread += chunk

    def _answer(self, answer: bytes) -> tuple[bytes, bytes] | None:
        """Split the output read so far at the first complete ``answer`` line, if any."""
        start = 0
        while True:
            at = self._unread.find(answer, start)
            if at < 0:
                return None
            end = self._unread.find(b"\n", at)
            if end < 0:
                return None
            if at == 0 or self._unread[at - 1 : at] == b"\n":
                before, line = self._unread[:at], self._unread[at:end]
                self._unread = self._unread[end + 1 :]
                return before, line
            start = at + 1

    def _drain(self) -> bytes:
        """What is left to read once the program is ending (or killed), after reaping it."""
        assert self.process.stdout is not None
        rest = self.process.stdout.read() or b""
        self.process.wait()
        return rest

    def send(self, stdin: bytes, *, timeout: float) -> None:
        """Hand the program all of its input and close its stdin, then return, so that it
        works while the caller does something else; :meth:`finish` collects the output.

        The input is written from a thread (the write releases the GIL) that this
        call waits for: once it returns, the program has its input whatever the
        caller then holds the GIL for.  :class:`ProcessTimeout` (the program killed)
        if it has not read the input within ``timeout`` seconds.
        """
        writer = threading.Thread(target=_write_and_close, args=(self.process, stdin),
                                  name="billing-stdin", daemon=True)
        writer.start()
        writer.join(timeout)
        timed_out = writer.is_alive()
        if timed_out:
            _kill_group(self.process.pid)
            writer.join()
        # Closed by the writer: communicate() must neither flush nor write it.
        self.process.stdin = None
        if timed_out:
            _, stderr = self.process.communicate()
            raise ProcessTimeout(stderr)

    def finish(self, stdin: bytes | None = None, *, timeout: float) -> Finished:
        """Send ``stdin`` (unless :meth:`send` did), wait; :class:`ProcessTimeout` after
        ``timeout`` seconds."""
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
        """Kill the program (and its group) if it still runs, reap it, close its pipes.

        A program that ended by itself (seen by ``poll()``) still has its pipes
        open until they are closed here.
        """
        if self.process.returncode is None:
            _kill_group(self.process.pid)
            self.process.communicate()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


def _write_and_close(process: subprocess.Popen[bytes], data: bytes) -> None:
    """The input, then end of file; a program that exited early (broken pipe) reads none."""
    stdin = process.stdin
    assert stdin is not None
    with contextlib.suppress(BrokenPipeError, ValueError):
        stdin.write(data)
    with contextlib.suppress(BrokenPipeError, ValueError):
        stdin.close()


def stderr_text(data: bytes | None) -> str:
    """The end of a program's stderr as text, for an error message."""
    text = (data or b"").decode("utf-8", errors="replace").strip()
    return text[-_STDERR_LIMIT:] or "(no output)"
