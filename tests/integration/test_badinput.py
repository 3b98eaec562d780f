#!/usr/bin/python3
"""test_badinput - bad SMTP input gets a clear error, never a crash (invariant 6).

Each case is a scripted session over a raw socket (so the test controls
every byte and every write boundary) against a real `herald serve`
(harness.py).  For each case the test checks the exact reply code and
enhanced status code, a log line, that nothing but what was acknowledged
reached the queue, and that a well-behaved session running in parallel
(a thread, opened before the case and finished after it) still gets
`250 2.0.0 Ok: queued as ...`.

Steps of a session:
    ("S", bytes)                        send exactly these bytes (one write)
    ("C", line, code, enh[, text])      send line + CRLF, expect the reply
    ("E", code, enh[, text])            expect the next reply
    ("CLOSED",)                         the server closes the connection
    ("SILENT", seconds)                 no reply for that long
    ("QUEUED", nrcpts)                  expect 250 2.0.0 Ok: queued as ID;
                                        ID is in the spool with nrcpts recipients
    ("ELAPSED", lo, hi)                 seconds since the last send
    ("TLS",)                            start TLS on the socket (client side)
text is an exact string or a compiled regex (fullmatch); enh None means
the reply has no enhanced status code.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_badinput.py
"""
import os
import re
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import QUEUED, Conn, Reply, check, reply_ok, send_data  # noqa: E402


def describe(code, enh, text):
    s = "%d %s" % (code, enh or "-")
    if text is not None:
        s += " " + str(getattr(text, "pattern", text))
    return s


MSG = "From: a@remote.example\r\nTo: u@inbound.test\r\nSubject: test\r\n\r\nHello.\r\n"


# ---- the well-behaved session that runs beside every bad one ----

class GoodSession(threading.Thread):
    """EHLO/MAIL/RCPT, then NOOPs until told to finish, then DATA."""

    def __init__(self, h):
        super().__init__(daemon=True)
        self.h = h
        self.ready = threading.Event()
        self.finish = threading.Event()
        self.error = None
        self.queue_id = None

    def run(self):
        try:
            c = Conn(self.h.mx, timeout=10)
            assert c.greeting.code == 220, c.greeting
            for line, code in (("EHLO good.test", 250), ("MAIL FROM:<good@remote.example>", 250),
                               ("RCPT TO:<good@inbound.test>", 250)):
                r = c.cmd(line)
                assert r.code == code, (line, r)
            self.ready.set()
            deadline = time.monotonic() + 60
            while not self.finish.wait(0.25):
                assert time.monotonic() < deadline, "good session: case never finished"
                r = c.cmd("NOOP")
                assert reply_ok(r, 250, "2.0.0"), ("NOOP", r)
            r = send_data(c, MSG)
            assert reply_ok(r, 250, "2.0.0", QUEUED), ("DATA", r)
            self.queue_id = QUEUED.fullmatch(r.text).group(1)
            r = c.cmd("QUIT")
            assert r.code == 221, r
            c.close()
        except Exception as e:  # reported by the main thread
            self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            self.ready.set()


# ---- running a case ----

def addr_of(h, listener):
    return {"mx": h.mx, "submission": h.submission, "submissions": h.submissions}[listener]


