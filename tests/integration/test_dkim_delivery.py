#!/usr/bin/python3
"""test_dkim_delivery - DKIM signatures Herald adds on the way out,
verified by Debian's python3-dkim (dkimpy, not written here) with the TXT
records `herald dkim keygen` printed.

Sender domains of the account acme: rsa.example (an RSA key),
ed.example (an Ed25519 key), both.example (--algorithm both --selector
duo: two signatures) and example.com (no key: not signed).  Each message
goes to an aiosmtpd sink and to Postfix's smtp-sink; at each, every
DKIM-Signature verifies, has the expected d=, s=, a=, c=relaxed/relaxed,
h= with from, no l=; the message with the signatures taken off is the
submitted one plus Herald's Received: field.  Controls: a changed body
and a record of another key do not verify.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_dkim_delivery.py
"""
import os
import re
import sys
import time

import dkim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import sinks  # noqa: E402
from deliverylib import (check_same_message, delivered_parts,  # noqa: E402
                         delivery_sets, message, token)
from harness import check, check_eq, submit  # noqa: E402

DEADLINE = time.time() + 100

RECORD = re.compile(r'^(\S+)\._domainkey\.(\S+)\. IN TXT \(((?:\s*"[^"]*")+)\s*\)', re.M)


def bounded(t):
    left = DEADLINE - time.time()
    assert left > 0, "test ran out of time"
    return max(0.5, min(t, left))


def keygen(h, domain, *args):
    """Run `herald dkim keygen`; return {selector: TXT value} from what it
    printed."""
    out = h.cli("dkim", "keygen", domain, *args)
    recs = {}
    for sel, dom, strings in RECORD.findall(out):
        check_eq(dom, domain, "dkim keygen %s: record for %s" % (domain, domain))
        recs[sel] = "".join(re.findall(r'"([^"]*)"', strings))
    check(recs, "dkim keygen %s %s: prints a TXT record" % (domain, " ".join(args)), out)
    return recs


def tags(field):
    """The tags of a DKIM-Signature field (bytes) as a dict of str."""
    v = field.split(b":", 1)[1].decode()
    v = re.sub(r"\s+", "", v)
    return dict(t.split("=", 1) for t in v.split(";") if "=" in t)


def dnsfunc_of(txt):
    """A python3-dkim dnsfunc answering from txt, which maps
    "sel._domainkey.dom." to the TXT value; None for other names."""
    def dnsfunc(name, timeout=5):
        n = name.decode() if isinstance(name, bytes) else name
        v = txt.get(n.lower())
        return v.encode() if v is not None else None
    return dnsfunc


def verifies(d, idx, dnsfunc):
    """dkim.DKIM.verify, with its exceptions (a body hash mismatch
    raises) as False."""
    try:
        return d.verify(idx=idx, dnsfunc=dnsfunc) is True
    except dkim.DKIMException:
        return False


def verify_all(data, txt, what):
    """Verify every DKIM-Signature of data with python3-dkim."""
    dnsfunc = dnsfunc_of(txt)
    sigs, _, _ = delivered_parts(data)
    d = dkim.DKIM(data)
    for i in range(len(sigs)):
        check(verifies(d, i, dnsfunc),
              "%s: DKIM-Signature %d of %d verifies (python3-dkim)" % (what, i + 1, len(sigs)))
    return sigs


def check_signed(data, sent, txt, want, what):
    """want: [(domain, selector, algorithm)] in any order."""
    sigs = verify_all(data, txt, what)
    got = []
    for s in sigs:
        t = tags(s)
        got.append((t.get("d"), t.get("s"), t.get("a")))
        check(t.get("c") == "relaxed/relaxed" and "l" not in t and
              "from" in t.get("h", "").lower().split(":"),
              "%s: %s signature: c=relaxed/relaxed, h= has from, no l=" % (what, t.get("a")),
              t)
    check_eq(sorted(got), sorted(want), "%s: signatures d=/s=/a=" % what)
    check_same_message(data, sent, what, dkim=len(want))
    # control: the verifier is not always true
    if sigs:
        tampered = dkim.DKIM(data.replace(b"body of ", b"Body of ", 1))
        check(not any(verifies(tampered, i, dnsfunc_of(txt)) for i in range(len(sigs))),
              "%s: a changed body does not verify" % what)
        # From is oversigned: a second From: added does not verify
        _, rcvd, rest = delivered_parts(data)
        added = b"".join(sigs + rcvd) + b"From: <mallory@attacker.test>\r\n" + rest
        d = dkim.DKIM(added)
        check(not any(verifies(d, i, dnsfunc_of(txt)) for i in range(len(sigs))),
              "%s: a second From: added does not verify (From oversigned)" % what)


