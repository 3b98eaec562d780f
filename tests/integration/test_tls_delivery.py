#!/usr/bin/python3
"""test_tls_delivery - STARTTLS on the way out, against aiosmtpd sinks
with self-signed certificates made by `openssl req`.

  - tls=may (the default) to a sink offering STARTTLS: the sink sees TLS,
    event=delivered has tls=TLSv1.x;
  - tls=none to a sink offering STARTTLS: no TLS;
  - Herald ends its TLS sessions with QUIT;
  - tls=encrypt to a sink without STARTTLS: deferred, the reason names
    TLS, nothing delivered;
  - tls=verify to relay=mx.tls.test:PORT (DNS local data: 127.0.0.1)
    with mta.tls_ca_file = the sink's certificate: delivered over TLS;
  - tls=verify to a sink whose certificate that CA file does not hold:
    deferred, nothing delivered;
  - tls=verify to a name the certificate does not carry: deferred;
  - tls=encrypt for a domain whose relay (host and port) is also a
    tls=may domain's, to a server without STARTTLS, after mail to the
    tls=may domain opened the way: still deferred, never sent in clear
    (the per-destination TLS policy holds when destinations share
    connections);
  - restarted without mta.tls_ca_file: tls=verify deferred.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_tls_delivery.py
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import sinks  # noqa: E402
from deliverylib import (SENDER, check_same_message, delivery_sets,  # noqa: E402
                         message, token)
from harness import check, check_eq, submit  # noqa: E402

DEADLINE = time.time() + 100

LOCAL_DATA = """\
local-zone: "test." static
local-data: "mx.tls.test. IN A 127.0.0.1"
local-data: "other.tls.test. IN A 127.0.0.1"
local-data: "mx2.tls.test. IN A 127.0.0.1"
"""


def bounded(t):
    left = DEADLINE - time.time()
    assert left > 0, "test ran out of time"
    return max(0.5, min(t, left))


def send(h, rcpt, what):
    t = token()
    d = message(t, to=rcpt, subject=what)
    return submit(h, SENDER, [rcpt], d), t, d


def delivered(h, qid, rcpt, sink, tok, data, what):
    ev = h.wait_events(1, bounded(10), event="delivered", id=qid, rcpt=rcpt)
    check_eq(len(ev), 1, "%s: event=delivered" % what)
    got = [m for m in sink.received() if tok.encode() in m.data]
    check_eq(len(got), 1, "%s: the sink received it once" % what)
    check_same_message(got[0].data, data, what)
    return ev[0], got[0]


def deferred_not_delivered(h, qid, rcpt, sinks_, tok, why_rx, what):
    ev = h.wait_events(1, bounded(8), event="deferred", id=qid, rcpt=rcpt)
    check_eq(len(ev), 1, "%s: event=deferred" % what)
    why = " ".join("%s=%s" % kv for kv in ev[0].items())
    check(re.search(why_rx, why) is not None,
          "%s: the reason matches %s" % (what, why_rx), why)
    time.sleep(min(1.0, DEADLINE - time.time()))
    check_eq(h.log_events(event="delivered", id=qid), [], "%s: not delivered" % what)
    check_eq([m for s in sinks_ for m in s.received() if tok.encode() in m.data], [],
             "%s: no sink received the message" % what)
    rows, _ = h.queue_list()
    check(any(r["id"] == qid and r["rcpt"] == rcpt for r in rows),
          "%s: still in queue list" % what, rows)
    out = h.cli("queue", "delete", qid)
    check(re.search(r"^1 recipients?$", out, re.M) is not None,
          "%s: queue delete: 1 recipient" % what, out)


TLS_RX = r"(?i)tls|starttls|certificate|verif"


def main():
    tls1 = sinks.AioSink("127.0.0.1", tls=True, tls_cn="mx.tls.test", name="tls1.sink.test")
    tls2 = sinks.AioSink("127.0.0.1", tls=True, tls_cn="mx2.tls.test", name="tls2.sink.test")
    tls3 = sinks.AioSink("127.0.0.1", tls=True, tls_cn="mx3.tls.test", name="tls3.sink.test")
    plain = sinks.AioSink("127.0.0.1", name="plain.sink.test")
    shared = sinks.AioSink("127.0.0.1", name="shared.sink.test")
    all_sinks = [tls1, tls2, tls3, plain, shared]
    try:
        for s in all_sinks:
            s.start()
        h = harness.Herald(sets=delivery_sets(), start=False)
        with h:
            h.write_destinations("\n".join([
                "may.test relay=127.0.0.1:%d" % tls1.port,
                "none.test relay=127.0.0.1:%d tls=none" % tls3.port,
                "sharedmay.test relay=127.0.0.1:%d tls=may" % shared.port,
                "sharedenc.test relay=127.0.0.1:%d tls=encrypt" % shared.port,
                "enc.test relay=127.0.0.1:%d tls=encrypt" % plain.port,
                "ver.test relay=mx.tls.test:%d tls=verify" % tls1.port,
                "ver2.test relay=mx2.tls.test:%d tls=verify" % tls2.port,
                "badname.test relay=other.tls.test:%d tls=verify" % tls1.port,
                ""]))
            h.sets["dns.local_data"] = h.write_file("local-data.conf", LOCAL_DATA)
            ca = h.write_file("ca.pem", open(tls1.cert_file).read())
            h.sets["mta.tls_ca_file"] = ca
            h.start()

            qid, t, d = send(h, "m@may.test", "tls=may")
            ev, m = delivered(h, qid, "m@may.test", tls1, t, d, "tls=may")
            check(m.tls and m.tls_version.startswith("TLSv1."),
                  "tls=may: the sink saw STARTTLS (%s)" % m.tls_version)
            check(re.fullmatch(r"TLSv1\.[23]", ev.get("tls", "")) is not None,
                  "tls=may: event=delivered has tls=TLSv1.x", ev)
            check_eq(ev.get("tls"), m.tls_version, "tls=may: the version the sink saw")
            check_eq(m.ehlo, "herald.test", "tls=may: EHLO again after STARTTLS")

            qid, t, d = send(h, "n@none.test", "tls=none")
            ev, m = delivered(h, qid, "n@none.test", tls3, t, d, "tls=none")
            check(not m.tls, "tls=none: no STARTTLS though offered")
            check(not ev.get("tls", "").startswith("TLS"),
                  "tls=none: event=delivered has no TLS version", ev)

            qid, t, d = send(h, "v@ver.test", "tls=verify")
            ev, m = delivered(h, qid, "v@ver.test", tls1, t, d,
                              "tls=verify with the CA, name mx.tls.test")
            check(m.tls, "tls=verify: over TLS")
            check(re.fullmatch(r"TLSv1\.[23]", ev.get("tls", "")) is not None,
                  "tls=verify: event=delivered has tls=TLSv1.x", ev)
            check(ev.get("relay", "").startswith("mx.tls.test[127.0.0.1]:%d" % tls1.port),
                  "tls=verify: relay=mx.tls.test[127.0.0.1]:PORT", ev)

            check(harness.wait_until(lambda: tls1.current == 0, bounded(5)),
                  "the TLS sessions are over")
            check_eq(tls1.quits, tls1.connections,
                     "every TLS session (%d) ended with QUIT" % tls1.connections)

            qid, t, d = send(h, "s@sharedmay.test", "tls=may, shared relay")
            delivered(h, qid, "s@sharedmay.test", shared, t, d,
                      "tls=may to a server without STARTTLS")
            qid, t, _ = send(h, "e@sharedenc.test", "tls=encrypt, shared relay")
            deferred_not_delivered(h, qid, "e@sharedenc.test", all_sinks, t, TLS_RX,
                                   "tls=encrypt sharing its relay with a tls=may domain")

            qid, t, _ = send(h, "e@enc.test", "tls=encrypt, no STARTTLS")
            deferred_not_delivered(h, qid, "e@enc.test", all_sinks, t, TLS_RX,
                                   "tls=encrypt to a server without STARTTLS")
            qid, t, _ = send(h, "w@ver2.test", "tls=verify, unknown CA")
            deferred_not_delivered(h, qid, "w@ver2.test", all_sinks, t, TLS_RX,
                                   "tls=verify, certificate not from the CA file")
            qid, t, _ = send(h, "b@badname.test", "tls=verify, wrong name")
            deferred_not_delivered(h, qid, "b@badname.test", all_sinks, t, TLS_RX,
                                   "tls=verify, certificate for another name")
            check(h.wait_queue_empty(bounded(10)), "queue empty")
            h.stop()

            # again without mta.tls_ca_file: the system's CAs do not know it
            del h.sets["mta.tls_ca_file"]
            start = len(h.read_log())
            h.start()
            qid, t, _ = send(h, "v2@ver.test", "tls=verify, no CA file")
            check(len(h.wait_events(1, bounded(8), start=start, event="deferred",
                                    id=qid)) == 1,
                  "no mta.tls_ca_file: tls=verify deferred")
            deferred_not_delivered(h, qid, "v2@ver.test", all_sinks, t, TLS_RX,
                                   "tls=verify without the CA")
            h.stop()
    finally:
        for s in all_sinks:
            s.stop()


if __name__ == "__main__":
    harness.run(main)