def run_steps(h, name, c, steps, queued):
    for st in steps:
        op = st[0]
        if op == "S":
            c.send(st[1])
        elif op in ("C", "E"):
            if op == "C":
                c.send((st[1].encode() if isinstance(st[1], str) else st[1]) + b"\r\n")
                args = st[2:]
                label = st[1] if isinstance(st[1], str) else repr(st[1][:60])
            else:
                args = st[1:]
                label = "reply"
            code, enh = args[0], args[1]
            text = args[2] if len(args) > 2 else None
            try:
                r = c.reply()
                got = r.lines[-1]
                ok = reply_ok(r, code, enh, text)
            except (TimeoutError, EOFError, OSError) as e:
                got, ok = "%s: %s" % (type(e).__name__, e), False
            if len(label) > 60:
                label = label[:60] + "..."
            check(ok, "%s: %s -> %s (got %r)" % (name, label, describe(code, enh, text), got))
        elif op == "E*":
            n, code, enh, text = st[1:]
            got = []
            try:
                for _ in range(n):
                    got.append(c.reply())
            except (TimeoutError, EOFError, OSError) as e:
                got.append(Reply(["%s: %s" % (type(e).__name__, e)]))
            ok = len(got) == n and all(reply_ok(r, code, enh, text) for r in got)
            check(ok, "%s: %d replies, in order, each %s (got %d, last %r)"
                  % (name, n, describe(code, enh, text), len(got), got[-1].lines[-1]))
        elif op == "CLOSED":
            check(c.closed(3.0), "%s: server closes the connection" % name)
        elif op == "SILENT":
            check(c.silent(st[1]), "%s: no reply within %.1fs" % (name, st[1]))
        elif op == "QUEUED":
            r = c.reply()
            ok = reply_ok(r, 250, "2.0.0", QUEUED)
            qid = QUEUED.fullmatch(r.text).group(1) if ok else None
            msgs = h.spool_messages()
            ok = ok and qid in msgs and len(msgs[qid][0]["rcpt"]) == st[1]
            check(ok, "%s: 250 2.0.0 Ok: queued as ID, in the spool with %d recipient(s) (got %r)"
                  % (name, st[1], r.lines[-1]))
            queued.add(qid)
        elif op == "ELAPSED":
            dt = time.monotonic() - c.sent_at
            check(st[1] <= dt <= st[2], "%s: after %.2fs (expected %.1f..%.1fs)" % (name, dt, st[1], st[2]))
        elif op == "TLS":
            c.wrap()
        elif op == "SLEEP":
            time.sleep(st[1])
        else:
            raise ValueError(op)


def run_case(h, case):
    name = case["name"]
    log_start = len(h.read_log())
    spool_before = set(h.spool_messages())
    good = GoodSession(h)
    good.start()
    good.ready.wait(15)
    check(good.error is None, "%s: parallel good session is ready (%s)" % (name, good.error or "ok"))
    queued = set()
    try:
        if "fn" in case:
            case["fn"](h, name, queued)
        else:
            c = Conn(addr_of(h, case.get("listener", "mx")), tls=case.get("tls", False),
                     greet=case.get("greet", True))
            if case.get("greet", True):
                check(c.greeting.code == 220, "%s: greeting" % name)
            run_steps(h, name, c, case["steps"], queued)
            c.close()
    finally:
        good.finish.set()
        good.join(30)
    check(good.error is None and good.queue_id is not None,
          "%s: parallel good session got 250 queued as %s (%s)" % (name, good.queue_id, good.error or "ok"))
    queued.add(good.queue_id)
    if case.get("log"):
        check(h.log_has(case["log"], 2.0, log_start), "%s: log has /%s/" % (name, case["log"]))
    extra = set(h.spool_messages()) - spool_before - queued
    check(not extra, "%s: nothing but the acknowledged messages was queued (extra: %s)" % (name, sorted(extra)))
    check(h.proc.poll() is None, "%s: herald serve still running" % name)


# ---- the cases ----

EHLO = ("C", "EHLO bad.test", 250, None, "HELP")
TXN = [EHLO, ("C", "MAIL FROM:<a@remote.example>", 250, "2.1.0", "Ok"),
       ("C", "RCPT TO:<u@inbound.test>", 250, "2.1.5", "Ok")]
DATA_GO = ("C", "DATA", 354, None, "End data with <CR><LF>.<CR><LF>")
NOOP_OK = ("C", "NOOP", 250, "2.0.0", "Ok")
HDR = "From: a@remote.example\r\nSubject: bad\r\n\r\n"    # lines 1-3 of a message
TOO_MANY_ERRORS = "herald.test Error: too many errors, closing connection"
LINE_TOO_LONG = "Error: line too long (more than 512 octets)"
BIG = "Message size exceeds fixed limit of 10240 bytes"

MAIN_SETS = {
    "smtpd.max_message_size": "10k",
    "smtpd.max_recipients": "3",
    "smtpd.command_line_max": "512",
    "smtpd.data_line_max": "1000",
    "smtpd.max_header_size": "4k",
    "smtpd.max_errors": "5",
}

