#!/usr/bin/python3
"""test_delivery - Herald delivers submitted mail to real SMTP servers it
did not write: python3-aiosmtpd (sinks.AioSink) and Postfix's smtp-sink
(sinks.SmtpSink), routed by the destinations file.

Checked: the bytes a server receives are the submitted message with only
Herald's Received: field in front; log lines event=delivered/deferred/
bounced/dsn; `herald queue list` and `queue show` (the history: queued,
deferred, delivered, with relay and reply); the spool file removed once
final.  Several recipients of one domain in one transaction, split at
recipients_per_message.  Faults, each from a real server: 4xx on RCPT
then accepted (deferred, then delivered); 5xx on RCPT (bounced, DSN to
the sender's own sink, parsed with the email package); NOTIFY=NEVER (no
DSN); 451 on DATA then accepted; the connection dropped in the middle of
DATA (retried, delivered exactly once); a server that never greets
(greeting timeout: deferred); two MX hosts with the first dead (DNS local
data): delivered via the second; a destination with concurrency=2 and 30
messages from several sessions: at most 2 connections at once at the
server; max_queue_lifetime: expired and a DSN.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_delivery.py
"""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import sinks  # noqa: E402
from deliverylib import (SENDER, check_failed_dsn, check_same_message,  # noqa: E402
                         delivered_parts, delivery_sets, dsns, dsns_for, message,
                         show_events, split_fields, states_of, token, wait_states)
from harness import check, check_eq, submit  # noqa: E402

DEADLINE = time.time() + 110      # the whole script, inside meson's timeout


def left():
    t = DEADLINE - time.time()
    assert t > 0, "test ran out of time"
    return t


def bounded(t):
    return max(0.5, min(t, left()))


class World:
    """The sinks of the main instance and its destinations file."""

    def __init__(self):
        self.dsn = sinks.AioSink("127.0.0.1", name="dsn.sink.test")    # example.com
        self.a = sinks.AioSink("127.0.0.1", name="a.sink.test")        # a.test
        self.multi = sinks.AioSink("127.0.0.1", name="multi.sink.test")  # multi.test
        self.drop = sinks.AioSink("127.0.0.1", name="drop.sink.test")  # drop.test
        self.conc = sinks.AioSink("127.0.0.1", name="conc.sink.test",  # conc.test
                                  slow={"DATA": 0.15})
        self.conc10 = sinks.AioSink("127.0.0.1", name="conc10.sink.test",  # conc10.test
                                    slow={"DATA": 0.15})
        self.pf = sinks.SmtpSink("127.0.0.1", name="pf.sink.test")     # pf.test
        self.pfbad = sinks.SmtpSink("127.0.0.1", name="pfbad.sink.test",  # pfbad.test
                                    flags=["-f", "RCPT", "-B",
                                           "550 5.7.1 smtp-sink refuses this recipient"])
        self.silent = sinks.SilentServer("127.0.0.1")                  # silent.test
        # mx.test: MX 10 -> 127.0.0.2 (nothing there), MX 20 -> 127.0.0.3
        self.mx_port = sinks.free_port_on(["127.0.0.2", "127.0.0.3"])
        self.mx2 = sinks.AioSink("127.0.0.3", self.mx_port, name="mx2.sink.test")
        self.all = [self.dsn, self.a, self.multi, self.drop, self.conc, self.conc10, self.pf,
                    self.pfbad, self.silent, self.mx2]

    def start(self):
        for s in self.all:
            s.start()

    def stop(self):
        for s in self.all:
            try:
                s.stop()
            except Exception:                      # noqa: BLE001
                pass

    def destinations(self):
        r = lambda s: "relay=127.0.0.1:%d" % s.port   # noqa: E731
        return "\n".join([
            "# test_delivery",
            "example.com %s" % r(self.dsn),
            "a.test %s" % r(self.a),
            "multi.test %s recipients_per_message=3" % r(self.multi),
            "drop.test %s" % r(self.drop),
            "conc.test %s concurrency=2" % r(self.conc),
            "conc10.test %s concurrency=10 initial_concurrency=10" % r(self.conc10),
            "pf.test %s" % r(self.pf),
            "pfbad.test %s" % r(self.pfbad),
            "silent.test %s" % r(self.silent),
            ""])

    def local_data(self):
        return "\n".join([
            'local-zone: "test." static',
            'local-data: "mx.test. IN MX 10 mx1.mx.test."',
            'local-data: "mx.test. IN MX 20 mx2.mx.test."',
            'local-data: "mx1.mx.test. IN A 127.0.0.2"',
            'local-data: "mx2.mx.test. IN A 127.0.0.3"',
            ""])


