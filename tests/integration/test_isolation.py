"""test_isolation - a dead destination does not slow the others.

One Herald instance with a large queue for two bad destinations:
  - silent.test: a server that accepts connections and never greets
    (each attempt holds a connection until the greeting timeout);
  - refused.test: a closed port (connection refused);
and, while both are failing, mail to a healthy aiosmtpd sink (good.test).

Checks: the healthy destination's mail is all delivered, and as fast as
on an idle Herald (within a bounded factor of a baseline measured first,
and under an absolute bound); the silent destination never gets more
connections than its concurrency limit; the refused destination's route
is suspended (its later recipients are deferred without a connection
attempt); nothing is lost: every bad recipient is still queued, deferred.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_isolation.py
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import sinks  # noqa: E402
from deliverylib import SENDER, delivery_sets, message, token  # noqa: E402
from harness import check, check_eq  # noqa: E402

DEADLINE = time.time() + 100
GOOD = 40          # messages to the healthy destination, per phase
BAD_MSGS = 20      # messages to each bad destination ...
BAD_RCPTS = 50     # ... with this many recipients each


def bounded(t):
    left = DEADLINE - time.time()
    assert left > 0, "test ran out of time"
    return max(0.5, min(t, left))


def send_good(h, n, tag):
    """Submit n messages to good.test over one session; return the tokens."""
    toks = []
    s = harness.smtp_login(h)
    for i in range(n):
        t = "%s%03d%s" % (tag, i, token()[:6])
        harness.submit(h, SENDER, ["g%d@good.test" % i],
                       message(t, to="g%d@good.test" % i), s=s)
        toks.append(t)
    s.quit()
    return toks


def wait_received(sink, toks, timeout):
    """Seconds until every token arrived at sink, or None."""
    t0 = time.monotonic()
    want = {t.encode() for t in toks}

    def done():
        got = set()
        for m in sink.received():
            for t in want:
                if t in m.data:
                    got.add(t)
        return got == want
    if harness.wait_until(done, bounded(timeout)):
        return time.monotonic() - t0
    return None


def main():
    good = sinks.AioSink("127.0.0.1", name="good.sink.test")
    silent = sinks.SilentServer("127.0.0.1")
    refused_port = sinks.free_port()
    try:
        good.start()
        silent.start()
        h = harness.Herald(sets=delivery_sets(
            mta__greeting_timeout="3s", mta__retry_schedule="30s",
            mta__concurrency="20"), start=False)
        h.write_destinations("\n".join([
            "good.test relay=127.0.0.1:%d tls=none" % good.port,
            "silent.test relay=127.0.0.1:%d tls=none concurrency=4" % silent.port,
            "refused.test relay=127.0.0.1:%d tls=none" % refused_port,
            ""]))
        h.start()
        with h:
            # baseline: the healthy destination alone (submission to the
            # last message at the sink)
            t0 = time.monotonic()
            toks = send_good(h, GOOD, "base")
            check(wait_received(good, toks, 20) is not None,
                  "baseline: %d messages delivered" % GOOD)
            base = time.monotonic() - t0
            # the bad destinations' queue, from two sessions at once
            def bad(dom):
                s = harness.smtp_login(h)
                for i in range(BAD_MSGS):
                    harness.submit(h, SENDER, ["b%d.%d@%s" % (i, j, dom)
                                               for j in range(BAD_RCPTS)],
                                   message(token(), to="b@" + dom), s=s)
                s.quit()
            ts = [threading.Thread(target=bad, args=(d,))
                  for d in ("silent.test", "refused.test")]
            for t in ts:
                t.start()
            for t in ts:
                t.join(bounded(60))
            # now the healthy destination again, while both fail
            t0 = time.monotonic()
            toks = send_good(h, GOOD, "busy")
            check(wait_received(good, toks, 20) is not None,
                  "with a silent and a refusing destination: %d messages to "
                  "good.test delivered" % GOOD)
            busy = time.monotonic() - t0
            print("# submission to delivery of %d messages: %.2f s alone, "
                  "%.2f s beside the dead destinations" % (GOOD, base, busy))
            check(busy <= max(3 * base, 3.0),
                  "the healthy destination is not slowed: %.2f s vs %.2f s "
                  "alone" % (busy, base))
            check(silent.accepted <= 4 * 3,
                  "silent destination: connections within its limit "
                  "(%d accepted, concurrency 4)" % silent.accepted)
            # every bad recipient is still there, deferred or in flight
            total = 2 * BAD_MSGS * BAD_RCPTS

            def all_queued():
                rows, n = h.queue_list()
                return n == total and rows
            rows = harness.wait_until(all_queued, bounded(10))
            check(bool(rows), "all %d bad recipients still queued" % total)
            refused = [r for r in rows if r["rcpt"].endswith("@refused.test")]
            check(refused and all(r["state"] == "deferred" for r in refused),
                  "refused.test: every recipient deferred")
            susp = h.log_events(event="deferred")
            check(any("temporarily suspended" in e.get("reply", "") for e in susp),
                  "refused.test: later recipients deferred without trying "
                  "(delivery temporarily suspended)")
            conn_fail = [e for e in h.log_events(event="connect-failed")
                         if str(refused_port) in e.get("route", "")]
            check(1 <= len(conn_fail) <= 5,
                  "refused.test: %d connection attempts for %d recipients"
                  % (len(conn_fail), BAD_MSGS * BAD_RCPTS))
    finally:
        good.stop()
        silent.stop()


if __name__ == "__main__":
    harness.run(main)
