#!/usr/bin/python3
"""test_postfix_delivery - Herald delivering to a real Postfix 3.7 smtpd
(a private instance: sinks.PostfixSink), which announces PIPELINING,
STARTTLS, CHUNKING, SMTPUTF8, DSN and delivers into a Maildir.

  - two recipients in one transaction: two copies, each the submitted
    message with Herald's Received: in front (after Postfix's own);
  - STARTTLS (tls=may): Postfix's Received: says TLS, event=delivered has
    tls=TLSv1.x;
  - Postfix's session counters: STARTTLS in each of Herald's sessions,
    one message transfer (DATA, or BDAT: the engine does not use CHUNKING
    today) per message;
  - a 1 MB 8-bit message arrives byte for byte;
  - SMTPUTF8: a UTF-8 recipient is delivered (Postfix: UTF8SMTPS);
  - Postfix's 554 5.7.1 Relay access denied: bounced, a DSN quoting it.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_postfix_delivery.py
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import sinks  # noqa: E402
from deliverylib import (SENDER, check_failed_dsn, check_same_message,  # noqa: E402
                         delivery_sets, dsns_for, message, token)
from harness import check, check_eq, submit  # noqa: E402

DEADLINE = time.time() + 100


def bounded(t):
    left = DEADLINE - time.time()
    assert left > 0, "test ran out of time"
    return max(0.5, min(t, left))


def at_postfix(pfx, tok, n, what):
    sinks.wait_until(lambda: len([m for m in pfx.messages() if tok.encode() in m.data]) >= n,
                     bounded(15))
    got = [m for m in pfx.messages() if tok.encode() in m.data]
    check_eq(len(got), n, "%s: Postfix delivered %d cop%s" % (what, n, "y" if n == 1 else "ies"))
    return got


def main():
    pfx = sinks.PostfixSink("127.0.0.1", domains=["pfx.test"], name="pfx.sink.test")
    dsn = sinks.AioSink("127.0.0.1", name="dsn.sink.test")
    try:
        pfx.start()
        dsn.start()
        h = harness.Herald(sets=delivery_sets(), start=False)
        with h:
            h.write_destinations("pfx.test relay=127.0.0.1:%d\n"
                                 "relaydenied.test relay=127.0.0.1:%d\n"
                                 "example.com relay=127.0.0.1:%d\n"
                                 % (pfx.port, pfx.port, dsn.port))
            h.sets["dns.local_data"] = h.write_file("local-data.conf",
                                                    'local-zone: "test." static\n')
            h.start()

            t = token()
            d = message(t, to="a1@pfx.test", subject="to postfix")
            qid = submit(h, SENDER, ["a1@pfx.test", "a2@pfx.test"], d)
            ev = h.wait_events(2, bounded(15), event="delivered", id=qid)
            check_eq(sorted(e["rcpt"] for e in ev), ["a1@pfx.test", "a2@pfx.test"],
                     "Postfix: both recipients delivered")
            check(all(re.fullmatch(r"TLSv1\.[23]", e.get("tls", "")) for e in ev),
                  "Postfix: event=delivered has tls=TLSv1.x (STARTTLS offered, tls=may)", ev)
            got = at_postfix(pfx, t, 2, "two recipients")
            check_eq(sorted(m.rcpt for m in got), ["a1@pfx.test", "a2@pfx.test"],
                     "Postfix: one copy per recipient")
            for m in got:
                check_eq(m.mail_from, SENDER, "Postfix: Return-Path is the sender")
                check(m.tls, "Postfix's Received: says TLS", m.received)
                check_same_message(m.data, d, "at Postfix")

            t8 = token()
            big = message(t8, to="b@pfx.test", subject="1 MB 8-bit",
                          extra="caf\u00e9 \u00fc\u00df ".encode() + b"\xe2\x82\xac ",
                          size=1000000)
            qid = submit(h, SENDER, ["b@pfx.test"], big, mail_options=["BODY=8BITMIME"])
            check_eq(len(h.wait_events(1, bounded(15), event="delivered", id=qid)), 1,
                     "1 MB 8-bit: delivered")
            got = at_postfix(pfx, t8, 1, "1 MB 8-bit")
            check_same_message(got[0].data, big, "1 MB 8-bit at Postfix")

            tu = token()
            rcpt = "z\u00f6e@pfx.test"
            du = ("From: <a@example.com>\r\nTo: <" + rcpt + ">\r\nSubject: utf8 " + tu +
                  "\r\nMessage-ID: <" + tu + "@example.com>\r\n"
                  "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\nn\u1ed9i dung\r\n").encode()
            s = harness.smtp_login(h)
            qid = submit(h, SENDER, [rcpt], du, mail_options=["SMTPUTF8", "BODY=8BITMIME"], s=s)
            s.quit()
            check_eq(len(h.wait_events(1, bounded(15), event="delivered", id=qid)), 1,
                     "SMTPUTF8: delivered to Postfix")
            got = at_postfix(pfx, tu, 1, "SMTPUTF8")
            check_eq((got[0].rcpt, got[0].protocol), (rcpt, "UTF8SMTPS"),
                     "SMTPUTF8: Postfix got the UTF-8 recipient, with UTF8SMTPS")
            check_same_message(got[0].data, du, "SMTPUTF8 at Postfix")

            # what Postfix counted in Herald's sessions
            # (Herald keeps an idle connection mta.connection_cache_time,
            # 2 s: Postfix logs the session when it ends)
            sess = harness.wait_until(
                lambda: [x for x in pfx.smtpd_sessions() if x.get("mail")],
                bounded(8)) or []
            check(sess and all(x.get("starttls") == 1 for x in sess),
                  "Postfix: every session of Herald did STARTTLS", sess)
            check_eq(sum(x.get("data", 0) + (1 if x.get("bdat") else 0) for x in sess), 3,
                     "Postfix: 3 message transfers (DATA or BDAT) for 3 messages")

            tr = token()
            qid = submit(h, SENDER, ["r@relaydenied.test"],
                         message(tr, to="r@relaydenied.test", subject="relay denied"))
            ev = h.wait_events(1, bounded(10), event="bounced", id=qid)
            check(len(ev) == 1 and "Relay access denied" in ev[0].get("reply", ""),
                  "Postfix 554 5.7.1 Relay access denied: bounced", ev)
            found = harness.wait_until(lambda: dsns_for(dsn, "r@relaydenied.test"), bounded(10))
            check_eq(len(found), 1, "Relay access denied: a DSN")
            check_failed_dsn(found[0][0], found[0][1], "r@relaydenied.test", r"5\.7\.1",
                             r"554 5\.7\.1 .*Relay access denied", "Postfix refusal DSN", tok=tr)
            check(h.wait_queue_empty(bounded(10)), "queue empty")
            h.stop()
    finally:
        pfx.stop()
        dsn.stop()


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("# SKIP: a private Postfix instance needs root")
        sys.exit(77)                 # meson: skipped
    harness.run(main)
