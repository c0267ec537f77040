"""Reusable daemon threads: a call leg or a callback queue runs on an idle worker when there is
one, else on a new thread. Starting a thread per call and per callback burst costs more CPU than
the work itself; idle workers wait on a lock of their own and end after ``IDLE_SECONDS``."""

from __future__ import annotations

import threading
from collections.abc import Callable

IDLE_SECONDS = 30.0
IDLE_NAME = "emulator-idle"


class _Slot:
    """An idle worker's mailbox: a job, and a lock the giver releases to hand it over."""

    __slots__ = ("job", "name", "ready")

    def __init__(self) -> None:
        self.job: Callable[[], None] | None = None
        self.name = IDLE_NAME
        self.ready = threading.Lock()
        self.ready.acquire()


class Workers:
    """As many threads as jobs run at once, kept for the next jobs once they finish."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self._idle: list[_Slot] = []
        self._lock = threading.Lock()
        self._closed = False

    def run(self, job: Callable[[], None], name: str) -> None:
        """Run ``job`` now in a thread named ``name`` (while it runs)."""
        with self._lock:
            slot = self._idle.pop() if self._idle else None
        if slot is None:
            threading.Thread(target=self._work, args=(job,), name=name, daemon=True).start()
            return
        slot.job, slot.name = job, name
        slot.ready.release()

    def close(self) -> None:
        """Let idle workers end; busy ones end after their job."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for slot in idle:
            slot.job = None
            slot.ready.release()

    def _work(self, job: Callable[[], None] | None) -> None:
        me = threading.current_thread()
        slot = _Slot()
        while job is not None:
            try:
                job()
            except BaseException as exc:  # report like a thread of its own would, keep serving
                threading.excepthook(
                    threading.ExceptHookArgs((type(exc), exc, exc.__traceback__, me))
                )
            job = None
            me.name = IDLE_NAME
            with self._lock:
                if self._closed:
                    return
                self._idle.append(slot)
            if not slot.ready.acquire(timeout=self.idle_seconds):
                with self._lock:
                    if slot in self._idle:  # nobody picked this worker: end it
                        self._idle.remove(slot)
                        return
                slot.ready.acquire()  # a job was handed over just as the wait ended
            job, slot.job = slot.job, None
            me.name = slot.name