MAIN_CASES = [
    {"name": "command line at command_line_max", "steps": [
        EHLO,
        ("C", "NOOP " + "x" * 507, 250, "2.0.0", "Ok"),          # 512 octets + CRLF
        ("C", "VRFY " + "v" * 507, 252, "2.5.2"),               # 512 octets + CRLF
    ]},
    {"name": "command line longer than command_line_max", "log": r"event=line-too-long", "steps": [
        EHLO,
        ("C", "NOOP " + "x" * 508, 500, "5.5.2", LINE_TOO_LONG),  # 513 octets
        NOOP_OK,
        ("C", "MAIL FROM:<%s@remote.example>" % ("x" * 600), 500, "5.5.2", LINE_TOO_LONG),
        ("C", "MAIL FROM:<a@remote.example>", 250, "2.1.0"),
    ]},
    {"name": "endless command line without LF", "log": r"event=line-too-long", "steps": [
        EHLO,
        ("S", b"MAIL FROM:<" + b"y" * 3000),
        ("E", 500, "5.5.2", LINE_TOO_LONG),                   # refused before the line ends
        ("S", b"y" * 3000),
        ("SILENT", 0.3),                                       # the rest is skipped, once
        ("S", b"yyy>\r\n"),
        NOOP_OK,
    ]},
    {"name": "DATA line at data_line_max", "steps": TXN + [
        DATA_GO,
        ("S", HDR + "a" * 998 + "\r\n" + ".." + "b" * 997 + "\r\n.\r\n"),  # 1000 octets each (dot unstuffed)
        ("QUEUED", 1),
    ]},
    {"name": "DATA line longer than data_line_max", "log": r"event=reject command=DATA id=\S+ error=line-too-long line=4 ",
     "steps": TXN + [
         DATA_GO,
         ("S", HDR + "a" * 999 + "\r\nshort\r\n" + "c" * 2000 + "\r\n.\r\n"),
         ("E", 554, "5.6.0", "Line 4 is longer than 1000 octets (RFC 5321 4.5.3.1.6)"),
         ("C", "MAIL FROM:<a@remote.example>", 250, "2.1.0"),  # back to READY
         ("C", "RCPT TO:<u@inbound.test>", 250, "2.1.5"),
         ("C", "DATA", 354, None), ("S", MSG + ".\r\n"), ("QUEUED", 1),
     ]},
    {"name": "DATA line without LF, over many writes", "log": r"event=reject command=DATA id=\S+ error=line-too-long line=3 ",
     "steps": TXN + [
         DATA_GO,
         ("S", "Subject: long\r\n\r\n"),
         ("S", "z" * 4000), ("S", "z" * 4000), ("S", "z" * 4000),
         ("SILENT", 0.3),
         ("S", "\r\n.\r\n"),
         ("E", 554, "5.6.0", "Line 3 is longer than 1000 octets (RFC 5321 4.5.3.1.6)"),
         NOOP_OK,
     ]},
    {"name": "message larger than max_message_size", "log": r"event=reject command=DATA id=\S+ error=too-big ",
     "steps": TXN + [
         DATA_GO,
         ("S", HDR + ("m" * 98 + "\r\n") * 110),             # 11000 octets of body
         ("SILENT", 0.3),                                      # no reply before the end
         ("S", ".\r\n"),
         ("E", 552, "5.3.4", BIG),
         NOOP_OK,
     ]},
    {"name": "message of exactly max_message_size", "steps": TXN + [
        DATA_GO,
        ("S", "Subject: x\r\n\r\n" + ("m" * 98 + "\r\n") * 102 + "m" * 24 + "\r\n" + ".\r\n"),  # 10240 octets
        ("QUEUED", 1),
    ]},
    {"name": "MAIL FROM with SIZE over max_message_size", "steps": [
        EHLO,
        ("C", "MAIL FROM:<a@remote.example> SIZE=10241", 552, "5.3.4", BIG),
        ("C", "MAIL FROM:<a@remote.example> SIZE=99999999999999999999", 552, "5.3.4", BIG),  # 20 digits
        ("C", "MAIL FROM:<a@remote.example> SIZE=999999999999999999999", 501, "5.5.4",        # 21: syntax
         "Invalid value for parameter SIZE"),
        ("C", "MAIL FROM:<a@remote.example> SIZE=10240", 250, "2.1.0"),
    ]},
    {"name": "BDAT chunks larger than max_message_size", "log": r"event=reject command=BDAT id=\S+ error=too-big ",
     "steps": TXN + [
         ("S", "BDAT 6000\r\n" + "Subject: x\r\n\r\n" + "b" * 5984 + "\r\n"),
         ("E", 250, "2.0.0", "Ok: 6000 octets received"),
         ("S", "BDAT 6000 LAST\r\n" + "b" * 5998 + "\r\n"),
         ("E", 552, "5.3.4", BIG),
         ("C", "BDAT 5 LAST", 503, "5.5.1", "Error: an earlier BDAT failed, send RSET"),
         ("S", "hello"),
         ("C", "RSET", 250, "2.0.0"),
     ]},
    {"name": "recipients over max_recipients", "steps": [
        EHLO,
        ("C", "MAIL FROM:<a@remote.example>", 250, "2.1.0"),
        ("C", "RCPT TO:<r1@inbound.test>", 250, "2.1.5"),
        ("C", "RCPT TO:<r2@inbound.test>", 250, "2.1.5"),
        ("C", "RCPT TO:<r3@inbound.test>", 250, "2.1.5"),
        ("C", "RCPT TO:<r4@inbound.test>", 452, "4.5.3", "Error: too many recipients"),
        DATA_GO, ("S", MSG + ".\r\n"), ("QUEUED", 3),
    ]},
    {"name": "unknown command", "log": r'event=bad-command code=500 reason="Command unrecognized"', "steps": [
        ("C", "XYZZY", 500, "5.5.1", "Command unrecognized"),
        ("C", "GET / HTTP/1.1", 500, "5.5.1", "Command unrecognized"),
        EHLO,
        ("C", "MAILFROM:<a@remote.example>", 500, "5.5.1", "Command unrecognized"),
        NOOP_OK,
    ]},
    {"name": "commands out of order", "steps": [
        ("C", "MAIL FROM:<a@remote.example>", 503, "5.5.1", "Error: send HELO/EHLO first"),
        EHLO,
        ("C", "RCPT TO:<u@inbound.test>", 503, "5.5.1", "Error: need MAIL command"),
        ("C", "DATA", 503, "5.5.1", "Error: need RCPT command"),   # before MAIL
        ("C", "BDAT 4 LAST", 503, "5.5.1", "Error: need RCPT command"), ("S", "abcd"),
        NOOP_OK,
    ]},
    {"name": "commands out of order in a transaction", "steps": [
        EHLO,
        ("C", "MAIL FROM:<a@remote.example>", 250, "2.1.0"),
        ("C", "DATA", 503, "5.5.1", "Error: need RCPT command"),   # before RCPT
        ("C", "MAIL FROM:<b@remote.example>", 503, "5.5.1", "Error: nested MAIL command"),
        ("C", "RSET", 250, "2.0.0", "Ok"),
        ("C", "MAIL FROM:<b@remote.example>", 250, "2.1.0"),
    ]},
    {"name": "too many errors", "log": r"event=too-many-errors errors=5", "steps": [
        EHLO,
        ("C", "BAD1", 500, "5.5.1"), ("C", "BAD2", 500, "5.5.1"), ("C", "BAD3", 500, "5.5.1"),
        ("C", "RCPT TO:<u@inbound.test>", 503, "5.5.1"),
        ("C", "BAD5", 500, "5.5.1"),
        ("E", 421, "4.7.0", TOO_MANY_ERRORS),
        ("CLOSED",),
    ]},
    {"name": "too many errors, pipelined in one write", "log": r"event=too-many-errors", "steps": [
        EHLO,
        ("S", b"BAD\r\n" * 50),
        ("E", 500, "5.5.1"), ("E", 500, "5.5.1"), ("E", 500, "5.5.1"), ("E", 500, "5.5.1"), ("E", 500, "5.5.1"),
        ("E", 421, "4.7.0", TOO_MANY_ERRORS),
        ("CLOSED",),
    ]},
    {"name": "control characters and NUL in a command", "log": r'reason="Invalid characters in command"', "steps": [
        EHLO,
        ("C", b"NOOP \x00x", 500, "5.5.2", "Invalid characters in command"),
        ("C", b"MAIL FROM:<a\x1b[31m@remote.example>", 500, "5.5.2", "Invalid characters in command"),
        ("C", b"\xff\xfe\x00\x01binary", 500, "5.5.2", "Invalid characters in command"),
        NOOP_OK,
    ]},
    {"name": "pipelining after EHLO (allowed)", "steps": [
        EHLO,
        ("S", "MAIL FROM:<a@remote.example>\r\nRCPT TO:<p1@inbound.test>\r\n"
              "RCPT TO:<victim@remote.example>\r\nRCPT TO:<p2@inbound.test>\r\nDATA\r\n"),
        ("E", 250, "2.1.0", "Ok"), ("E", 250, "2.1.5", "Ok"),
        ("E", 554, "5.7.1", "<victim@remote.example>: Relay access denied"),
        ("E", 250, "2.1.5", "Ok"), ("E", 354, None),
        ("S", MSG + ".\r\n" + "MAIL FROM:<b@remote.example>\r\nRCPT TO:<p3@inbound.test>\r\nDATA\r\n"),
        ("QUEUED", 2), ("E", 250, "2.1.0"), ("E", 250, "2.1.5"), ("E", 354, None),
        ("S", MSG + ".\r\nQUIT\r\n"), ("QUEUED", 1), ("E", 221, "2.0.0"), ("CLOSED",),
    ]},
    {"name": "many commands in one write", "steps": [
        EHLO,
        ("S", b"NOOP\r\n" * 200 + b"RSET\r\n"),
        ("E*", 201, 250, "2.0.0", "Ok"),
    ]},
    {"name": "BDAT with its chunk in the same write (allowed)", "steps": TXN + [
        ("S", "BDAT %d LAST\r\n%s" % (len(MSG), MSG)),
        ("QUEUED", 1),
    ]},
    {"name": "DATA with the message in the same write", "log": r"event=improper-pipelining command=DATA",
     "steps": TXN + [
         ("S", "DATA\r\n" + MSG + ".\r\n"),
         ("E", 554, "5.5.0", "Improper use of pipelining (message content sent before the 354 reply), "
                             "closing connection"),
         ("CLOSED",),
     ]},
    {"name": "two commands in one write after HELO", "log": r"event=improper-pipelining command=HELO", "steps": [
        ("C", "HELO bad.test", 250, None, "herald.test"),
        ("S", "MAIL FROM:<a@remote.example>\r\nRCPT TO:<u@inbound.test>\r\n"),
        ("E", 250, "2.1.0"),
        ("E", 554, "5.5.0", "Improper use of pipelining (not offered after HELO), closing connection"),
        ("CLOSED",),
    ]},
    {"name": "commands one at a time after HELO (allowed)", "steps": [
        ("C", "HELO bad.test", 250, None, "herald.test"),
        ("C", "MAIL FROM:<a@remote.example>", 250, "2.1.0"),
        ("C", "RCPT TO:<u@inbound.test>", 250, "2.1.5"),
        DATA_GO, ("S", MSG + ".\r\n"), ("QUEUED", 1),
    ]},
    {"name": "STARTTLS with a command in the same write", "listener": "submission",
     "log": r"event=improper-pipelining command=STARTTLS", "steps": [
         EHLO,
         ("S", "STARTTLS\r\nNOOP\r\n"),
         ("E", 554, "5.5.0", "Improper use of pipelining after STARTTLS, closing connection"),
         ("CLOSED",),
     ]},
    {"name": "bare LF in DATA", "log": r"event=bare-lf line=4 ", "steps": TXN + [
        DATA_GO,
        ("S", HDR + "line\nmore\r\n.\r\n"),
        ("E", 521, "5.5.2", "Bare <LF> received on line 4; lines must end with <CR><LF>, closing connection"),
        ("CLOSED",),
    ]},
    {"name": "SMTP smuggling with <LF>.<LF>", "log": r"event=bare-lf line=5 ", "steps": TXN + [
        DATA_GO,
        ("S", HDR + "body\r\n.\nMAIL FROM:<smuggled@remote.example>\r\nRCPT TO:<u@inbound.test>\r\n"
                    "DATA\r\n" + MSG + ".\r\n"),
        ("E", 521, "5.5.2", re.compile(r"Bare <LF> received on line 5; .*")),
        ("CLOSED",),
    ]},
    {"name": "bare CR in DATA", "log": r"event=reject command=DATA id=\S+ error=bare-cr line=5 ", "steps": TXN + [
        DATA_GO,
        ("S", HDR + "ok\r\nab\rcd\r\n.\r\n"),
        ("E", 554, "5.6.0", "Bare <CR> on line 5: lines must end with <CR><LF>"),
        NOOP_OK,
    ]},
    {"name": "SMTP smuggling with <CR>.<CR>", "steps": TXN + [
        DATA_GO,
        ("S", HDR + "body\r.\rMAIL FROM:<smuggled@remote.example>\r\n.\r\n"),
        ("E", 554, "5.6.0", "Bare <CR> on line 4: lines must end with <CR><LF>"),
        NOOP_OK,
    ]},
    {"name": "8-bit data without BODY=8BITMIME", "log": r"event=reject command=DATA id=\S+ error=8bit-without-8bitmime line=2 ",
     "steps": TXN + [
         DATA_GO,
         ("S", b"From: a@remote.example\r\nSubject: caf\xc3\xa9\r\n\r\nx\r\n.\r\n"),
         ("E", 554, "5.6.1", "8-bit data on line 2 without BODY=8BITMIME"),
         NOOP_OK,
     ]},
    {"name": "8-bit data with BODY=8BITMIME", "steps": [
        EHLO,
        ("C", "MAIL FROM:<a@remote.example> BODY=8BITMIME", 250, "2.1.0"),
        ("C", "RCPT TO:<u@inbound.test>", 250, "2.1.5"),
        DATA_GO,
        ("S", b"From: a@remote.example\r\nSubject: caf\xc3\xa9\r\n\r\n\xe2\x82\xac 5\r\n.\r\n"),
        ("QUEUED", 1),
    ]},
    {"name": "UTF-8 address without SMTPUTF8", "log": r'reason="Non-ASCII address requires SMTPUTF8"', "steps": [
        EHLO,
        ("C", "MAIL FROM:<jörg@remote.example>".encode(), 553, "5.6.7", "Non-ASCII address requires SMTPUTF8"),
        ("C", "MAIL FROM:<a@remote.example>", 250, "2.1.0"),
        ("C", "RCPT TO:<jörg@inbound.test>".encode(), 553, "5.6.7", "Non-ASCII address requires SMTPUTF8"),
        NOOP_OK,
    ]},
    {"name": "UTF-8 address with SMTPUTF8", "steps": [
        EHLO,
        ("C", "MAIL FROM:<jörg@bücher.example> SMTPUTF8".encode(), 250, "2.1.0"),
        ("C", "RCPT TO:<jörg@inbound.test>".encode(), 250, "2.1.5"),
        DATA_GO,
        ("S", "From: jörg@bücher.example\r\nSubject: grüße\r\n\r\nhallo\r\n.\r\n".encode()),
        ("QUEUED", 1),
    ]},
    {"name": "header section over max_header_size", "log": r"event=reject command=DATA id=\S+ error=header-too-big ",
     "steps": TXN + [
         DATA_GO,
         ("S", "".join("X-Pad-%02d: %s\r\n" % (i, "h" * 88) for i in range(50)) + "\r\nbody\r\n.\r\n"),
         ("E", 552, "5.3.4", "Header section exceeds 4096 bytes"),
         NOOP_OK,
     ]},
    {"name": "client gone in the middle of DATA", "log": r"event=lost-connection state=6", "steps": TXN + [
        DATA_GO,
        ("S", HDR + "partial\r\n"),
    ]},
    {"name": "plain text to the implicit TLS port", "listener": "submissions", "greet": False,
     "log": r"event=tls-failed", "steps": [
         ("S", "EHLO bad.test\r\nMAIL FROM:<a@remote.example>\r\n"),
         ("CLOSED",),
     ]},
    {"name": "garbage after STARTTLS", "listener": "submission", "log": r"event=tls-failed", "steps": [
        EHLO,
        ("C", "STARTTLS", 220, "2.0.0", "Ready to start TLS"),
        ("S", b"\x16\x03\x01\x00\x05hello" + b"\x00" * 64),
        ("CLOSED",),
    ]},
    {"name": "bad AUTH responses", "listener": "submission", "steps": [
        EHLO,
        ("C", "STARTTLS", 220, "2.0.0"), ("TLS",), EHLO,
        ("C", "AUTH PLAIN !!!notbase64", 501, "5.5.2", "Cannot decode AUTH PLAIN response"),
        ("C", "AUTH PLAIN dXNlcg==", 501, "5.5.2", "Cannot decode AUTH PLAIN response"),  # no NUL
        ("C", "AUTH PLAIN AHVzZXI=", 501, "5.5.2", "Malformed AUTH PLAIN response"),      # no password
        ("C", "AUTH LOGIN", 334, None, "VXNlcm5hbWU6"),
        ("C", "*", 501, "5.7.0", "Authentication cancelled"),
        NOOP_OK,
    ]},
]


