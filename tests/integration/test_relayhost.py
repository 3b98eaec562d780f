#!/usr/bin/python3
"""test_relayhost - mta.relayhost: everything through a smarthost (an
aiosmtpd sink with STARTTLS that requires AUTH), with
mta.relayhost_user/password, and mta.helo_name.

  - mail to a domain nobody can resolve (no DNS at all here) goes to the
    smarthost, over TLS, authenticated as the configured user, EHLO
    mta.helo_name; the bytes are the submitted message plus Received:;
  - a destination with its own relay= does not go to the smarthost, and
    the smarthost's credentials are not used there: not to a relay
    without AUTH, nor sent to a relay that offers AUTH after STARTTLS;
  - a wrong password: deferred (the reason names the AUTH failure),
    nothing delivered.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_relayhost.py
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
USER, PASSWORD = "relayuser", "s3cret pass-word"


def bounded(t):
    left = DEADLINE - time.time()
    assert left > 0, "test ran out of time"
    return max(0.5, min(t, left))


def herald(smart, direct, password, other=None):
    h = harness.Herald(sets=delivery_sets(
        mta__relayhost="[127.0.0.1]:%d" % smart.port, mta__relayhost_user=USER,
        mta__relayhost_password=password, mta__helo_name="out.herald.test"),
        start=False)
    h.write_destinations("direct.test relay=127.0.0.1:%d\n" % direct.port +
                         ("other.test relay=127.0.0.1:%d\n" % other.port if other else ""))
    h.sets["dns.local_data"] = h.write_file("local-data.conf",
                                            'local-zone: "test." static\n')
    return h


def main():
    smart = sinks.AioSink("127.0.0.1", tls=True, tls_cn="smart.test", name="smart.sink.test",
                          auth=(USER, PASSWORD))
    direct = sinks.AioSink("127.0.0.1", name="direct.sink.test")
    other = sinks.AioSink("127.0.0.1", tls=True, tls_cn="other.test", name="other.sink.test",
                          auth=("someone", "else"), auth_required=False)
    try:
        smart.start()
        direct.start()
        other.start()
        h = herald(smart, direct, PASSWORD, other)
        with h:
            h.start()
            t1, t2 = token(), token()
            d1 = message(t1, to="x@anywhere.example", subject="via the smarthost")
            d2 = message(t2, to="y@direct.test", subject="own relay")
            s = harness.smtp_login(h)
            q1 = submit(h, SENDER, ["x@anywhere.example", "z@elsewhere.example"], d1, s=s)
            q2 = submit(h, SENDER, ["y@direct.test"], d2, s=s)
            s.quit()
            ev = h.wait_events(2, bounded(10), event="delivered", id=q1)
            check_eq(sorted(e["rcpt"] for e in ev), ["x@anywhere.example", "z@elsewhere.example"],
                     "relayhost: both recipients (two domains, no DNS) delivered")
            check(all(e.get("relay", "").endswith("[127.0.0.1]:%d" % smart.port) for e in ev),
                  "relayhost: relay= is the smarthost", ev)
            got = [m for m in smart.received() if t1.encode() in m.data]
            check_eq(sorted(r for m in got for r in m.rcpt_tos),
                     ["x@anywhere.example", "z@elsewhere.example"],
                     "relayhost: the smarthost got both recipients, once each")
            m = got[0]
            check_eq((m.tls, m.auth_user, m.ehlo), (True, USER, "out.herald.test"),
                     "relayhost: over TLS, AUTH as %s, EHLO mta.helo_name" % USER)
            check(all(a[3] for a in smart.auth_attempts),
                  "relayhost: the password only ever went over TLS", smart.auth_attempts)
            for x in got:
                check_same_message(x.data, d1, "via the smarthost")

            ev = h.wait_events(1, bounded(10), event="delivered", id=q2, rcpt="y@direct.test")
            check(len(ev) == 1 and ev[0].get("relay", "").endswith(":%d" % direct.port),
                  "relay= of the destinations file beats mta.relayhost", ev)
            check_eq([m for m in smart.received() if t2.encode() in m.data], [],
                     "the smarthost did not get the relay= domain's mail")
            got = [m for m in direct.received() if t2.encode() in m.data]
            check_eq(len(got), 1, "the relay= sink got it")
            check_same_message(got[0].data, d2, "own relay")

            t3 = token()
            d3 = message(t3, to="o@other.test", subject="relay offering AUTH")
            q3 = submit(h, SENDER, ["o@other.test"], d3)
            ev = h.wait_events(1, bounded(10), event="delivered", id=q3, rcpt="o@other.test")
            check_eq(len(ev), 1, "relay= offering AUTH (not requiring it): delivered")
            check_eq(other.auth_attempts, [],
                     "the smarthost's user and password were not sent to another relay")
            got = [m for m in other.received() if t3.encode() in m.data]
            check(len(got) == 1 and got[0].auth_user is None, "delivered there without AUTH")
            check(h.wait_queue_empty(bounded(5)), "queue empty")
            h.stop()

        # wrong password
        n_before = len(smart.received())
        h = herald(smart, direct, "not the password")
        with h:
            h.start()
            t = token()
            qid = submit(h, SENDER, ["w@anywhere.example"], message(t, to="w@anywhere.example"))
            ev = h.wait_events(1, bounded(8), event="deferred", id=qid)
            check_eq(len(ev), 1, "wrong relayhost password: deferred")
            why = " ".join("%s=%s" % kv for kv in ev[0].items())
            check(re.search(r"(?i)auth|535|credential", why) is not None,
                  "wrong password: the reason names the AUTH failure", why)
            check(any(not a[2] for a in smart.auth_attempts),
                  "the smarthost saw the failed AUTH")
            time.sleep(min(1.0, DEADLINE - time.time()))
            check_eq(len(smart.received()), n_before, "wrong password: nothing delivered")
            check_eq(h.log_events(event="delivered", id=qid), [], "no event=delivered")
            h.stop()
    finally:
        smart.stop()
        direct.stop()
        other.stop()


if __name__ == "__main__":
    harness.run(main)