def new_herald(world, **more):
    h = harness.Herald(sets=delivery_sets(**more), start=False)
    h.write_destinations(world.destinations())
    h.sets["dns.local_data"] = h.write_file("local-data.conf", world.local_data())
    h.start()
    return h


def ev_for(h, event, qid, rcpt=None, n=1, timeout=10.0):
    """Wait for n `event=EVENT id=QID [rcpt=RCPT]` lines; return them."""
    match = {"event": event, "id": qid}
    if rcpt:
        match["rcpt"] = rcpt
    return h.wait_events(n, bounded(timeout), **match)


def gone_from_spool(h, qid, timeout=5.0):
    return harness.wait_until(lambda: qid not in h.queue_ids(), bounded(timeout))


RELAY_RX = r"\S*\[127\.0\.0\.1\]:%d"


# ------------------------------------------------------------ plain delivery

def test_basic(h, w):
    """One message to an aiosmtpd sink, one to smtp-sink: bytes, log,
    queue list, queue show, spool."""
    ta, tp = token(), token()
    da = message(ta, to="one@a.test", subject="basic aiosmtpd")
    dp = message(tp, to="one@pf.test", subject="basic smtp-sink")
    qa = submit(h, SENDER, ["one@a.test"], da)
    qp = submit(h, SENDER, ["one@pf.test"], dp)

    ev = ev_for(h, "delivered", qa, "one@a.test")
    check_eq(len(ev), 1, "aiosmtpd: one event=delivered id=%s rcpt=one@a.test" % qa)
    check(re.fullmatch(RELAY_RX % w.a.port, ev[0].get("relay", "")) is not None,
          "aiosmtpd: delivered relay=HOST[127.0.0.1]:%d" % w.a.port, ev[0])
    check(ev[0].get("reply", "").startswith("250 2.0.0 Ok: queued as m"),
          "aiosmtpd: delivered reply= is the sink's 250 reply", ev[0])
    check(not ev[0].get("tls", "").startswith("TLS"),
          "aiosmtpd without STARTTLS: tls= is not a TLS version", ev[0])
    got = [m for m in w.a.received() if ta.encode() in m.data]
    check_eq(len(got), 1, "aiosmtpd: received the message once")
    m = got[0]
    check_eq((m.mail_from, m.rcpt_tos), (SENDER, ["one@a.test"]),
             "aiosmtpd: envelope MAIL FROM/RCPT TO as submitted")
    check_eq(m.ehlo, "herald.test", "aiosmtpd: EHLO herald.test (mta.helo_name "
             "defaults to smtpd.hostname)")
    check_same_message(m.data, da, "aiosmtpd")

    ev = ev_for(h, "delivered", qp, "one@pf.test")
    check_eq(len(ev), 1, "smtp-sink: one event=delivered id=%s" % qp)
    check(re.fullmatch(RELAY_RX % w.pf.port, ev[0].get("relay", "")) is not None,
          "smtp-sink: delivered relay=HOST[127.0.0.1]:%d" % w.pf.port, ev[0])
    check(ev[0].get("reply", "").startswith("250 2.0.0 Ok"),
          "smtp-sink: reply= is smtp-sink's 250", ev[0])
    got = [x for x in w.pf.wait_messages(1, bounded(5)) if tp.encode() in x.data]
    check_eq(len(got), 1, "smtp-sink: captured the message once")
    check_eq((got[0].mail_from, got[0].rcpt_tos, got[0].helo),
             (SENDER, ["one@pf.test"], "herald.test"),
             "smtp-sink: envelope and EHLO name")
    check_same_message(got[0].data, dp, "smtp-sink")

    for qid, rcpt, port in ((qa, "one@a.test", w.a.port), (qp, "one@pf.test", w.pf.port)):
        check(gone_from_spool(h, qid), "%s: spool file removed once delivered" % qid)
        st, show = wait_states(h, qid, rcpt, ["queued", "delivered"])
        ev = show_events(show)
        check_eq(st, ["queued", "delivered"],
                 "queue show %s: history queued, delivered" % qid)
        d = [f for s, r, f, _ in ev if s == "delivered"][0]
        check(re.fullmatch(RELAY_RX % port, d.get("relay", "")) is not None and
              d.get("reply", "").startswith("250 "),
              "queue show %s: delivered line has relay= and reply=\"250 ...\"" % qid, d)
    rows, n = h.queue_list()
    check(not any(r["id"] in (qa, qp) for r in rows),
          "queue list: the delivered messages are not listed", rows)


