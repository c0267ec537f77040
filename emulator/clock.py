"""The emulator's clock: virtual or real time, timers, and quiescence tracking.

Every live call runs in its own thread. A thread counts as *busy* while it is doing work
(fetching a webhook, interpreting TwiML) and stops counting while it is blocked in
``Mailbox.get`` waiting for an event or for time to pass. ``settle()`` waits until no thread is
busy: that is the quiescence the phone API returns at. Phone actions use ``settle_since()``:
it returns once quiescence was reached after the action (even if another caller's action has
already started new work), so concurrent callers do not wake each other for nothing.

In virtual mode time stands still until ``advance()`` moves it; timers fire in deadline order
and the engine settles after each one, so timeouts are deterministic and cost no real time.
In real mode, waits are ordinary timed waits on a condition variable.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from .workers import Workers


class SettleTimeout(RuntimeError):
    """The emulator did not reach quiescence in time (a webhook hangs, or a loop never waits)."""


class Clock:
    """Time source, timer heap and busy counter shared by every call of one emulator."""

    def __init__(self, mode: str = "virtual") -> None:
        if mode not in ("virtual", "real"):
            raise ValueError("clock must be 'virtual' or 'real'")
        self.virtual = mode == "virtual"
        self.lock = threading.RLock()
        # Strict waiters (settle, advance) need no work in flight while they hold the lock; one
        # is woken per quiescence and passes it on if it starts nothing. Relaxed waiters (phone
        # actions) only need some quiescence since they began: all of them are woken.
        self._strict = threading.Condition(self.lock)
        self._relaxed = threading.Condition(self.lock)
        self._quiet = 0  # how many times the busy count fell to zero
        self._busy = 0
        self._vnow = 0.0
        self._t0 = time.monotonic()
        self._wall0 = datetime.now(UTC).replace(microsecond=0)
        self._timers: list[tuple[float, int, Mailbox, int]] = []
        self._seq = itertools.count()
        self.workers = Workers()

    # -- time -------------------------------------------------------------------------------
    def now(self) -> float:
        """Seconds since the emulator started (virtual or real)."""
        if self.virtual:
            return self._vnow
        return time.monotonic() - self._t0

    def wall(self) -> datetime:
        """The current date and time as the emulated carrier reports it (UTC)."""
        return self._wall0 + timedelta(seconds=self.now())

    # -- busy accounting --------------------------------------------------------------------
    def enter(self) -> None:
        """Mark one more unit of work in flight."""
        with self.lock:
            self._busy += 1

    def leave(self) -> None:
        """Mark one unit of work finished."""
        with self.lock:
            self._busy -= 1
            if self._busy <= 0:
                self._went_quiet()

    def _went_quiet(self) -> None:
        """The busy count fell to zero (lock held): wake whoever waits for quiescence."""
        self._busy = 0
        self._quiet += 1
        self._relaxed.notify_all()
        self._strict.notify()

    def spawn(self, target: Callable[[], None], name: str) -> None:
        """Run ``target`` in a daemon thread (a reused one when idle) that counts as busy until
        it blocks or ends."""
        self.enter()

        def run() -> None:
            try:
                target()
            finally:
                self.leave()

        self.workers.run(run, name)

    def close(self) -> None:
        """Let the idle worker threads end (the emulator stops)."""
        self.workers.close()

    def settle(self, timeout: float = 60.0) -> None:
        """Wait (real time) until no work is in flight."""
        with self.lock:
            self._settle_locked(timeout)
            self._pass_on()

    def settle_since(self, timeout: float = 60.0) -> None:
        """Wait (real time) until the emulator has been quiescent at some moment since now."""
        with self.lock:
            if self._busy <= 0:
                return
            seen = self._quiet
            deadline = time.monotonic() + timeout
            while self._quiet == seen:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SettleTimeout(f"{self._busy} activities still busy after {timeout}s")
                self._relaxed.wait(remaining)

    def _settle_locked(self, timeout: float) -> None:
        """Wait until no work is in flight; returns holding the lock with the busy count 0."""
        if self._busy <= 0:
            return
        deadline = time.monotonic() + timeout
        while self._busy > 0:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SettleTimeout(f"{self._busy} activities still busy after {timeout}s")
            self._strict.wait(remaining)

    def _pass_on(self) -> None:
        """A strict waiter leaves quiescent without starting work: the next one may go."""
        if self._busy <= 0:
            self._strict.notify()

    @property
    def busy(self) -> int:
        return self._busy

    # -- timers (virtual mode) --------------------------------------------------------------
    def _add_timer(self, deadline: float, box: Mailbox, token: int) -> None:
        heapq.heappush(self._timers, (deadline, next(self._seq), box, token))

    def _next_timer(self) -> tuple[float, Mailbox, int] | None:
        while self._timers:
            deadline, _, box, token = self._timers[0]
            if box.token == token and box.waiting:
                return deadline, box, token
            heapq.heappop(self._timers)
        return None

    def next_deadline(self) -> float | None:
        """The virtual time of the next pending timer, if any."""
        with self.lock:
            found = self._next_timer()
            return found[0] if found else None

    def advance(self, seconds: float, settle_timeout: float = 60.0) -> None:
        """Move virtual time forward, firing due timers in order (real mode: sleep)."""
        if not self.virtual:
            time.sleep(max(0.0, seconds))
            self.settle(settle_timeout)
            return
        with self.lock:
            target = self._vnow + max(0.0, seconds)
            self._run_timers_until(target, settle_timeout)
            self._vnow = max(self._vnow, target)
        self.settle(settle_timeout)

    def advance_until(
        self, done: Callable[[], bool], max_seconds: float, settle_timeout: float = 60.0
    ) -> bool:
        """Fire timers one by one until ``done()`` holds or ``max_seconds`` pass; True if done."""
        if not self.virtual:
            deadline = time.monotonic() + max_seconds
            while not done() and time.monotonic() < deadline:
                time.sleep(0.02)
            return done()
        with self.lock:
            limit = self._vnow + max_seconds
            while True:
                self._settle_locked(settle_timeout)
                if done():
                    self._pass_on()
                    return True
                found = self._next_timer()
                if found is None or found[0] > limit:
                    self._pass_on()
                    return False
                self._fire(found)

    def _run_timers_until(self, target: float, settle_timeout: float) -> None:
        while True:
            self._settle_locked(settle_timeout)
            found = self._next_timer()
            if found is None or found[0] > target:
                return
            self._fire(found)

    def _fire(self, found: tuple[float, Mailbox, int]) -> None:
        deadline, box, token = found
        heapq.heappop(self._timers)
        self._vnow = max(self._vnow, deadline)
        box._wake(token)


class Mailbox:
    """Events for one call leg; its thread blocks here when it waits for input or time."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._cond = threading.Condition(clock.lock)
        self._events: deque = deque()
        self.waiting = False
        self._woken = False
        self.token = 0

    def post(self, event: tuple) -> None:
        """Deliver an event; a blocked owner wakes (and counts as busy at once)."""
        with self.clock.lock:
            self._events.append(event)
            self._wake(self.token)

    def _wake(self, token: int) -> None:
        if self.waiting and not self._woken and token == self.token:
            self._woken = True
            self.clock._busy += 1
            self._cond.notify()

    def pending(self) -> bool:
        return bool(self._events)

    def get(self, timeout: float | None) -> tuple | None:
        """Next event, or None once ``timeout`` seconds (clock time) pass; None = forever."""
        clock = self.clock
        with clock.lock:
            if self._events:
                return self._events.popleft()
            if timeout is not None and timeout <= 0:
                return None
            self.token += 1
            token = self.token
            deadline = None if timeout is None else clock.now() + timeout
            if deadline is not None and clock.virtual:
                clock._add_timer(deadline, self, token)
            self.waiting = True
            self._woken = False
            clock._busy -= 1
            if clock._busy <= 0:
                clock._went_quiet()
            try:
                while not self._woken:
                    if clock.virtual or deadline is None:
                        self._cond.wait()
                    else:
                        remaining = deadline - clock.now()
                        if remaining <= 0:
                            self._woken = True
                            clock._busy += 1
                            break
                        self._cond.wait(remaining)
            finally:
                self.waiting = False
                self.token += 1
            if self._events:
                return self._events.popleft()
            return None
