#!/usr/bin/python3
"""test_queue_control - `herald queue list|hold|release|flush|retry|delete`
against a running engine whose mail an aiosmtpd sink defers (451 on
RCPT) until the test lets it through.  mta.retry_schedule=1h, so that a
recipient is tried again only when a command says so.

  - list and its filters --state, --destination, --account; "N recipients";
  - hold: a held recipient is not tried, even by flush;
  - flush: every deferred recipient is tried now (delivered once the sink
    accepts);
  - retry ID: that recipient is tried now, no other;
  - release (then flush): the held one is delivered;
  - delete --destination: recipients gone, spool file removed, no DSN;
  - queue show: the history has held, released, delivered, deleted.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_queue_control.py
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import sinks  # noqa: E402
from deliverylib import (SENDER, check_same_message, delivery_sets, dsns,  # noqa: E402
                         message, token, wait_states)
from harness import check, check_eq, submit  # noqa: E402

DEADLINE = time.time() + 100
LATER = "451 4.3.0 queue test: come back later"


def bounded(t):
    left = DEADLINE - time.time()
    assert left > 0, "test ran out of time"
    return max(0.5, min(t, left))


def affected(out):
    m = re.search(r"^(\d+) recipients?$", out, re.M)
    return int(m.group(1)) if m else None


def listed(h, *args):
    rows, n = h.queue_list(*args)
    check_eq(n, len(rows), "queue list %s: 'N recipients' counts the lines"
             % " ".join(args))
    return sorted(r["rcpt"] for r in rows), rows


def main():
    sink = sinks.AioSink("127.0.0.1", name="queue.sink.test")
    dsn = sinks.AioSink("127.0.0.1", name="dsn.sink.test")
    sink.rcpt_fail(r"^q", LATER)
    try:
        sink.start()
        dsn.start()
        h = harness.Herald(sets=delivery_sets(mta__retry_schedule="1h"), start=False)
        with h:
            h.write_destinations("q.test relay=127.0.0.1:%d\nq2.test relay=127.0.0.1:%d\n"
                                 "example.com relay=127.0.0.1:%d\n"
                                 % (sink.port, sink.port, dsn.port))
            h.sets["dns.local_data"] = h.write_file("local-data.conf",
                                                    'local-zone: "test." static\n')
            h.start()
            msgs = {}
            s = harness.smtp_login(h)
            for rcpt in ("q1@q.test", "q2@q.test", "q3@q2.test"):
                t = token()
                d = message(t, to=rcpt, subject="queue control")
                msgs[rcpt] = (submit(h, SENDER, [rcpt], d, s=s), t, d)
            s.quit()
            for rcpt, (qid, _, _) in msgs.items():
                ev = h.wait_events(1, bounded(5), event="deferred", id=qid, rcpt=rcpt)
                check_eq(len(ev), 1, "%s: deferred by the sink's 451" % rcpt)

            got, rows = listed(h)
            check_eq(got, ["q1@q.test", "q2@q.test", "q3@q2.test"],
                     "queue list: the 3 deferred recipients")
            check(all(r["state"] == "deferred" and r["attempts"] == "1" and
                      r["sender"] == SENDER and r["next"] != "-" for r in rows),
                  "queue list: state deferred, 1 attempt, next attempt time, sender",
                  rows)
            check(all(LATER in r["reply"] for r in rows),
                  "queue list: LAST_REPLY is the sink's 451", rows)
            check_eq(listed(h, "--state", "deferred")[0],
                     ["q1@q.test", "q2@q.test", "q3@q2.test"], "list --state deferred")
            check_eq(listed(h, "--state", "held")[0], [], "list --state held: none")
            check_eq(listed(h, "--destination", "q.test")[0], ["q1@q.test", "q2@q.test"],
                     "list --destination q.test")
            check_eq(listed(h, "--destination", "q2.test")[0], ["q3@q2.test"],
                     "list --destination q2.test")
            check_eq(len(listed(h, "--account", "acme")[0]), 3, "list --account acme")

            # hold q1; flush tries the other two (the sink accepts now)
            q1, t1, d1 = msgs["q1@q.test"]
            check_eq(affected(h.cli("queue", "hold", q1)), 1, "queue hold ID: 1 recipient")
            check_eq(listed(h, "--state", "held")[0], ["q1@q.test"], "list --state held")
            # retry ID: tried again now (the sink still says 451)
            q2 = msgs["q2@q.test"][0]
            check_eq(affected(h.cli("queue", "retry", q2)), 1, "queue retry ID: 1 recipient")
            ev = h.wait_events(2, bounded(5), event="deferred", id=q2)
            check(len(ev) == 2 and ev[1].get("attempt") == "2",
                  "retry ID: tried again at once (attempt=2, deferred again)", ev)
            check_eq(len(h.log_events(event="deferred", id=msgs["q3@q2.test"][0])), 1,
                     "retry ID: the others not tried")
            sink.clear_faults()
            tries = len(sink.rcpt_attempts)
            check_eq(affected(h.cli("queue", "flush")), 2,
                     "queue flush: the 2 deferred recipients (not the held one)")
            for rcpt in ("q2@q.test", "q3@q2.test"):
                qid, t, d = msgs[rcpt]
                ev = h.wait_events(1, bounded(5), event="delivered", id=qid, rcpt=rcpt)
                check_eq(len(ev), 1, "flush: %s delivered at once (retry_schedule 1h)" % rcpt)
                got = [m for m in sink.received() if t.encode() in m.data]
                check_eq(len(got), 1, "flush: %s received once" % rcpt)
                check_same_message(got[0].data, d, "flushed " + rcpt)
            time.sleep(min(1.0, DEADLINE - time.time()))
            check_eq([a for a in sink.rcpt_attempts[tries:] if a == "q1@q.test"], [],
                     "held: q1 not tried by flush")
            check_eq(listed(h)[0], ["q1@q.test"], "queue list: only the held one left")

            # release (back to deferred, or tried at once), then flush
            check_eq(affected(h.cli("queue", "release", q1)), 1, "queue release ID: 1")
            h.cli("queue", "flush")
            ev = h.wait_events(1, bounded(5), event="delivered", id=q1, rcpt="q1@q.test")
            check_eq(len(ev), 1, "release + flush: q1 delivered")
            check_eq(len([m for m in sink.received() if t1.encode() in m.data]), 1,
                     "q1 received once")
            check(h.wait_queue_empty(bounded(5)), "queue empty")

            # delete --destination
            sink.rcpt_fail(r"^q", LATER)
            s = harness.smtp_login(h)
            dq = [submit(h, SENDER, [r], message(token(), to=r), s=s)
                  for r in ("q4@q.test", "q5@q.test")]
            keep = submit(h, SENDER, ["q6@q2.test"], message(token(), to="q6@q2.test"), s=s)
            s.quit()
            for qid in dq + [keep]:
                check_eq(len(h.wait_events(1, bounded(5), event="deferred", id=qid)), 1,
                         "%s deferred" % qid)
            before = len(dsns(dsn))
            check_eq(affected(h.cli("queue", "delete", "--destination", "q.test")), 2,
                     "queue delete --destination q.test: 2 recipients")
            check(harness.wait_until(lambda: not (set(dq) & h.queue_ids()), bounded(5)),
                  "delete: their spool files removed")
            check_eq(listed(h)[0], ["q6@q2.test"], "queue list: q2.test's recipient stays")
            check_eq(affected(h.cli("queue", "delete", keep)), 1, "queue delete ID: 1")
            check(h.wait_queue_empty(bounded(5)), "queue empty after the deletes")
            time.sleep(min(1.0, DEADLINE - time.time()))
            check_eq(len(dsns(dsn)), before, "deleted recipients: no DSN")

            # the history
            want = ["queued", "deferred", "held", "released", "delivered"]
            st, out = wait_states(h, q1, "q1@q.test", want)
            check_eq(st, want, "queue show %s: %s" % (q1, ", ".join(want)))
            st, out = wait_states(h, dq[0], "q4@q.test", ["deleted"], last_only=True)
            check_eq(st[-1:], ["deleted"], "queue show: a deleted recipient's last state")
            h.stop()
    finally:
        sink.stop()
        dsn.stop()


if __name__ == "__main__":
    harness.run(main)
