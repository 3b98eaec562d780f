#!/usr/bin/python3
"""test_dns_delivery - mail routes from DNS (libunbound with local data,
no upstream resolver: dns.resolv_conf=""), to aiosmtpd sinks on
127.0.0.4-8 sharing the port mta.smtp_port.

  - MX preference: MX 10 and MX 20 both up: every message at the 10 one;
  - 421 greeting at MX 10: the message goes to MX 20;
  - implicit MX: only an A record: delivered to that address;
  - null MX (MX 0 .): bounced at once (no deferral), a DSN saying so;
  - NXDOMAIN: bounced at once, a DSN;
  - an MX host without an address: bounced (no hosts), a DSN;
  - an MX host with only an AAAA record (::1): delivered over IPv6;
  - a 554 greeting skips the host (as Postfix's smtp_skip_5xx_greeting):
    MX 20 gets the mail; at the only MX it is deferred, not bounced.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_dns_delivery.py
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

HOSTS = ["127.0.0.4", "127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9",
         "::1"]

LOCAL_DATA = """\
local-zone: "test." static
local-data: "pref.test. IN MX 20 mx-b.pref.test."
local-data: "pref.test. IN MX 10 mx-a.pref.test."
local-data: "mx-a.pref.test. IN A 127.0.0.4"
local-data: "mx-b.pref.test. IN A 127.0.0.5"
local-data: "amx.test. IN A 127.0.0.6"
local-data: "gmx.test. IN MX 10 g1.gmx.test."
local-data: "gmx.test. IN MX 20 g2.gmx.test."
local-data: "g1.gmx.test. IN A 127.0.0.7"
local-data: "g2.gmx.test. IN A 127.0.0.8"
local-data: "nullmx.test. IN MX 0 ."
local-data: "noaddr.test. IN MX 10 nohost.noaddr.test."
local-data: "nohost.noaddr.test. IN TXT \\"no address here\\""
local-data: "v6.test. IN MX 10 mx6.v6.test."
local-data: "mx6.v6.test. IN AAAA ::1"
local-data: "g5.test. IN MX 10 mx.g5.test."
local-data: "mx.g5.test. IN A 127.0.0.9"
local-data: "g5b.test. IN MX 10 mx.g5.test."
local-data: "g5b.test. IN MX 20 g2.gmx.test."
"""


def bounded(t):
    left = DEADLINE - time.time()
    assert left > 0, "test ran out of time"
    return max(0.5, min(t, left))


def delivered_to(h, qid, rcpt, sink, tok, data, relay_host, what):
    ev = h.wait_events(1, bounded(10), event="delivered", id=qid, rcpt=rcpt)
    check_eq(len(ev), 1, "%s: event=delivered" % what)
    check_eq(ev[0].get("relay"), "%s[%s]:%d" % (relay_host, sink.host, sink.port),
             "%s: relay=%s[%s]:%d" % (what, relay_host, sink.host, sink.port))
    got = [m for m in sink.received() if tok.encode() in m.data]
    check_eq(len(got), 1, "%s: the sink at %s received it once" % (what, sink.host))
    check_same_message(got[0].data, data, what)


def bounced_at_once(h, dsn_sink, rcpt, status_rx, why_rx, what):
    t = token()
    t0 = time.monotonic()
    qid = submit(h, SENDER, [rcpt], message(t, to=rcpt, subject=what))
    ev = h.wait_events(1, bounded(10), event="bounced", id=qid, rcpt=rcpt)
    took = time.monotonic() - t0
    check_eq(len(ev), 1, "%s: event=bounced" % what)
    check(took < 5, "%s: bounced at once (%.1f s)" % (what, took))
    check_eq(h.log_events(event="deferred", id=qid), [], "%s: never deferred" % what)
    found = harness.wait_until(lambda: dsns_for(dsn_sink, rcpt), bounded(10))
    check_eq(len(found), 1, "%s: one DSN at the sender's sink" % what)
    m, d = found[0]
    check_failed_dsn(m, d, rcpt, status_rx, None, what + " DSN", tok=t)
    r = d.recipient(rcpt)
    said = d.text + " " + r.get("diagnostic-code", "") + " " + ev[0].get("reply", "")
    check(re.search(why_rx, said) is not None,
          "%s: the DSN/log says why (%s)" % (what, why_rx),
          lambda: (d.text[:500], r, ev[0]))
    check(harness.wait_until(lambda: qid not in h.queue_ids(), bounded(5)),
          "%s: spool file removed" % what)
    return r


def affected_n(out):
    m = re.search(r"^(\d+) recipients?$", out, re.M)
    return int(m.group(1)) if m else None


def main():
    port = sinks.free_port_on(HOSTS)
    a = sinks.AioSink("127.0.0.4", port, name="mx-a.sink.test")
    b = sinks.AioSink("127.0.0.5", port, name="mx-b.sink.test")
    impl = sinks.AioSink("127.0.0.6", port, name="amx.sink.test")
    g1 = sinks.AioSink("127.0.0.7", port, name="g1.sink.test")
    g2 = sinks.AioSink("127.0.0.8", port, name="g2.sink.test")
    g5 = sinks.AioSink("127.0.0.9", port, name="g5.sink.test")
    v6 = sinks.AioSink("::1", port, name="v6.sink.test")
    dsn = sinks.AioSink("127.0.0.1", name="dsn.sink.test")
    all_sinks = [a, b, impl, g1, g2, g5, v6, dsn]
    try:
        for s in all_sinks:
            s.start()
    except Exception:
        for s in all_sinks:
            s.stop()
        raise
    g1.greeting("421 4.3.2 g1 is too busy, try another MX")
    g5.greeting("554 5.7.1 g5 takes no mail from you")
    try:
        h = harness.Herald(sets=delivery_sets(mta__smtp_port=str(port)), start=False)
        with h:
            h.write_destinations("example.com relay=127.0.0.1:%d\n" % dsn.port)
            h.sets["dns.local_data"] = h.write_file("local-data.conf", LOCAL_DATA)
            h.start()

            # MX preference
            toks = [token() for _ in range(5)]
            sent = {}
            s = harness.smtp_login(h)
            for t in toks:
                d = message(t, to="p@pref.test", subject="MX preference")
                sent[t] = (submit(h, SENDER, ["p@pref.test"], d, s=s), d)
            s.quit()
            for t in toks:
                qid, d = sent[t]
                delivered_to(h, qid, "p@pref.test", a, t, d, "mx-a.pref.test",
                             "MX 10 of pref.test")
            check_eq(b.received(), [], "MX 20 of pref.test received nothing")
            check_eq(b.connections, 0, "MX 20 of pref.test was not even connected to")

            # 421 greeting at MX 10 -> MX 20
            t = token()
            d = message(t, to="g@gmx.test", subject="421 greeting at MX 10")
            qid = submit(h, SENDER, ["g@gmx.test"], d)
            delivered_to(h, qid, "g@gmx.test", g2, t, d, "g2.gmx.test",
                         "421 greeting at MX 10, MX 20")
            check(g1.connections >= 1, "the 421 MX was tried first (%d connections)"
                  % g1.connections)
            check_eq(g1.received(), [], "nothing delivered to the 421 MX")

            # implicit MX
            t = token()
            d = message(t, to="i@amx.test", subject="implicit MX")
            qid = submit(h, SENDER, ["i@amx.test"], d)
            delivered_to(h, qid, "i@amx.test", impl, t, d, "amx.test",
                         "implicit MX (A record only)")

            # IPv6 only
            t = token()
            d = message(t, to="v@v6.test", subject="IPv6 MX")
            qid = submit(h, SENDER, ["v@v6.test"], d)
            ev = h.wait_events(1, bounded(10), event="delivered", id=qid, rcpt="v@v6.test")
            check_eq(len(ev), 1, "MX with only AAAA ::1: delivered")
            check(ev[0].get("relay", "").startswith("mx6.v6.test[") and "::1" in
                  ev[0].get("relay", ""), "relay=mx6.v6.test[::1]...", ev)
            got = [m for m in v6.received() if t.encode() in m.data]
            check(len(got) == 1 and got[0].peer[0] == "::1",
                  "the [::1] sink received it from ::1", got)
            check_same_message(got[0].data, d, "over IPv6")

            # 554 greeting: the host is skipped (as Postfix's smtp_skip_5xx_greeting)
            t = token()
            d = message(t, to="y@g5b.test", subject="554 greeting at MX 10")
            qid = submit(h, SENDER, ["y@g5b.test"], d)
            delivered_to(h, qid, "y@g5b.test", g2, t, d, "g2.gmx.test",
                         "554 greeting at MX 10, MX 20")
            check_eq(g5.received(), [], "nothing delivered to the 554 MX")
            t = token()
            qid = submit(h, SENDER, ["x@g5.test"], message(t, to="x@g5.test"))
            ev = h.wait_events(1, bounded(10), event="deferred", id=qid, rcpt="x@g5.test")
            check(len(ev) == 1 and "554 5.7.1 g5 takes no mail" in ev[0].get("reply", ""),
                  "554 greeting at the only MX: deferred, the reply quoted", ev)
            check_eq(h.log_events(event="bounced", id=qid), [], "554 greeting: not bounced")
            check_eq(affected_n(h.cli("queue", "delete", qid)), 1, "queue delete: 1")
            time.sleep(min(1.0, DEADLINE - time.time()))
            check_eq(dsns_for(dsn, "x@g5.test"), [], "554 greeting, deleted: no DSN")

            # permanent DNS failures
            r = bounced_at_once(h, dsn, "n@nullmx.test", r"5\.\d+\.\d+",
                                r"(?i)null[ -]?mx|accepts? no mail|does not accept mail",
                                "null MX")
            print("# null MX DSN Status: %s (RFC 7505 suggests 5.1.10)" % r.get("status"))
            bounced_at_once(h, dsn, "x@nx.test", r"5\.\d+\.\d+",
                            r"(?i)nxdomain|does not exist|no such domain|not found",
                            "NXDOMAIN")
            bounced_at_once(h, dsn, "y@noaddr.test", r"5\.\d+\.\d+",
                            r"(?i)no[ -]hosts|no address|has no a|no mx host",
                            "MX host without address")

            check(h.wait_queue_empty(bounded(10)), "queue empty at the end")
            h.stop()
    finally:
        for s in all_sinks:
            s.stop()


if __name__ == "__main__":
    harness.run(main)