def conn_limit_case(limit, code, enh, text, reason):
    """The good session holds one slot; fill the rest, then one more."""
    def fn(h, name, queued):
        held = []
        try:
            for i in range(limit - 1):
                c = Conn(h.mx)
                check(c.greeting.code == 220, "%s: connection %d of %d greeted" % (name, i + 2, limit))
                held.append(c)
            extra = Conn(h.mx, greet=False)
            r = extra.reply()
            check(reply_ok(r, code, enh, text), "%s: connection %d -> %s (got %r)"
                  % (name, limit + 1, describe(code, enh, text), r.lines[-1]))
            check(extra.closed(3.0), "%s: connection %d is closed" % (name, limit + 1))
            extra.close()
            # On the implicit TLS port the refusal is a plain close.
            tls_extra = Conn(h.submissions, greet=False)
            check(tls_extra.closed(3.0) and tls_extra.buf == b"",
                  "%s: submissions connection over the limit is closed without a reply" % name)
            tls_extra.close()
            # The connections already open are unaffected.
            for i, c in enumerate(held):
                check(reply_ok(c.cmd("NOOP"), 250, "2.0.0"), "%s: held connection %d still works" % (name, i + 2))
        finally:
            for c in held:
                c.close()
        # Slots are given back when clients leave.
        deadline = time.monotonic() + 3
        r = None
        while time.monotonic() < deadline:
            c = Conn(h.mx, greet=False)
            r = c.reply()
            c.close()
            if r.code == 220:
                break
            time.sleep(0.1)
        check(r is not None and r.code == 220, "%s: a new connection is greeted after the others left" % name)
    return {"name": name_of(limit, reason), "fn": fn, "log": r"event=refused ip=127\.0\.0\.1 reason=" + reason}


