#!/usr/bin/python3
"""test_limits_delivery - per-destination pacing and the delay warning,
measured at aiosmtpd sinks.

  - rate=5/s: 20 messages submitted at once arrive over at least 2.5 s
    (and within 10 s); the same 20 to a destination without a rate
    arrive faster than that (the control);
  - messages_per_connection=2 (concurrency=1): no connection carries more
    than 2 messages, all 6 arrive, and connections are reused (some carry
    2);
  - mta.delay_warning=2s with a destination that defers forever: one
    delay DSN (Action: delayed, Status 4.x.x, Will-Retry-Until) for
    NOTIFY=DELAY,FAILURE, even after more retries; none for
    NOTIFY=FAILURE; deleting the recipients sends nothing more.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_limits_delivery.py
"""
import collections
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import sinks  # noqa: E402
from deliverylib import (SENDER, delivered_parts, delivery_sets, dsns,  # noqa: E402
                         dsns_for, message, token)
from harness import check, check_eq, submit  # noqa: E402

DEADLINE = time.time() + 100


def bounded(t):
    left = DEADLINE - time.time()
    assert left > 0, "test ran out of time"
    return max(0.5, min(t, left))


def send_many(h, rcpt, n):
    toks = [token() for _ in range(n)]
    sent = {}
    s = harness.smtp_login(h)
    for t in toks:
        d = message(t, to=rcpt, subject="limits")
        sent[t] = (submit(h, SENDER, [rcpt], d, s=s), d)
    s.quit()
    return sent


def arrivals(sink, sent, what):
    got = sink.wait_messages(len(sent), bounded(20))
    mine = [(m, t) for m in got for t in sent if t.encode() in m.data]
    check_eq(sorted(t for _, t in mine), sorted(sent),
             "%s: all %d arrived, once each" % (what, len(sent)))
    check(all(delivered_parts(m.data)[2] == sent[t][1] for m, t in mine),
          "%s: each the submitted message plus Received:" % what)
    mine = [m for m, _ in mine]
    times = sorted(m.time for m in mine)
    return mine, times[-1] - times[0]


def main():
    rated = sinks.AioSink("127.0.0.1", name="rate.sink.test")
    free = sinks.AioSink("127.0.0.1", name="free.sink.test")
    mpc = sinks.AioSink("127.0.0.1", name="mpc.sink.test", slow={"DATA": 0.1})
    stuck = sinks.AioSink("127.0.0.1", name="stuck.sink.test")
    dsn = sinks.AioSink("127.0.0.1", name="dsn.sink.test")
    stuck.rcpt_fail(r"", "451 4.4.5 stuck: try again later")
    all_sinks = [rated, free, mpc, stuck, dsn]
    try:
        for s in all_sinks:
            s.start()
        h = harness.Herald(sets=delivery_sets(mta__delay_warning="2s"), start=False)
        with h:
            h.write_destinations("\n".join([
                "rate.test relay=127.0.0.1:%d rate=5/s" % rated.port,
                "free.test relay=127.0.0.1:%d" % free.port,
                "mpc.test relay=127.0.0.1:%d messages_per_connection=2 concurrency=1"
                % mpc.port,
                "stuck.test relay=127.0.0.1:%d" % stuck.port,
                "example.com relay=127.0.0.1:%d" % dsn.port, ""]))
            h.sets["dns.local_data"] = h.write_file("local-data.conf",
                                                    'local-zone: "test." static\n')
            h.start()

            # delay warning: start first, it needs a few seconds
            t_warn = time.monotonic()
            s = harness.smtp_login(h)
            qd = submit(h, SENDER, ["d@stuck.test"], message(token(), to="d@stuck.test"),
                        rcpt_options=["NOTIFY=DELAY,FAILURE"], s=s)
            qf = submit(h, SENDER, ["f@stuck.test"], message(token(), to="f@stuck.test"),
                        rcpt_options=["NOTIFY=FAILURE"], s=s)
            s.quit()

            # rate
            sent = send_many(h, "r@rate.test", 20)
            _, span = arrivals(rated, sent, "rate=5/s")
            check(2.5 <= span <= 10, "rate=5/s: 20 messages arrived over %.1f s "
                  "(>= 2.5 s)" % span)
            sent = send_many(h, "f@free.test", 20)
            _, span_free = arrivals(free, sent, "no rate")
            check(span_free < 2.5, "control, no rate: 20 messages arrived over %.1f s "
                  "(< 2.5 s)" % span_free)

            # messages per connection
            sent = send_many(h, "m@mpc.test", 6)
            mine, _ = arrivals(mpc, sent, "messages_per_connection=2")
            per_conn = collections.Counter(m.conn for m in mine)
            check(max(per_conn.values()) <= 2,
                  "messages_per_connection=2: at most 2 per connection %s"
                  % dict(per_conn))
            check(len(per_conn) >= 3 and 2 in per_conn.values(),
                  "messages_per_connection=2: %d connections, some reused"
                  % len(per_conn), dict(per_conn))
            check_eq(mpc.max_current, 1, "concurrency=1: one connection at a time")

            # the delay warning, once
            found = harness.wait_until(lambda: dsns_for(dsn, "d@stuck.test"),
                                       max(0.5, min(8 - (time.monotonic() - t_warn), 8)))
            check_eq(len(found), 1, "delay_warning=2s: a delay DSN for NOTIFY=DELAY")
            m, d = found[0]
            r = d.recipient("d@stuck.test")
            check_eq((m.mail_from, m.rcpt_tos, d.ok), ("", [SENDER], True),
                     "delay DSN: from <> to the sender, multipart/report")
            check_eq(r.get("action"), "delayed", "delay DSN: Action: delayed")
            check(re.fullmatch(r"4\.\d+\.\d+", r.get("status", "")) is not None,
                  "delay DSN: Status 4.x.x (%s)" % r.get("status"))
            check("will-retry-until" in r, "delay DSN: Will-Retry-Until given", r)
            check(re.search(r"451 4\.4\.5 stuck", r.get("diagnostic-code", "")) is not None,
                  "delay DSN: Diagnostic-Code has the sink's reply", r)
            check_eq(h.log_events(event="bounced", id=qd) + h.log_events(event="expired", id=qd),
                     [], "delay DSN: the recipient is still queued")
            left = 4 - (time.monotonic() - t_warn - 2)
            time.sleep(max(0, min(left, DEADLINE - time.time())))
            check(len(h.log_events(event="deferred", id=qd)) >= 3,
                  "more retries after the warning (%d deferrals)"
                  % len(h.log_events(event="deferred", id=qd)))
            check_eq(len(dsns_for(dsn, "d@stuck.test")), 1, "only one delay DSN")
            check_eq(dsns_for(dsn, "f@stuck.test"), [], "NOTIFY=FAILURE: no delay DSN")
            n = len(dsns(dsn))
            for q in (qd, qf):
                h.cli("queue", "delete", q)
            check(h.wait_queue_empty(bounded(5)), "queue empty after delete")
            time.sleep(min(1.0, DEADLINE - time.time()))
            check_eq(len(dsns(dsn)), n, "deleted: no more DSNs")
            h.stop()
    finally:
        for s in all_sinks:
            s.stop()


if __name__ == "__main__":
    harness.run(main)
