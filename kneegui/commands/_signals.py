"""Stop a long-running command cleanly on SIGTERM, SIGHUP or Ctrl-C (SIGINT).

A service manager stops a recording with SIGTERM, a closed terminal sends SIGHUP: without a
handler either one kills the process before the session file is closed (the last second of
data lost, ``complete`` never set). :class:`SignalGuard` turns the first such signal into a
request that the command's loop sees within a fraction of a second; while the command is
closing, further signals only print that it is still closing. Outside :meth:`deferred`, the
first signal raises :class:`StopSignal` (a ``KeyboardInterrupt``) to cut a set-up step short.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator

#: The signals that stop a command.
STOP_SIGNALS = ("SIGTERM", "SIGHUP", "SIGINT")


class StopSignal(KeyboardInterrupt):
    """The command was asked to stop by a signal (``.name``: "SIGTERM", ...)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum
        self.name = signal.Signals(signum).name


class SignalGuard:
    """Context manager: installs the handlers (main thread only) and restores them after."""

    def __init__(self, command: str, closing_note: str = "still closing, please wait"):
        self.command = command
        self.closing_note = closing_note
        #: name of the first stop signal received ("SIGTERM"...), None before
        self.received: str | None = None
        self._raise = True
        self._previous: dict[int, object] = {}

    @property
    def stop_requested(self) -> bool:
        return self.received is not None

    def __enter__(self) -> SignalGuard:
        if threading.current_thread() is threading.main_thread():
            for name in STOP_SIGNALS:
                sig = getattr(signal, name, None)
                if sig is not None:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    @contextlib.contextmanager
    def deferred(self) -> Iterator[SignalGuard]:
        """Inside: a signal only sets :attr:`received` (the loop polls it); nothing raises."""
        self._raise = False
        try:
            yield self
        finally:
            self._raise = True

    def _handle(self, signum: int, _frame: object) -> None:
        name = signal.Signals(signum).name
        if self.received is None:
            self.received = name
            if self._raise:
                raise StopSignal(signum)
            return
        # os.write: print() is not safe inside a signal handler (re-entrant stream writes)
        with contextlib.suppress(OSError):
            os.write(2, f"kneegui {self.command}: {name} received; {self.closing_note}\n"
                     .encode())