def name_of(limit, reason):
    return "over %s (%d)" % (reason, limit)


TIMEOUT_SETS = {
    "smtpd.command_timeout": "1s",
    "smtpd.data_timeout": "1s",
    "smtpd.tls_handshake_timeout": "1s",
}
TIMEOUT_TEXT = "herald.test Error: timeout exceeded"

TIMEOUT_CASES = [
    {"name": "command timeout", "log": r"event=timeout state=3", "steps": [
        EHLO,
        ("E", 421, "4.4.2", TIMEOUT_TEXT),
        ("ELAPSED", 0.8, 3.0),
        ("CLOSED",),
    ]},
    {"name": "command timeout before EHLO", "log": r"event=timeout state=2", "steps": [
        ("E", 421, "4.4.2", TIMEOUT_TEXT),
        ("ELAPSED", 0.8, 3.0),
        ("CLOSED",),
    ]},
    {"name": "data timeout", "log": r"event=timeout state=6", "steps": TXN + [
        DATA_GO,
        ("S", HDR + "partial line"),
        ("E", 421, "4.4.2", TIMEOUT_TEXT),
        ("ELAPSED", 0.8, 3.0),
        ("CLOSED",),
    ]},
    {"name": "BDAT timeout", "log": r"event=timeout state=7", "steps": TXN + [
        ("S", "BDAT 1000 LAST\r\nSubject: x\r\n"),
        ("E", 421, "4.4.2", TIMEOUT_TEXT),
        ("ELAPSED", 0.8, 3.0),
        ("CLOSED",),
    ]},
    {"name": "TLS handshake never started", "listener": "submissions", "greet": False,
     "log": r'event=tls-failed reason="handshake timeout"', "steps": [
         ("SILENT", 0.5),
         ("CLOSED",),
         ("ELAPSED", 0.8, 3.0),
     ]},
    {"name": "TLS handshake stalled after STARTTLS", "listener": "submission",
     "log": r'event=tls-failed reason="handshake timeout"', "steps": [
         EHLO,
         ("C", "STARTTLS", 220, "2.0.0"),
         ("S", b"\x16\x03\x01\x02\x00\x01"),     # start of a ClientHello, then nothing
         ("CLOSED",),
         ("ELAPSED", 0.8, 3.0),
     ]},
]

