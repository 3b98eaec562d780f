#!/usr/bin/python3
"""test_delivery_crash - kill -9 in the middle of delivering 10,000
messages; after a restart every message arrives, few twice.

10,000 small messages, each with its own X-Seq, are submitted (a pool of
smtplib sessions from an allowed IP, no AUTH) while the engine is off
(mta.enabled=no).  Herald restarts with the engine on, delivering to
Postfix's smtp-sink (capturing every message to a file); once the sink
has completed some but not all, Herald is killed with SIGKILL and started
again.  Then, bounded: the queue empties; every X-Seq was received at
least once; the duplicates (messages the sink took whose success Herald
had not recorded before it died) are counted and must stay at or under
200; the spool holds nothing, not even an uncommitted file.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_delivery_crash.py
"""
import collections
import os
import re
import smtplib
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import sinks  # noqa: E402
from deliverylib import SENDER, delivery_sets  # noqa: E402
from harness import check, check_eq  # noqa: E402

DEADLINE = time.time() + 170
N = 10000
SESSIONS = 10
MAX_DUPLICATES = 200
SEQ = re.compile(rb"\r\nX-Seq: (\d+)\r\n")


def bounded(t):
    left = DEADLINE - time.time()
    assert left > 0, "test ran out of time"
    return max(0.5, min(t, left))


def msg(i):
    return (b"From: <a@example.com>\r\nTo: <r@crash.test>\r\n"
            b"Subject: crash %d\r\nMessage-ID: <crash.%d@example.com>\r\n"
            b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nX-Seq: %d\r\n\r\n"
            b"message number %d\r\n" % (i, i, i, i))


def submit_all(h):
    """Submit messages 0..N-1 from SESSIONS threads; return the set of
    numbers Herald accepted (250 queued as)."""
    accepted = set()
    errors = []
    lock = threading.Lock()

    def worker(nums):
        s = None
        try:
            for k, i in enumerate(nums):
                if s is None or k % 200 == 0:
                    if s is not None:
                        s.quit()
                    s = smtplib.SMTP(*h.submission, local_hostname="crash.client",
                                     timeout=30)
                    s.ehlo("crash.client")
                code, text = s.mail(SENDER)
                assert code == 250, (code, text)
                code, text = s.rcpt("r@crash.test")
                assert code == 250, (code, text)
                code, text = s.data(msg(i))
                assert code == 250 and text.startswith(b"2.0.0 Ok: queued as "), (code, text)
                with lock:
                    accepted.add(i)
            s.quit()
        except Exception as e:                     # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=worker, args=(range(k, N, SESSIONS),))
               for k in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(bounded(90))
    return accepted, errors


def main():
    sink = sinks.SmtpSink("127.0.0.1", name="crash.sink.test")
    try:
        sink.start()
        h = harness.Herald(sets=delivery_sets(mta__enabled="no"), start=False)
        with h:
            h.write_destinations("crash.test relay=127.0.0.1:%d\n" % sink.port)
            h.sets["dns.local_data"] = h.write_file("local-data.conf",
                                                    'local-zone: "test." static\n')
            h.start()
            h.cli("account", "allow-ip", "acme", "127.0.0.1")

            def can_submit():
                try:
                    with smtplib.SMTP(*h.submission, timeout=10) as s:
                        s.ehlo("crash.client")
                        return s.mail(SENDER)[0] == 250
                except (OSError, smtplib.SMTPException):
                    return False
            check(harness.wait_until(can_submit, bounded(5), 0.1),
                  "allow-ip 127.0.0.1: submission without AUTH accepted")
            t0 = time.monotonic()
            accepted, errors = submit_all(h)
            check_eq((len(accepted), errors[:3]), (N, []),
                     "%d messages submitted from %d sessions (%.1f s)" % (
                         N, SESSIONS, time.monotonic() - t0))
            check_eq(len(h.queue_ids()), N, "engine off: all %d in the spool" % N)
            check_eq(sink.count(), 0, "engine off: nothing delivered")
            h.stop()

            # engine on; kill -9 once the sink has some but not all
            h.sets["mta.enabled"] = "yes"
            t0 = time.monotonic()
            h.start(timeout=30)
            low = 3000
            seen = harness.wait_until(lambda: sink.count() >= low, bounded(60), 0.005)
            at_kill = sink.count()
            h.kill9()
            t_kill = time.monotonic() - t0
            check(seen, "engine on: the sink completed >= %d messages (%d after %.1f s)"
                  % (low, at_kill, t_kill))
            time.sleep(0.5)
            after = sink.count()
            check(after < N, "killed while delivering: sink had %d of %d at the kill, "
                  "%d after" % (at_kill, N, after))
            left_ids = h.queue_ids()
            print("# after kill -9: %d messages still in the spool (%d delivered by "
                  "then); the spool files of the rest are gone" % (len(left_ids), after))
            check(len(left_ids) >= N - after,
                  "after kill -9: no message left the spool without reaching the sink "
                  "(%d in the spool, %d received)" % (len(left_ids), after))

            # restart and let it finish
            start = len(h.read_log())
            t0 = time.monotonic()
            h.start(timeout=30)
            done = harness.wait_until(lambda: not h.queue_ids(), bounded(120), 0.2)
            check(done, "after restart: spool empty within 120 s (%.1f s; %d left)"
                  % (time.monotonic() - t0, len(h.queue_ids())))
            check(h.wait_queue_empty(bounded(10)), "queue list: 0 recipients")
            check_eq(h.uncommitted(), [], "no uncommitted file left in the spool")
            harness.wait_until(lambda: sink.count() >= N, bounded(10))
            time.sleep(0.5)

            counts = collections.Counter()
            bad = []
            for m in sink.messages():
                mm = SEQ.search(m.data)
                if mm is None or not m.complete:
                    bad.append(m.path)
                    continue
                counts[int(mm.group(1))] += 1
            check_eq(bad, [], "every capture is a complete message with an X-Seq")
            missing = sorted(set(range(N)) - set(counts))
            check_eq(missing[:20], [], "every one of the %d messages was received "
                     "(%d missing)" % (N, len(missing)))
            dups = sum(c - 1 for c in counts.values())
            twice = sum(1 for c in counts.values() if c > 1)
            print("# duplicates after kill -9: %d extra copies of %d messages "
                  "(killed at %d delivered)" % (dups, twice, at_kill))
            check(dups <= MAX_DUPLICATES, "duplicates %d <= %d" % (dups, MAX_DUPLICATES))
            check_eq(sum(counts.values()), N + dups, "sink total = %d + duplicates" % N)
            check_eq(h.log_events(start=start, level="error"), [],
                     "no delivery error logged after the restart")
            h.stop()
    finally:
        sink.stop()


if __name__ == "__main__":
    harness.run(main)
