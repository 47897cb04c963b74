"""The acquisition's message pipe: never blocks the sender, loses nothing, keeps the order."""

import multiprocessing as mp
import time

from station.live.channel import MessageReceiver, MessageSender


def _pair():
    r, w = mp.Pipe(duplex=False)
    return MessageReceiver(r), MessageSender(w)


def test_messages_arrive_whole_and_in_order():
    rx, tx = _pair()
    sent = [("frame", (i, i / 80.0, (1, 2, 3, 4), 0, ())) for i in range(500)] + [("stats", {"frames": 500})]
    for m in sent:
        tx.send(m)
    got = []
    while len(got) < len(sent):
        got += rx.get(timeout_s=0.2)
    assert got == sent


def test_a_full_pipe_never_blocks_the_sender_and_nothing_is_lost():
    rx, tx = _pair()
    big = ("frame", (0, 0.0, tuple(range(4)), 0, ("x" * 900,)))
    t0 = time.monotonic()
    for i in range(2000):  # about 2 MB: far more than a pipe holds (64 kB)
        tx.send((big[0], (i, *big[1][1:])))
    assert time.monotonic() - t0 < 2.0  # never waited for the reader
    assert tx.backlog_bytes > 0  # the rest waits in the sender
    got = []
    while len(got) < 2000:
        got += rx.get(timeout_s=0.1)
        tx.flush()
    assert [m[1][0] for m in got] == list(range(2000))


def test_the_receiver_waits_for_the_timeout_then_returns_nothing():
    rx, _tx = _pair()
    t0 = time.monotonic()
    assert rx.get(timeout_s=0.1) == []
    assert 0.08 <= time.monotonic() - t0 < 1.0


def test_a_closed_sender_ends_the_channel_without_a_busy_loop():
    rx, tx = _pair()
    tx.send(("end",))
    tx.close(timeout_s=0.5)
    assert rx.get(timeout_s=0.1) == [("end",)]
    t0 = time.monotonic()
    assert rx.get(timeout_s=0.1) == [] and rx.closed
    assert time.monotonic() - t0 >= 0.08  # waited, as a poll loop expects


def test_max_messages_leaves_the_rest_for_later():
    rx, tx = _pair()
    for i in range(5):
        tx.send(i)
    time.sleep(0.05)
    assert rx.get(timeout_s=0.1, max_messages=1) == [0]
    assert rx.get(timeout_s=0.1) == [1, 2, 3, 4]
