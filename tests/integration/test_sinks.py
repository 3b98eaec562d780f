#!/usr/bin/python3
"""test_sinks - the receiving servers of the delivery tests (sinks.py),
checked with Python's smtplib alone, so that a delivery test failing means
Herald, not its peer.

Run: /usr/bin/python3 tests/integration/test_sinks.py
"""
import os
import smtplib
import socket
import ssl
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
import sinks  # noqa: E402
from harness import check, check_eq  # noqa: E402

MSG = (b"From: a@example.com\r\nTo: b@dest.test\r\nSubject: sink\r\n\r\n"
       b".leading dot\r\n..two\r\n.\r\nbody\r\n")


def client(addr, name="py.test"):
    s = smtplib.SMTP(addr[0], addr[1], local_hostname=name, timeout=10)
    s.ehlo(name)
    return s


def test_aiosink():
    with sinks.AioSink("127.0.0.2") as sink:
        check_eq(sink.connections, 0, "AioSink: start-up check connection not counted")
        s = client(sink.addr)
        check(not s.has_extn("starttls"), "AioSink without tls: no STARTTLS")
        check_eq(s.sendmail("a@example.com", ["b@dest.test", "c@dest.test"], MSG), {},
                 "AioSink: two recipients accepted")
        s.quit()
        msgs = sink.wait_messages(1, 5)
        check_eq(len(msgs), 1, "AioSink: one message recorded")
        m = msgs[0]
        check_eq((m.mail_from, m.rcpt_tos, m.ehlo, m.tls, m.peer[0]),
                 ("a@example.com", ["b@dest.test", "c@dest.test"], "py.test", False,
                  "127.0.0.1"),
                 "AioSink: envelope, EHLO name, no TLS, peer recorded")
        check_eq(m.data, MSG, "AioSink: data recorded byte for byte (dots unstuffed)")
        check(sinks.wait_until(lambda: sink.current == 0, 3) is True,
              "AioSink: connection counted closed after QUIT")
        check_eq((sink.connections, sink.max_current), (1, 1), "AioSink: 1 connection")

        # faults
        sink.rcpt_fail(r"^temp@", "450 4.2.0 come back later", times=1)
        sink.rcpt_fail(r"^hard@", "550 5.1.1 no such user here")
        sink.data_fail("451 4.3.0 data later", times=1, pattern="data@")
        s = client(sink.addr)
        check_eq(s.sendmail("a@example.com", ["temp@dest.test", "hard@dest.test",
                                              "ok@dest.test"], MSG),
                 {"temp@dest.test": (450, b"4.2.0 come back later"),
                  "hard@dest.test": (550, b"5.1.1 no such user here")},
                 "AioSink: RCPT rules: 450 (first time) and 550")
        check_eq(s.sendmail("a@example.com", ["temp@dest.test", "hard@dest.test"], MSG),
                 {"hard@dest.test": (550, b"5.1.1 no such user here")},
                 "AioSink: 450 rule with times=1 accepts the second try; 550 stays")
        try:
            s.sendmail("a@example.com", ["data@dest.test"], MSG)
            code = 250
        except smtplib.SMTPDataError as e:
            code = e.smtp_code
        check_eq(code, 451, "AioSink: DATA rule gives 451 the first time")
        check_eq(s.sendmail("a@example.com", ["data@dest.test"], MSG), {},
                 "AioSink: DATA rule then accepts")
        s.quit()
        check_eq(len(sink.received()), 4, "AioSink: 4 messages recorded in all")
        check_eq(len(sink.data_refused), 1, "AioSink: one refused DATA recorded")

        # drop in the middle of DATA
        sink.drop_in_data(1)
        s = client(sink.addr)
        try:
            s.sendmail("a@example.com", ["x@dest.test"], MSG + b"more\r\n" * 1000)
            dropped = False
        except smtplib.SMTPServerDisconnected:
            dropped = True
        check(dropped and sink.dropped == 1, "AioSink: drop_in_data hangs up in DATA")
        check_eq(len(sink.received()), 4, "AioSink: dropped message not recorded")
        s = client(sink.addr)
        check_eq(s.sendmail("a@example.com", ["x@dest.test"], MSG), {},
                 "AioSink: next connection delivers")
        s.quit()

        # greeting fault
        sink.greeting("421 4.3.2 not now", times=1)
        try:
            client(sink.addr)
            code = 220
        except smtplib.SMTPConnectError as e:
            code = e.smtp_code
        except smtplib.SMTPServerDisconnected:
            code = -1
        check_eq(code, 421, "AioSink: greeting fault 421")
        client(sink.addr).quit()

        # concurrency counting
        sink.reset()
        conns = [client(sink.addr) for _ in range(3)]
        sinks.wait_until(lambda: sink.current == 3, 3)
        check_eq(sink.max_current, 3, "AioSink: 3 connections open at once counted")
        for c in conns:
            c.quit()
        check(sinks.wait_until(lambda: sink.current == 0, 3) is True,
              "AioSink: all counted closed")
        c = client(sink.addr)
        c.close()           # no QUIT: counted closed when the connection is lost
        check(sinks.wait_until(lambda: sink.current == 0, 3) is True,
              "AioSink: a connection closed without QUIT counted closed")

        # slow replies
        sink.slow = {"RCPT": 0.5}
        c = client(sink.addr)
        c.mail("a@example.com")
        t0 = time.monotonic()
        c.rcpt("z@dest.test")
        check(time.monotonic() - t0 >= 0.45, "AioSink: slow RCPT takes 0.5 s")
        c.quit()