def main():
    aio = sinks.AioSink("127.0.0.1", name="dkim.aio.test")
    pf = sinks.SmtpSink("127.0.0.1", name="dkim.pf.test")
    try:
        aio.start()
        pf.start()
        h = harness.Herald(sets=delivery_sets(), start=False)
        with h:
            for dom in ("rsa.example", "ed.example", "both.example"):
                h.cli("domain", "add", "--account", "acme", dom)
            txt = {}
            rsa = keygen(h, "rsa.example", "--algorithm", "rsa")
            ed = keygen(h, "ed.example", "--algorithm", "ed25519")
            both = keygen(h, "both.example", "--algorithm", "both", "--selector", "duo")
            check_eq(sorted(both), ["duo-ed25519", "duo-rsa"],
                     "keygen --algorithm both --selector duo: selectors duo-rsa, duo-ed25519")
            check(len(rsa) == 1 and "k=rsa" in list(rsa.values())[0],
                  "keygen --algorithm rsa: one record with k=rsa", rsa)
            check(len(ed) == 1 and "k=ed25519" in list(ed.values())[0],
                  "keygen --algorithm ed25519: one record with k=ed25519", ed)
            for dom, recs in (("rsa.example", rsa), ("ed.example", ed),
                              ("both.example", both)):
                for sel, v in recs.items():
                    txt["%s._domainkey.%s." % (sel, dom)] = v
            h.write_destinations("dk.test relay=127.0.0.1:%d\npfdk.test relay=127.0.0.1:%d\n"
                                 % (aio.port, pf.port))
            h.sets["dns.local_data"] = h.write_file("local-data.conf",
                                                    'local-zone: "test." static\n')
            h.start()

            (rsa_sel,), (ed_sel,) = list(rsa), list(ed)
            cases = [("rsa.example", [("rsa.example", rsa_sel, "rsa-sha256")]),
                     ("ed.example", [("ed.example", ed_sel, "ed25519-sha256")]),
                     ("both.example", [("both.example", "duo-rsa", "rsa-sha256"),
                                       ("both.example", "duo-ed25519", "ed25519-sha256")]),
                     ("example.com", [])]
            sent = []
            s = harness.smtp_login(h)
            for dom, want in cases:
                t = token()
                sender = "a@" + dom
                d = message(t, to="x@dk.test", subject="dkim " + dom, sender=sender)
                qid = submit(h, sender, ["x@dk.test", "y@pfdk.test"], d, s=s)
                sent.append((dom, want, t, d, qid))
            s.quit()
            for dom, want, t, d, qid in sent:
                ev = h.wait_events(2, bounded(10), event="delivered", id=qid)
                check_eq(len(ev), 2, "%s: delivered to both sinks" % dom)
                got = [m for m in aio.received() if t.encode() in m.data]
                check_eq(len(got), 1, "%s: aiosmtpd sink received it" % dom)
                check_signed(got[0].data, d, txt, want, "%s at aiosmtpd" % dom)
                got = [m for m in pf.messages() if t.encode() in m.data]
                check_eq(len(got), 1, "%s: smtp-sink captured it" % dom)
                check_signed(got[0].data, d, txt, want, "%s at smtp-sink" % dom)

            # control: the RSA signature does not verify with another RSA key
            other = keygen(h, "example.com", "--algorithm", "rsa", "--selector", "other")
            m = [x for x in aio.received() if sent[0][2].encode() in x.data][0]
            fake = {("%s._domainkey.rsa.example." % rsa_sel): other["other"]}
            check(not verifies(dkim.DKIM(m.data), 0, dnsfunc_of(fake)), "control: RSA signature with another key's record fails")
            h.stop()
    finally:
        aio.stop()
        pf.stop()


if __name__ == "__main__":
    harness.run(main)