def test_multi_rcpt(h, w):
    """Recipients of one domain go in one transaction, split at
    recipients_per_message."""
    t = token()
    rcpts = ["r%d@a.test" % i for i in range(1, 5)]
    d = message(t, to=rcpts[0], subject="four recipients")
    qid = submit(h, SENDER, rcpts, d)
    ev = ev_for(h, "delivered", qid, n=4)
    check_eq(sorted(e["rcpt"] for e in ev), sorted(rcpts),
             "4 recipients at a.test: 4 event=delivered")
    got = [m for m in w.a.received() if t.encode() in m.data]
    check_eq(len(got), 1, "4 recipients at a.test: the sink got ONE message")
    check_eq(sorted(got[0].rcpt_tos), sorted(rcpts), "... with the 4 RCPT TO")
    check_same_message(got[0].data, d, "4 recipients")

    t = token()
    rcpts = ["s%d@multi.test" % i for i in range(1, 6)]
    d = message(t, to=rcpts[0], subject="five recipients, 3 per message")
    qid = submit(h, SENDER, rcpts, d)
    ev = ev_for(h, "delivered", qid, n=5)
    check_eq(len(ev), 5, "5 recipients at multi.test: 5 event=delivered")
    got = [m for m in w.multi.received() if t.encode() in m.data]
    check_eq(sorted(len(m.rcpt_tos) for m in got), [2, 3],
             "recipients_per_message=3: two transactions, 3 and 2 recipients")
    check_eq(sorted(r for m in got for r in m.rcpt_tos), sorted(rcpts),
             "recipients_per_message=3: every recipient exactly once")
    for m in got:
        check_same_message(m.data, d, "multi.test part")
    check(gone_from_spool(h, qid), "5 recipients: spool file removed")


def test_dsn_params(h, w):
    """To a server announcing DSN (smtp-sink): RET, ENVID and NOTIFY are
    passed on (smtpc.h: 'NOTIFY, ORCPT when the server announced DSN')."""
    t = token()
    d = message(t, to="dsnp@pf.test", subject="dsn parameters")
    qid = submit(h, SENDER, ["dsnp@pf.test"], d,
                 mail_options=["RET=HDRS", "ENVID=env" + t],
                 rcpt_options=["NOTIFY=FAILURE,DELAY"])
    check_eq(len(ev_for(h, "delivered", qid)), 1, "DSN parameters: delivered")
    got = [x for x in w.pf.messages() if t.encode() in x.data]
    check_eq(len(got), 1, "DSN parameters: smtp-sink captured it")
    margs, rargs = got[0].mail_args.upper(), got[0].rcpt_args[0].upper()
    check("RET=HDRS" in margs and ("ENVID=ENV" + t.upper()) in margs,
          "DSN parameters: MAIL FROM carries RET=HDRS ENVID=", got[0].mail_args)
    check("NOTIFY=FAILURE,DELAY" in rargs,
          "DSN parameters: RCPT TO carries NOTIFY=FAILURE,DELAY", got[0].rcpt_args)