def test_aiosink_tls():
    with sinks.AioSink("127.0.0.3", tls=True, tls_cn="mx.tls.test") as sink:
        s = client(sink.addr)
        check(s.has_extn("starttls"), "AioSink tls: STARTTLS offered")
        ctx = ssl.create_default_context(cafile=sink.cert_file)
        s._host = "mx.tls.test"     # the name starttls() verifies
        check_eq(s.starttls(context=ctx)[0], 220, "AioSink tls: STARTTLS 220")
        s.ehlo("tls.client")
        check_eq(s.sendmail("a@example.com", ["t@dest.test"], MSG), {},
                 "AioSink tls: message after STARTTLS, certificate verified "
                 "against cert_file for mx.tls.test")
        s.quit()
        m = sink.wait_messages(1, 5)[0]
        check(m.tls and m.tls_version.startswith("TLSv1."), "AioSink tls: TLS recorded",
              m.tls_version)
        check_eq(m.ehlo, "tls.client", "AioSink tls: EHLO after STARTTLS recorded")
        check_eq(sink.connections, 1, "AioSink tls: STARTTLS does not count twice")
        check(sinks.wait_until(lambda: sink.current == 0, 3) is True,
              "AioSink tls: counted closed")


def test_aiosink_auth():
    with sinks.AioSink("127.0.0.1", tls=True, tls_cn="auth.tls.test",
                       auth=("relayuser", "s3cret pass")) as sink:
        s = client(sink.addr)
        check(not s.has_extn("auth"), "AioSink auth+tls: no AUTH before STARTTLS")
        ctx = ssl.create_default_context(cafile=sink.cert_file)
        s._host = "auth.tls.test"
        s.starttls(context=ctx)
        s.ehlo("py.test")
        check(s.has_extn("auth"), "AioSink auth: AUTH offered after STARTTLS")
        code, _ = s.mail("a@example.com")
        check_eq(code, 530, "AioSink auth: MAIL before AUTH refused 530")
        try:
            s.login("relayuser", "wrong")
            code = 235
        except smtplib.SMTPAuthenticationError as e:
            code = e.smtp_code
        check_eq(code, 535, "AioSink auth: a wrong password gets 535")
        s.login("relayuser", "s3cret pass")
        check_eq(s.sendmail("a@example.com", ["b@dest.test"], MSG), {},
                 "AioSink auth: message after AUTH")
        s.sendmail("a@example.com", ["c@dest.test"], MSG)
        s.quit()
        msgs = sink.wait_messages(2, 5)
        check_eq([(m.auth_user, m.conn) for m in msgs], [("relayuser", 1), ("relayuser", 1)],
                 "AioSink auth: auth_user and connection id recorded")
        at = [a[1:] for a in sink.auth_attempts]
        check(len(at) >= 2 and all(a == ("relayuser", False, True) for a in at[:-1]) and
              at[-1] == ("relayuser", True, True),
              "AioSink auth: attempts recorded (user, success, over TLS)", at)
        s = client(sink.addr)
        s.close()
        check(sinks.wait_until(lambda: sink.connections == 2, 3), "second connection id 2")


def test_silent():
    with sinks.SilentServer() as srv:
        c = socket.create_connection(srv.addr, timeout=5)
        c.settimeout(1.0)
        try:
            got = c.recv(100)
        except socket.timeout:
            got = None
        check_eq(got, None, "SilentServer: no greeting within 1 s")
        check_eq(srv.accepted, 1, "SilentServer: accepted counted")
        c.close()
        check(sinks.wait_until(lambda: srv.closed_by_client == 1, 3),
              "SilentServer: client hang-up noticed")


def test_smtp_sink():
    with sinks.SmtpSink() as sink:
        s = client(sink.addr, "pysink.test")
        check(s.has_extn("dsn") and s.has_extn("pipelining"),
              "smtp-sink: DSN and PIPELINING announced")
        check_eq(s.sendmail("a@example.com", ["b@dest.test", "c@dest.test"], MSG,
                            rcpt_options=["NOTIFY=NEVER"]), {},
                 "smtp-sink: message accepted")
        s.quit()
        msgs = sink.wait_messages(1, 5)
        check_eq(len(msgs), 1, "smtp-sink: one capture file")
        m = msgs[0]
        check_eq((m.mail_from, m.rcpt_tos, m.rcpt_args[0], m.helo, m.complete),
                 ("a@example.com", ["b@dest.test", "c@dest.test"],
                  "<b@dest.test> NOTIFY=NEVER", "pysink.test", True),
                 "smtp-sink: envelope parsed back from the capture")
        check_eq(m.data, MSG, "smtp-sink: data parsed back byte for byte")
        sinks.wait_until(lambda: sink.counters()["mesg"] >= 1, 3)
        check_eq(sink.counters()["mesg"], 1, "smtp-sink: -c counts 1 message")
    with sinks.SmtpSink(flags=["-f", "RCPT", "-B", "550 5.1.1 sink says no"]) as sink:
        s = client(sink.addr)
        try:
            s.sendmail("a@example.com", ["b@dest.test"], MSG)
            r = None
        except smtplib.SMTPRecipientsRefused as e:
            r = e.recipients
        check_eq(r, {"b@dest.test": (550, b"5.1.1 sink says no")},
                 "smtp-sink -f RCPT -B: 550 with the chosen text")
        s.close()
        check_eq(sink.messages(), [], "smtp-sink: nothing captured after a refusal")


def main():
    test_aiosink()
    test_aiosink_tls()
    test_aiosink_auth()
    test_silent()
    test_smtp_sink()


if __name__ == "__main__":
    harness.run(main)
