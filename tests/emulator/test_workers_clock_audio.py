"""Reused worker threads, quiescence waits (strict and since-an-action), generated audio."""

from __future__ import annotations

import io
import threading
import time
import wave

from emulator import audio
from emulator.clock import Clock, Mailbox
from emulator.workers import IDLE_NAME, Workers


def wait_for(predicate, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_workers_reuse_idle_threads_and_name_them_per_job():
    workers = Workers()
    seen: list[tuple[int, str]] = []
    done = threading.Semaphore(0)

    def job() -> None:
        me = threading.current_thread()
        seen.append((me.ident, me.name))
        done.release()

    try:
        workers.run(job, "call-one")
        assert done.acquire(timeout=5)
        assert wait_for(lambda: len(workers._idle) == 1)
        workers.run(job, "callback-two")
        assert done.acquire(timeout=5)
        assert [name for _, name in seen] == ["call-one", "callback-two"]
        assert seen[0][0] == seen[1][0]  # the same thread served both
        assert wait_for(lambda: len(workers._idle) == 1)
        assert not [t for t in threading.enumerate() if t.name in ("call-one", "callback-two")]
    finally:
        workers.close()


def test_workers_run_jobs_concurrently_and_end_when_closed():
    workers = Workers()
    gate = threading.Event()
    started = threading.Semaphore(0)

    def job() -> None:
        started.release()
        gate.wait(5)

    for index in range(5):
        workers.run(job, f"job-{index}")
    for _ in range(5):
        assert started.acquire(timeout=5)  # none waited for another
    gate.set()
    assert wait_for(lambda: len(workers._idle) == 5)
    idle = [t for t in threading.enumerate() if t.name == IDLE_NAME]
    workers.close()
    assert wait_for(lambda: not any(t.is_alive() for t in idle))


def test_a_failing_job_is_reported_and_the_worker_keeps_serving(monkeypatch):
    reported: list[BaseException] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: reported.append(args.exc_value))
    workers = Workers()
    done = threading.Event()
    try:
        workers.run(lambda: 1 / 0, "bad")
        assert wait_for(lambda: len(workers._idle) == 1)
        workers.run(done.set, "good")
        assert done.wait(5)
        assert len(reported) == 1 and isinstance(reported[0], ZeroDivisionError)
    finally:
        workers.close()


def test_idle_workers_end_after_their_idle_time():
    workers = Workers(idle_seconds=0.05)
    done = threading.Event()
    workers.run(done.set, "short-lived")
    assert done.wait(5)
    assert wait_for(lambda: not workers._idle and not any(
        t.name == IDLE_NAME and t.is_alive() for t in threading.enumerate()
    ))  # fmt: skip
    workers.close()


def test_settle_since_returns_after_a_quiescence_even_if_work_restarted():
    clock = Clock("virtual")
    clock.enter()
    returned = threading.Event()
    strict_returned = threading.Event()
    threading.Thread(target=lambda: (clock.settle_since(5), returned.set())).start()
    threading.Thread(target=lambda: (clock.settle(5), strict_returned.set())).start()
    time.sleep(0.05)
    assert not returned.is_set() and not strict_returned.is_set()
    with clock.lock:  # quiescent for an instant, then busy again before anyone can look
        clock.leave()
        clock.enter()
    assert returned.wait(5)  # the action's consequences were all done at that instant
    assert not strict_returned.wait(0.1)  # settle() needs no work in flight
    clock.leave()
    assert strict_returned.wait(5)
    clock.settle_since(0.1)  # nothing in flight: returns at once


def test_every_strict_waiter_sees_one_quiescence():
    clock = Clock("virtual")
    clock.enter()
    returned = threading.Semaphore(0)

    def waiter() -> None:
        clock.settle(5)
        returned.release()

    threads = [threading.Thread(target=waiter) for _ in range(6)]
    for thread in threads:
        thread.start()
    time.sleep(0.05)
    clock.leave()
    for _ in threads:
        assert returned.acquire(timeout=5)


def test_concurrent_advancers_fire_timers_in_order():
    clock = Clock("virtual")
    fired: list[float] = []

    def sleeper(seconds: float) -> None:
        Mailbox(clock).get(seconds)
        fired.append(clock.now())

    for seconds in (3.0, 1.0, 2.0):
        clock.spawn(lambda s=seconds: sleeper(s), name=f"sleeper-{seconds}")
    clock.settle()
    advancers = [threading.Thread(target=clock.advance, args=(5,)) for _ in range(3)]
    for thread in advancers:
        thread.start()
    for thread in advancers:
        thread.join(10)
    clock.settle()
    assert fired == [1.0, 2.0, 3.0]
    clock.close()


def decode(segment) -> tuple[int, int, int, int]:
    with wave.open(io.BytesIO(audio.wav_bytes(segment))) as wav:
        return wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes()


def test_noise_is_real_8khz_audio_of_the_asked_length():
    for seconds in (0.25, 2.0, 17.5, 40.0):  # also longer than the cached noise block
        segment = audio.noise(seconds)
        assert decode(segment) == (8000, 1, 2, round(seconds * 8000))
        assert audio.seconds_of(segment) == seconds
        assert -21.0 < segment.dBFS < -18.5  # pydub's WhiteNoise at -15 dB: about -19.8 dBFS
    assert audio.noise(2).raw_data != audio.noise(2).raw_data  # not the same sound every time


def test_tone_is_a_220_hz_signal_of_the_asked_length():
    segment = audio.tone(1.5)
    assert decode(segment) == (8000, 1, 2, 12000)
    assert -16.5 < segment.dBFS < -13.5
    samples = segment.get_array_of_samples()
    # 220 Hz at 8 kHz: 11 periods every 400 samples, so the signal nearly repeats at 400
    drift = max(abs(samples[i] - samples[i + 400]) for i in range(2000))
    assert drift < 0.3 * max(samples)  # what differs is the -30 dB hiss


def test_mix_matches_pydub_overlay_exactly():
    def pydub_mix(pieces, length):
        track = audio.silence(length)
        for offset, piece in pieces:
            track = track.overlay(piece, position=max(0, round(offset * 1000)))
        return audio.normalise(track)

    loud = audio.tone(1.0) + 20  # overlapping loud pieces clip
    cases = [
        ([(0.0, audio.noise(2))], 2.0),
        ([(0.5, audio.noise(1)), (1.0, audio.tone(1.5)), (1.2, loud), (1.4, loud)], 3.0),
        ([(2.5, audio.noise(2)), (-1.0, audio.tone(0.3))], 3.0),  # cut at the end; clamped
        ([(8.0, audio.noise(0.5))], 8.013810589857066),  # not a whole number of ms of frames
        ([(0.2, audio.noise(1).set_frame_rate(16000))], 2.0),  # another format: pydub's way
    ]
    for pieces, length in cases:
        ours, theirs = audio.mix(pieces, length), pydub_mix(pieces, length)
        assert ours.raw_data == theirs.raw_data
        assert (ours.frame_rate, ours.channels, ours.sample_width) == (8000, 1, 2)
        assert len(ours) == len(theirs)