def test_added_fields(h, w):
    """A message without Message-ID/Date: Herald's Received:, Message-ID:
    and Date: in front, the rest as submitted."""
    t = token()
    d = (b"From: <a@example.com>\r\nTo: <add@a.test>\r\nSubject: no id " +
         t.encode() + b"\r\n\r\nbody\r\n")
    qid = submit(h, SENDER, ["add@a.test"], d)
    check_eq(len(ev_for(h, "delivered", qid, "add@a.test")), 1,
             "no Message-ID/Date: delivered")
    m = [x for x in w.a.received() if t.encode() in x.data][0]
    _, rcvd, rest = delivered_parts(m.data)
    mid, rest = split_fields(rest, b"Message-ID")
    date, rest = split_fields(rest, b"Date")
    check(len(rcvd) == 1 and len(mid) == 1 and len(date) == 1 and
          re.match(rb"Message-ID: <[^>]+@herald\.test>\r\n$", mid[0]) is not None,
          "no Message-ID/Date: Received:, Message-ID: <...@herald.test>, Date: "
          "in front", lambda: m.data[:500])
    check_eq(rest, d, "no Message-ID/Date: the rest byte for byte")


def test_8bit(h, w):
    """8BITMIME and SMTPUTF8 to aiosmtpd (announces both); SMTPUTF8 to
    smtp-sink (does not announce it): refused by Herald itself (smtpc.h:
    553 5.6.7), bounced with a DSN."""
    t = token()
    d = (b"From: <a@example.com>\r\nTo: <e@a.test>\r\nSubject: 8bit " + t.encode() +
         b"\r\nMessage-ID: <" + t.encode() + b"@example.com>\r\n"
         b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\ncaf\xc3\xa9 \xff\xfe raw\r\n")
    qid = submit(h, SENDER, ["e@a.test"], d, mail_options=["BODY=8BITMIME"])
    check_eq(len(ev_for(h, "delivered", qid, "e@a.test")), 1, "8BITMIME: delivered")
    m = [x for x in w.a.received() if t.encode() in x.data][0]
    check("BODY=8BITMIME" in m.mail_options, "8BITMIME: MAIL FROM has BODY=8BITMIME",
          m.mail_options)
    check_same_message(m.data, d, "8BITMIME")

    t = token()
    sender, rcpt = "jöran@example.com", "zoë@a.test"
    d = ("From: Jöran <jöran@example.com>\r\nTo: <zoë@a.test>\r\nSubject: grüße " +
         t + "\r\nMessage-ID: <" + t + "@example.com>\r\n"
         "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\nĐây là nội dung\r\n").encode()
    s = harness.smtp_login(h)
    qid = submit(h, sender, [rcpt], d, mail_options=["SMTPUTF8", "BODY=8BITMIME"], s=s)
    s.quit()
    check_eq(len(ev_for(h, "delivered", qid, rcpt)), 1, "SMTPUTF8 to aiosmtpd: delivered")
    m = [x for x in w.a.received() if t.encode() in x.data][0]
    check_eq((m.mail_from, m.rcpt_tos, "SMTPUTF8" in m.mail_options),
             (sender, [rcpt], True), "SMTPUTF8: UTF-8 envelope, MAIL FROM has SMTPUTF8")
    check_same_message(m.data, d, "SMTPUTF8")

    t = token()
    rcpt = "zoë@pf.test"
    d = ("From: <a@example.com>\r\nTo: <zoë@pf.test>\r\nSubject: utf8 " + t +
         "\r\nMessage-ID: <" + t + "@example.com>\r\n"
         "Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\nnội dung\r\n").encode()
    s = harness.smtp_login(h)
    qid = submit(h, SENDER, [rcpt], d, mail_options=["SMTPUTF8", "BODY=8BITMIME"], s=s)
    s.quit()
    ev = ev_for(h, "bounced", qid, rcpt, timeout=5)
    check(len(ev) == 1 and "5.6.7" in ev[0].get("reply", ""),
          "SMTPUTF8 to smtp-sink (no SMTPUTF8): bounced 5.6.7", ev)
    check_eq([x for x in w.pf.messages() if t.encode() in x.data], [],
             "SMTPUTF8 to smtp-sink: nothing sent there")
    found = harness.wait_until(lambda: dsns_for(w.dsn, rcpt), bounded(10))
    check_eq(len(found), 1, "SMTPUTF8 to smtp-sink: one DSN")
    check_failed_dsn(found[0][0], found[0][1], rcpt, r"5\.6\.7", None,
                     "SMTPUTF8 DSN", tok=t)


# ------------------------------------------------------------ faults

def test_rcpt_4xx(h, w):
    w.a.rcpt_fail(r"^temp1@", "450 4.2.0 temp1: mailbox busy, try later", times=1)
    t = token()
    d = message(t, to="temp1@a.test", subject="4xx on RCPT once")
    t0 = time.monotonic()
    qid = submit(h, SENDER, ["temp1@a.test"], d)
    ev = ev_for(h, "deferred", qid, "temp1@a.test", timeout=5)
    check_eq(len(ev), 1, "450 on RCPT: event=deferred")
    check("450 4.2.0 temp1: mailbox busy" in ev[0].get("reply", ""),
          "450 on RCPT: deferred reply= has the sink's reply", ev[0])
    ev = ev_for(h, "delivered", qid, "temp1@a.test", timeout=10)
    check_eq(len(ev), 1, "450 on RCPT once: then event=delivered (retry_schedule 1s)")
    check(time.monotonic() - t0 >= 0.9, "450 on RCPT: the retry waited about 1 s")
    got = [m for m in w.a.received() if t.encode() in m.data]
    check_eq(len(got), 1, "450 on RCPT once: delivered exactly once")
    check_same_message(got[0].data, d, "450 then delivered")
    st, show = wait_states(h, qid, "temp1@a.test", ["queued", "deferred", "delivered"])
    check(st == ["queued", "deferred", "delivered"],
          "queue show: queued, deferred, delivered", show)
    dfr = [f for s, r, f, _ in show_events(show) if s == "deferred"][0]
    check("450 4.2.0" in dfr.get("reply", ""), "queue show: deferred line has the 450 reply",
          dfr)
    check(gone_from_spool(h, qid), "450 then delivered: spool file removed")


def test_rcpt_5xx(h, w):
    """550 from aiosmtpd for one of two recipients, and from smtp-sink:
    bounced, a DSN each at the sender's sink.  NOTIFY=NEVER: no DSN."""
    w.a.rcpt_fail(r"^nouser@", "550 5.1.1 nouser: no such user (aiosmtpd sink)")
    w.a.rcpt_fail(r"^never@", "550 5.1.1 never: no such user (aiosmtpd sink)")
    t1, t2, t3 = token(), token(), token()
    d1 = message(t1, to="nouser@a.test", subject="550 on RCPT")
    q1 = submit(h, SENDER, ["ok5@a.test", "nouser@a.test"], d1)
    d2 = message(t2, to="x@pfbad.test", subject="550 from smtp-sink")
    q2 = submit(h, SENDER, ["x@pfbad.test"], d2)
    d3 = message(t3, to="never@a.test", subject="NOTIFY=NEVER")
    q3 = submit(h, SENDER, ["never@a.test"], d3, rcpt_options=["NOTIFY=NEVER"])

    ev = ev_for(h, "bounced", q1, "nouser@a.test", timeout=5)
    check_eq(len(ev), 1, "550 on RCPT: event=bounced rcpt=nouser@a.test")
    check("550 5.1.1 nouser: no such user" in ev[0].get("reply", ""),
          "550 on RCPT: bounced reply= has the sink's text", ev[0])
    check_eq(len(ev_for(h, "delivered", q1, "ok5@a.test")), 1,
             "the other recipient of that message: delivered")
    check_eq(len(h.log_events(event="deferred", id=q1)), 0, "550: never deferred")
    got = [m for m in w.a.received() if t1.encode() in m.data]
    check_eq([m.rcpt_tos for m in got], [["ok5@a.test"]],
             "550 for one recipient: the message went to the other one only")
    check_eq(len(h.wait_events(1, bounded(10), event="dsn", id=q1)), 1,
             "550: event=dsn id=%s" % q1)
    found = harness.wait_until(lambda: dsns_for(w.dsn, "nouser@a.test"), bounded(10))
    check_eq(len(found), 1, "550: one DSN about nouser@a.test at example.com's sink")
    m, d = found[0]
    check_failed_dsn(m, d, "nouser@a.test", r"5\.1\.1",
                     r"^smtp; ?550 5\.1\.1 nouser: no such user \(aiosmtpd sink\)",
                     "550 DSN", tok=t1)
    check(d.recipient("ok5@a.test") is None,
          "550 DSN: the delivered recipient is not reported")
    check("nouser@a.test" in d.text, "550 DSN: the text part names the recipient")
    wait_states(h, q1, "nouser@a.test", ["queued", "bounced"])
    st, show = wait_states(h, q1, "ok5@a.test", ["queued", "delivered"])
    check_eq((states_of(show, "nouser@a.test"), st),
             (["queued", "bounced"], ["queued", "delivered"]),
             "queue show: nouser queued, bounced; ok5 queued, delivered")
    check(gone_from_spool(h, q1), "550: spool file removed once all final")

    ev = ev_for(h, "bounced", q2, "x@pfbad.test", timeout=5)
    check(len(ev) == 1 and "550 5.7.1 smtp-sink refuses" in ev[0].get("reply", ""),
          "smtp-sink 550 on RCPT: event=bounced with its reply", ev)
    found = harness.wait_until(lambda: dsns_for(w.dsn, "x@pfbad.test"), bounded(10))
    check_eq(len(found), 1, "smtp-sink 550: one DSN")
    check_failed_dsn(found[0][0], found[0][1], "x@pfbad.test", r"5\.7\.1",
                     r"550 5\.7\.1 smtp-sink refuses this recipient",
                     "smtp-sink 550 DSN", tok=t2)
    check_eq(w.pfbad.messages(), [], "smtp-sink 550: nothing captured there")

    ev = ev_for(h, "bounced", q3, "never@a.test", timeout=5)
    check_eq(len(ev), 1, "NOTIFY=NEVER: event=bounced")
    check(gone_from_spool(h, q3), "NOTIFY=NEVER: spool file removed")
    time.sleep(min(2.0, left()))     # a DSN would have come by now (the others did)
    check_eq(dsns_for(w.dsn, "never@a.test"), [], "NOTIFY=NEVER: no DSN")
    check_eq(h.log_events(event="dsn", id=q3), [], "NOTIFY=NEVER: no event=dsn")


def test_data_4xx(h, w):
    w.a.data_fail("451 4.3.0 data4: local problem, try later", times=1, pattern="data4@")
    t = token()
    d = message(t, to="data4@a.test", subject="451 on DATA once")
    qid = submit(h, SENDER, ["data4@a.test"], d)
    ev = ev_for(h, "deferred", qid, "data4@a.test", timeout=5)
    check(len(ev) == 1 and "451 4.3.0 data4" in ev[0].get("reply", ""),
          "451 after DATA: event=deferred with the reply", ev)
    check_eq(len(ev_for(h, "delivered", qid, "data4@a.test", timeout=10)), 1,
             "451 after DATA once: then delivered")
    got = [m for m in w.a.received() if t.encode() in m.data]
    check_eq(len(got), 1, "451 after DATA: accepted exactly once")
    check_same_message(got[0].data, d, "451 then delivered")
    check_eq(len([r for r, _ in w.a.data_refused if t.encode() in r.data]), 1,
             "451 after DATA: the sink had refused it once, complete")
    check_eq(wait_states(h, qid, "data4@a.test", ["queued", "deferred", "delivered"])[0],
             ["queued", "deferred", "delivered"], "queue show: queued, deferred, delivered")


def test_drop_in_data(h, w):
    w.drop.drop_in_data(1)
    t = token()
    d = message(t, to="d@drop.test", subject="dropped in DATA", size=200000)
    qid = submit(h, SENDER, ["d@drop.test"], d)
    ev = ev_for(h, "deferred", qid, "d@drop.test", timeout=5)
    check_eq(len(ev), 1, "connection dropped in DATA: event=deferred")
    check_eq(len(ev_for(h, "delivered", qid, "d@drop.test", timeout=10)), 1,
             "connection dropped in DATA: then delivered")
    check_eq(w.drop.dropped, 1, "the sink hung up once in the middle of DATA")
    time.sleep(min(1.0, left()))
    got = w.drop.received()
    check_eq(len(got), 1, "dropped in DATA: received exactly once")
    check_same_message(got[0].data, d, "dropped then delivered (200 kB)")
    check(gone_from_spool(h, qid), "dropped then delivered: spool file removed")


def test_silent(h, w):
    t = token()
    qid = submit(h, SENDER, ["s@silent.test"], message(t, to="s@silent.test"))
    ev = ev_for(h, "deferred", qid, "s@silent.test", timeout=6)
    check_eq(len(ev), 1, "server that never greets: event=deferred "
             "(mta.greeting_timeout=1s)")
    check(re.search(r"(?i)time|greet", ev[0].get("reply", "") + ev[0].get("error", ""))
          is not None, "greeting timeout: the reason says timeout/greeting", ev[0])
    check(w.silent.accepted >= 1, "the silent server accepted the connection")
    check(harness.wait_until(lambda: w.silent.closed_by_client >= 1, bounded(3)),
          "Herald closed the silent connection after the timeout")
    rows, n = h.queue_list()
    mine = [r for r in rows if r["id"] == qid]
    check(len(mine) == 1 and mine[0]["state"] in ("deferred", "delivering")
          and mine[0]["rcpt"] == "s@silent.test" and mine[0]["sender"] == SENDER,
          "queue list: s@silent.test listed deferred with its sender", rows)
    check(re.search(r"(?i)time|greet", mine[0]["reply"]) is not None,
          "queue list: the LAST_REPLY column says why (timeout)", mine[0]["line"])
    check(qid in h.queue_ids(), "deferred: spool file still there")
    before = len(dsns(w.dsn))
    out = h.cli("queue", "delete", qid)
    check(re.search(r"^1 recipients?$", out, re.M) is not None,
          "queue delete %s: '1 recipients'" % qid, out)
    check(gone_from_spool(h, qid), "queue delete: spool file removed")
    check_eq(wait_states(h, qid, "s@silent.test", ["deleted"], last_only=True)[0][-1:],
             ["deleted"], "queue show: last state deleted")
    time.sleep(min(1.5, left()))
    check_eq(len(dsns(w.dsn)), before, "queue delete: no DSN")


def test_mx_first_dead(h, w):
    t = token()
    d = message(t, to="m@mx.test", subject="first MX dead")
    qid = submit(h, SENDER, ["m@mx.test"], d)
    ev = ev_for(h, "delivered", qid, "m@mx.test", timeout=10)
    check_eq(len(ev), 1, "MX 10 dead, MX 20 up: delivered")
    check_eq(ev[0].get("relay"), "mx2.mx.test[127.0.0.3]:%d" % w.mx_port,
             "delivered relay=mx2.mx.test[127.0.0.3]:PORT (mta.smtp_port)")
    got = [m for m in w.mx2.received() if t.encode() in m.data]
    check_eq(len(got), 1, "MX 20 sink received it once")
    check_same_message(got[0].data, d, "via MX 20")
    check_eq(len(h.log_events(event="deferred", id=qid)), 0,
             "a dead first MX is not a deferral when the second answers")


def burst(h, sink, rcpt, n=30, sessions=5):
    """n messages to rcpt from `sessions` sessions at once; wait until the
    sink has them all; return (tokens, messages)."""
    toks = [token() for _ in range(n)]
    errors = []

    def session(part):
        try:
            s = harness.smtp_login(h)
            for t in part:
                submit(h, SENDER, [rcpt], message(t, to=rcpt), s=s)
            s.quit()
        except Exception as e:                     # noqa: BLE001
            errors.append(repr(e))

    threads = [threading.Thread(target=session, args=(toks[i::sessions],))
               for i in range(sessions)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(bounded(30))
    check_eq(errors, [], "%d messages to %s submitted from %d sessions"
             % (n, rcpt, sessions))
    return toks, sink.wait_messages(n, bounded(40))


def test_concurrency(h, w):
    """30 messages from 5 sessions to conc.test (concurrency=2; the sink
    takes 0.15 s per message); the same to conc10.test (concurrency=10) as
    the control that Herald does open more connections when allowed."""
    toks, got = burst(h, w.conc, "c@conc.test")
    seen = [t for m in got for t in toks if t.encode() in m.data]
    check_eq(sorted(seen), sorted(toks), "concurrency=2: all 30 delivered, each once")
    check(0 < w.conc.max_current <= 2,
          "concurrency=2: at most 2 connections at once at the sink (max %d, "
          "%d connections)" % (w.conc.max_current, w.conc.connections))
    toks, got = burst(h, w.conc10, "c@conc10.test")
    seen = [t for m in got for t in toks if t.encode() in m.data]
    check_eq(sorted(seen), sorted(toks), "concurrency=10: all 30 delivered, each once")
    check(2 < w.conc10.max_current <= 10,
          "control, concurrency=10 and initial_concurrency=10: more than 2 "
          "connections at once (max %d, %d connections)"
          % (w.conc10.max_current, w.conc10.connections))


def test_expiry(w):
    """A separate instance: max_queue_lifetime=3s to a dead destination."""
    dead_port = sinks.free_port()
    w_dest = w.destinations() + "dead.test relay=127.0.0.1:%d\n" % dead_port
    h = harness.Herald(sets=delivery_sets(mta__max_queue_lifetime="3s",
                                          mta__retry_schedule="1s"), start=False)
    with h:
        h.write_destinations(w_dest)
        h.sets["dns.local_data"] = h.write_file("local-data.conf", w.local_data())
        h.start()
        t = token()
        t0 = time.monotonic()
        qid = submit(h, SENDER, ["gone@dead.test"], message(t, to="gone@dead.test"))
        check(len(ev_for(h, "deferred", qid, "gone@dead.test", timeout=4)) >= 1,
              "dead destination: event=deferred")
        ev = ev_for(h, "expired", qid, "gone@dead.test", timeout=10)
        check_eq(len(ev), 1, "max_queue_lifetime=3s: event=expired")
        took = time.monotonic() - t0
        check(2.5 <= took <= 9, "expired after about 3 s (%.1f s)" % took)
        found = harness.wait_until(lambda: dsns_for(w.dsn, "gone@dead.test"), bounded(10))
        check_eq(len(found), 1, "expired: one DSN at the sender's sink")
        check_failed_dsn(found[0][0], found[0][1], "gone@dead.test", r"[45]\.\d+\.\d+",
                         None, "expiry DSN", tok=t)
        check(gone_from_spool(h, qid), "expired: spool file removed")
        check_eq(wait_states(h, qid, "gone@dead.test", ["expired"], last_only=True)[0][-1:],
                 ["expired"], "queue show: last state expired")
        h.stop()


def main():
    w = World()
    try:
        w.start()
        h = new_herald(w, mta__greeting_timeout="1s", mta__smtp_port=str(w.mx_port))
        with h:
            test_basic(h, w)
            test_multi_rcpt(h, w)
            test_dsn_params(h, w)
            test_added_fields(h, w)
            test_8bit(h, w)
            test_rcpt_4xx(h, w)
            test_rcpt_5xx(h, w)
            test_data_4xx(h, w)
            test_drop_in_data(h, w)
            test_silent(h, w)
            test_mx_first_dead(h, w)
            test_concurrency(h, w)
            check(h.wait_queue_empty(bounded(10)), "queue empty at the end "
                  "(queue list '0 recipients', no spool file)",
                  lambda: h.cli("queue", "list"))
            check_eq(h.log_events(level="error"), [], "no delivery error logged")
            h.stop()
        test_expiry(w)
    finally:
        w.stop()


if __name__ == "__main__":
    harness.run(main)