GREET_CASES = [
    {"name": "talking before the greeting", "greet": False, "log": r"event=early-talker", "steps": [
        ("S", "EHLO early.test\r\n"),
        ("E", 554, "5.5.0", "Protocol error: data sent before the greeting, closing connection"),
        ("CLOSED",),
    ]},
    {"name": "waiting for the greeting", "greet": False, "steps": [
        ("E", 220, None, "herald.test ESMTP Herald"),
        ("ELAPSED", 0.9, 3.0),
        EHLO,
    ]},
]


def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def check_unread_replies(h):
    """A client that pipelines 40 MB of NOOPs and never reads the replies:
    the server stops reading once the replies back up, so its memory does
    not grow with what the client sends, and the session still works when
    the client finally reads."""
    import socket
    before = rss_kb(h.proc.pid)
    s = socket.create_connection(h.mx, timeout=5)
    s.recv(4096)  # greeting
    s.sendall(b"EHLO c\r\n")
    time.sleep(0.2)
    s.recv(65536)
    s.setblocking(False)
    chunk = b"NOOP\r\n" * 10000
    sent, deadline = 0, time.monotonic() + 10
    while sent < 40 * 1024 * 1024 and time.monotonic() < deadline:
        try:
            # Resume where the last short send stopped: whole commands only.
            sent += s.send(chunk[sent % len(chunk):])
        except BlockingIOError:
            time.sleep(0.05)
    s.setblocking(True)
    grew = rss_kb(h.proc.pid) - before
    check(sent < 40 * 1024 * 1024,
          "unread replies: the server stopped taking commands (client sent %d bytes)" % sent)
    if "libasan" in open("/proc/%d/maps" % h.proc.pid).read():
        # ASan keeps freed memory in quarantine: RSS says nothing here.
        print("# unread replies: memory growth %d KB not checked under ASan" % grew)
    else:
        check(grew < 8 * 1024,
              "unread replies: server memory grew %d KB (< 8 MB) while replies backed up" % grew)
    # Now read everything: every NOOP is answered, in order, then QUIT works.
    s.settimeout(10)
    want, got, buf = sent // 6, 0, b""
    while got < want:
        data = s.recv(1 << 20)
        if not data:
            break
        buf += data
        got += buf.count(b"\r\n")
        buf = buf[buf.rfind(b"\r\n") + 2:] if b"\r\n" in buf else buf
    check(got >= want, "unread replies: all %d NOOPs answered once read (got %d)" % (want, got))
    # Finish the NOOP a short send may have cut, then QUIT.
    s.sendall(b"NOOP\r\n"[sent % 6:] + b"QUIT\r\n" if sent % 6 else b"QUIT\r\n")
    tail = b""
    while True:
        data = s.recv(65536)
        if not data:
            break
        tail += data
    check(tail.endswith(b"221 2.0.0 Bye\r\n"), "unread replies: QUIT answered after the backlog")
    s.close()


def main():
    with harness.Herald() as h:
        check_unread_replies(h)
    groups = [
        (MAIN_SETS, MAIN_CASES),
        (TIMEOUT_SETS, TIMEOUT_CASES),
        ({"smtpd.greet_pause": "1s"}, GREET_CASES),
        ({"smtpd.max_connections_per_ip": "3"},
         [conn_limit_case(3, 421, "4.7.0", "Too many connections from your address", "max-connections-per-ip")]),
        ({"smtpd.max_connections": "3"},
         [conn_limit_case(3, 421, "4.3.2", "Too many connections, try again later", "max-connections")]),
    ]
    for sets, cases in groups:
        with harness.Herald(sets=sets) as h:
            for case in cases:
                t = time.monotonic()
                run_case(h, case)
                sys.stderr.write("  %-50s %.2fs\n" % (case["name"], time.monotonic() - t))
            check(h.proc.poll() is None, "herald serve (%s) survived every case" % ", ".join(
                "%s=%s" % kv for kv in sets.items()))


if __name__ == "__main__":
    harness.run(main)
