#!/usr/bin/python3
"""test_policy - who may send what through Herald (invariant 4: no open relay).

Starts real `herald serve` instances (harness.py) and checks, with raw
sockets for exact bytes and with swaks as an independent relay prober:

  - the MX listener accepts mail for the inbound domains only, and refuses
    every address trick (percent hack, bang path, quoted local part,
    source route, address literal) with 554 5.7.1;
  - submission requires AUTH, AUTH requires TLS, bad credentials get
    535 5.7.8 after a delay and lock the client out with 454 4.7.0;
  - an authenticated account may only use its own domains, in MAIL FROM
    and in From: (smtpd.sender_policy = strict | envelope | none);
  - `herald account allow-ip` grants relay without AUTH within a second,
    and `disallow-ip` takes it back.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_policy.py
"""
import base64
import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import QUEUED, Conn, check, reply_ok, send_data  # noqa: E402


def expect(r, code, enh, text=None, what=""):
    """Check a reply's code, enhanced code and (exact or regex) text."""
    check(reply_ok(r, code, enh, text),
          "%s -> %d %s%s (got %r)" % (what, code, enh,
                                      "" if text is None else " " + str(getattr(text, "pattern", text)),
                                      r.lines[-1]))


def plain(user, password):
    return base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()


def message(frm="sender@example.com", to="rcpt@remote.example", subject="test", extra=""):
    hdr = ""
    if frm is not None:
        hdr += "From: %s\r\n" % frm
    return "%sTo: %s\r\nSubject: %s\r\n%s\r\nHello.\r\n" % (hdr, to, subject, extra)


def queued_id(r):
    m = QUEUED.fullmatch(r.text or "")
    return m.group(1) if m else None


def submission_authed(h, port="submission"):
    """A submission session after STARTTLS (or implicit TLS), EHLO and AUTH."""
    if port == "submissions":
        c = Conn(h.submissions, tls=True)
    else:
        c = Conn(h.submission)
        c.ehlo()
        c.starttls()
    c.ehlo()
    r = c.cmd("AUTH PLAIN " + plain(h.user, h.password))
    assert r.code == 235, r
    return c


def swaks(*args):
    p = subprocess.run(["swaks", "--timeout", "10", "--helo", "probe.test"] + list(args),
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


# ---- the MX listener: inbound domains only ----

RELAY_TRICKS = [
    # (recipient as sent, address echoed in the reply)
    ("user@example.com", "user@example.com"),
    ("victim@remote.example", "victim@remote.example"),
    ("user@sub.inbound.test", "user@sub.inbound.test"),
    ("user@inbound.test.evil.example", "user@inbound.test.evil.example"),
    ("user@xinbound.test", "user@xinbound.test"),
    ("user%remote.example@inbound.test", "user%remote.example@inbound.test"),
    ("remote.example!user@inbound.test", "remote.example!user@inbound.test"),
    ('"user@remote.example"@inbound.test', '"user@remote.example"@inbound.test'),
    ('"user%remote.example"@inbound.test', 'user%remote.example@inbound.test'),  # canonical form
    ('"plain"@inbound.test', 'plain@inbound.test'),
    ("@inbound.test:user@remote.example", "user@remote.example"),
    ("@remote.example:user@inbound.test", "user@inbound.test"),
    ("@inbound.test,@remote.example:user@inbound.test", "user@inbound.test"),
    ("user@[127.0.0.1]", "user@[127.0.0.1]"),
    ("user@[IPv6:::1]", "user@[IPv6:::1]"),
]


def test_mx_tls(h):
    """TLS on the MX listener changes nothing about who may relay."""
    c = Conn(h.mx)
    c.ehlo("probe.test")
    expect(c.starttls(), 220, "2.0.0", "Ready to start TLS", "mx: STARTTLS")
    r = c.ehlo("probe.test")
    check("AUTH" not in r.keywords and "STARTTLS" not in r.keywords,
          "mx: EHLO after TLS lists neither AUTH nor STARTTLS")
    expect(c.cmd("MAIL FROM:<bounce@remote.example>"), 250, "2.1.0", "Ok", "mx+TLS: MAIL FROM")
    expect(c.cmd("RCPT TO:<user@remote.example>"), 554, "5.7.1",
           "<user@remote.example>: Relay access denied", "mx+TLS: relay still refused")
    expect(c.cmd("RCPT TO:<user@inbound.test>"), 250, "2.1.5", "Ok", "mx+TLS: inbound accepted")
    c.close()


def test_mx(h):
    c = Conn(h.mx)
    check(c.greeting.lines == ["220 herald.test ESMTP Herald"], "mx: greeting is '220 herald.test ESMTP Herald'")
    r = c.ehlo("probe.test")
    check(r.code == 250 and r.lines[0].startswith("250-herald.test"), "mx: EHLO -> 250 herald.test")
    for kw in ("PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "CHUNKING", "DSN"):
        check(kw in r.keywords, "mx: EHLO lists %s" % kw)
    check("STARTTLS" in r.keywords, "mx: EHLO lists STARTTLS (opportunistic TLS for senders)")
    check("AUTH" not in r.keywords, "mx: EHLO does not list AUTH")
    expect(c.cmd("AUTH PLAIN " + plain(h.user, h.password)), 502, "5.5.1", None, "mx: AUTH")

    expect(c.cmd("MAIL FROM:<bounce@remote.example>"), 250, "2.1.0", "Ok", "mx: MAIL FROM any sender")
    expect(c.cmd("RCPT TO:<user@inbound.test>"), 250, "2.1.5", "Ok", "mx: RCPT to inbound domain")
    expect(c.cmd("RCPT TO:<User@INBOUND.Test>"), 250, "2.1.5", "Ok", "mx: RCPT to inbound domain, other case")
    expect(c.cmd("RCPT TO:<postmaster>"), 250, "2.1.5", "Ok", "mx: RCPT TO:<postmaster>")
    expect(c.cmd("RCPT TO:<postmaster@inbound.test>"), 250, "2.1.5", "Ok", "mx: RCPT to postmaster@inbound.test")
    for sent, echoed in RELAY_TRICKS:
        expect(c.cmd("RCPT TO:<%s>" % sent), 554, "5.7.1", "<%s>: Relay access denied" % echoed,
               "mx: relay probe RCPT TO:<%s>" % sent)
    # Only the accepted recipients are in the queued message, and it has no
    # From: at all: the From: rule is for accounts, not for inbound mail.
    r = send_data(c, "Subject: bounce\r\n\r\nbody\r\n")
    expect(r, 250, "2.0.0", QUEUED, "mx: DATA after mixed recipients")
    env, body = h.spool_messages()[queued_id(r)]
    check(env["rcpt"] == ["user@inbound.test", "User@INBOUND.Test", "postmaster", "postmaster@inbound.test"],
          "mx: queued message has only the accepted recipients (%r)" % env["rcpt"])
    check(env["source"] == "mx" and env["account"] == "0", "mx: queued message is inbound (source mx, account 0)")
    check(h.log_has(r'event=reject command=RCPT code=554 to="victim@remote\.example" .*reason=relay'),
          "mx: relay refusal is logged")

    expect(c.cmd("MAIL FROM:<>"), 250, "2.1.0", "Ok", "mx: null sender (bounces)")
    expect(c.cmd("RCPT TO:<victim@remote.example>"), 554, "5.7.1", None, "mx: relay probe with null sender")
    expect(c.cmd("DATA"), 554, "5.5.1", "Error: no valid recipients", "mx: DATA with no valid recipient")
    expect(c.cmd("RSET"), 250, "2.0.0", None, "mx: RSET")
    expect(c.cmd("MAIL FROM:<sender@example.com>"), 250, "2.1.0", None,
           "mx: MAIL FROM one of the account's domains")
    expect(c.cmd("RCPT TO:<victim@remote.example>"), 554, "5.7.1", None,
           "mx: an account's domain as sender gives no relay rights")
    expect(c.cmd("QUIT"), 221, "2.0.0", None, "mx: QUIT")
    c.close()

    # The BDAT path refuses relaying the same way (nothing is queued).
    before = set(h.spool_messages())
    c = Conn(h.mx)
    c.ehlo()
    c.cmd("MAIL FROM:<a@remote.example>")
    expect(c.cmd("RCPT TO:<victim@remote.example>"), 554, "5.7.1", None, "mx: relay probe before BDAT")
    c.send("BDAT 8 LAST\r\nSubject:")
    expect(c.reply(), 554, "5.5.1", "Error: no valid recipients", "mx: BDAT with no valid recipient")
    expect(c.cmd("NOOP"), 250, "2.0.0", None, "mx: session usable after refused BDAT")
    c.close()
    check(set(h.spool_messages()) == before, "mx: nothing queued by refused relay attempts")


def test_swaks_probes(h):
    """An independent client probes for an open relay."""
    host, port = h.mx
    base = ["--server", host, "--port", str(port), "--from", "probe@remote.example"]
    for to in ("victim@remote.example", "victim%remote.example@inbound.test",
               "remote.example!victim@inbound.test", "victim@[127.0.0.1]"):
        rc, out = swaks(*(base + ["--to", to]))
        check(rc != 0 and re.search(r"<[*~]\* +554 5\.7\.1 <[^>]*>: Relay access denied", out) is not None
              and "queued as" not in out,
              "swaks relay probe to %s on mx: 554 5.7.1, not queued (exit %d)" % (to, rc))
    rc, out = swaks(*(base + ["--to", "reports@inbound.test"]))
    check(rc == 0 and re.search(r"<[-~] +250 2\.0\.0 Ok: queued as ", out) is not None,
          "swaks to reports@inbound.test on mx: queued (exit %d)" % rc)
    # Unauthenticated on submission: refused at MAIL, whatever the recipient.
    host, port = h.submission
    rc, out = swaks("--server", host, "--port", str(port), "--from", "sender@example.com",
                    "--to", "victim@remote.example")
    check(rc != 0 and re.search(r"<[*~]\* +530 5\.7\.0 Authentication required", out) is not None,
          "swaks without AUTH on submission: 530 5.7.0 (exit %d)" % rc)


# ---- submission: AUTH and the account's domains ----

def test_submission_auth(h):
    c = Conn(h.submission)
    check(c.greeting.lines == ["220 herald.test ESMTP Herald"], "submission: greeting")
    r = c.ehlo()
    check("STARTTLS" in r.keywords, "submission: EHLO before TLS lists STARTTLS")
    check("AUTH" not in r.keywords, "submission: EHLO before TLS does not list AUTH")
    expect(c.cmd("MAIL FROM:<sender@example.com>"), 530, "5.7.0", "Authentication required",
           "submission: MAIL without AUTH")
    expect(c.cmd("AUTH PLAIN " + plain(h.user, h.password)), 538, "5.7.11", None,
           "submission: AUTH PLAIN before STARTTLS")
    expect(c.cmd("AUTH LOGIN"), 538, "5.7.11", None, "submission: AUTH LOGIN before STARTTLS")
    expect(c.cmd("RCPT TO:<user@inbound.test>"), 503, "5.5.1", None,
           "submission: RCPT without MAIL (no AUTH)")
    expect(c.starttls(), 220, "2.0.0", None, "submission: STARTTLS")
    expect(c.cmd("MAIL FROM:<sender@example.com>"), 503, "5.5.1", None,
           "submission: MAIL right after STARTTLS needs EHLO again")
    r = c.ehlo()
    check("AUTH" in r.keywords and any(l[4:].split() == ["AUTH", "PLAIN", "LOGIN"] for l in r.lines),
          "submission: EHLO after TLS lists AUTH PLAIN LOGIN")
    check("STARTTLS" not in r.keywords, "submission: EHLO after TLS does not list STARTTLS")
    expect(c.cmd("MAIL FROM:<sender@example.com>"), 530, "5.7.0", "Authentication required",
           "submission: MAIL over TLS without AUTH")
    expect(c.cmd("AUTH CRAM-MD5"), 504, "5.5.4", None, "submission: AUTH with unknown mechanism")
    expect(c.cmd("AUTH XOAUTH2 dGVzdA=="), 504, "5.5.4", None, "submission: AUTH XOAUTH2")
    t0 = time.monotonic()
    r = c.cmd("AUTH PLAIN " + plain(h.user, h.password + "x"))
    dt = time.monotonic() - t0
    expect(r, 535, "5.7.8", "Authentication credentials invalid", "submission: AUTH PLAIN wrong password")
    check(dt >= 0.009, "submission: failed AUTH answered after the fail delay (%.3fs >= 10ms)" % dt)
    check(h.log_has(r'event=auth result=failed user="%s"' % re.escape(h.user)), "submission: failed AUTH is logged")
    check(h.password not in h.read_log(), "submission: the password is not in the log")
    expect(c.cmd("AUTH PLAIN " + plain("nosuchuser", h.password)), 535, "5.7.8", None,
           "submission: AUTH PLAIN unknown user")
    # AUTH LOGIN, step by step.
    expect(c.cmd("AUTH LOGIN"), 334, None, "VXNlcm5hbWU6", "submission: AUTH LOGIN asks for the user")
    expect(c.cmd(base64.b64encode(h.user.encode()).decode()), 334, None, "UGFzc3dvcmQ6",
           "submission: AUTH LOGIN asks for the password")
    expect(c.cmd(base64.b64encode(h.password.encode()).decode()), 235, "2.7.0", "Authentication successful",
           "submission: AUTH LOGIN right password")
    expect(c.cmd("AUTH PLAIN " + plain(h.user, h.password)), 503, "5.5.1", None,
           "submission: second AUTH in a session")
    r = c.ehlo()
    check("AUTH" not in r.keywords, "submission: EHLO after AUTH no longer lists AUTH")

    # Sender domains: the envelope.
    for sender in ("sender@remote.example", "sender@sub.example.com", "sender@example.com.evil.test",
                   "sender@examplexcom"):
        expect(c.cmd("MAIL FROM:<%s>" % sender), 553, "5.7.1",
               "<%s>: Sender address is not in a domain of this account" % sender,
               "submission: MAIL FROM:<%s>" % sender)
    check(h.log_has(r'event=reject command=MAIL code=553 from="sender@remote\.example" account=1 '
                     r'reason=sender-domain'), "submission: sender-domain refusal is logged")
    expect(c.cmd("MAIL FROM:<Sender@EXAMPLE.com>"), 250, "2.1.0", "Ok",
           "submission: MAIL FROM the account's domain (other case)")
    expect(c.cmd("RCPT TO:<rcpt@remote.example>"), 250, "2.1.5", "Ok",
           "submission: authenticated client may relay to any domain")
    r = send_data(c, message())
    expect(r, 250, "2.0.0", QUEUED, "submission: message with the account's From: domain")
    env, body = h.spool_messages()[queued_id(r)]
    check(env["account"] == "1" and env["auth"] == h.user and env["source"] == "submission"
          and env["rcpt"] == ["rcpt@remote.example"],
          "submission: queued envelope names account 1, user %s, the recipient" % h.user)

    # Sender domains: the From: header (sender_policy = strict, the default).
    before = set(h.spool_messages())
    cases = [
        ("someone@remote.example", 550, "5.7.1", "From: domain remote.example is not a domain of this account"),
        ('"sender@example.com" <evil@remote.example>', 550, "5.7.1",
         "From: domain remote.example is not a domain of this account"),
        ("Evil <evil@remote.example> (sender@example.com)", 550, "5.7.1",
         "From: domain remote.example is not a domain of this account"),
        ("sender@example.com, other@remote.example", 550, "5.7.1",
         "From: domain remote.example is not a domain of this account"),
        ("Team: sender@example.com, other@remote.example;", 550, "5.7.1",
         "From: domain remote.example is not a domain of this account"),
        ("someone@sub.example.com", 550, "5.7.1", "From: domain sub.example.com is not a domain of this account"),
        (None, 550, "5.7.1", "Message has no From: header field"),
    ]
    for frm, code, enh, text in cases:
        expect(c.cmd("MAIL FROM:<sender@example.com>"), 250, "2.1.0", None, "submission: MAIL (From: %s)" % frm)
        expect(c.cmd("RCPT TO:<rcpt@remote.example>"), 250, "2.1.5", None, "submission: RCPT (From: %s)" % frm)
        expect(send_data(c, message(frm=frm)), code, enh, text, "submission: From: %s" % frm)
    check(set(h.spool_messages()) == before, "submission: no refused message was queued")
    check(h.log_has(r"event=reject command=DATA id=\S+ error=from-domain line=\d+ detail=\"remote\.example\""),
          "submission: From: refusal is logged")
    # A From: the account owns, in the forms people write it.
    for frm in ("=?utf-8?q?J=C3=B6rg?= <j@example.com>", '"Sales, Team" <sales@Example.COM>',
                "sender@example.com (Sender)"):
        c.cmd("MAIL FROM:<sender@example.com>")
        c.cmd("RCPT TO:<rcpt@remote.example>")
        expect(send_data(c, message(frm=frm)), 250, "2.0.0", QUEUED, "submission: From: %s accepted" % frm)
    # A From: line name in another case, folded over two lines.
    c.cmd("MAIL FROM:<sender@example.com>")
    c.cmd("RCPT TO:<rcpt@remote.example>")
    expect(send_data(c, "Subject: x\r\nfrom: Some One\r\n <evil@remote.example>\r\n\r\nbody\r\n"),
           550, "5.7.1", "From: domain remote.example is not a domain of this account",
           "submission: folded lower-case 'from:' with a foreign domain")
    expect(c.cmd("QUIT"), 221, "2.0.0", None, "submission: QUIT")
    c.close()


def test_submissions(h):
    c = Conn(h.submissions, tls=True)
    check(c.greeting.lines == ["220 herald.test ESMTP Herald"], "submissions: greeting after the TLS handshake")
    r = c.ehlo()
    check("AUTH" in r.keywords and "STARTTLS" not in r.keywords,
          "submissions: EHLO lists AUTH and not STARTTLS")
    expect(c.cmd("MAIL FROM:<sender@example.com>"), 530, "5.7.0", "Authentication required",
           "submissions: MAIL without AUTH")
    expect(c.cmd("AUTH PLAIN"), 334, None, "", "submissions: AUTH PLAIN without initial response")
    expect(c.cmd(plain(h.user, h.password)), 235, "2.7.0", None, "submissions: AUTH PLAIN response")
    expect(c.cmd("MAIL FROM:<sender@remote.example>"), 553, "5.7.1", None, "submissions: foreign MAIL FROM")
    expect(c.cmd("MAIL FROM:<sender@example.com>"), 250, "2.1.0", None, "submissions: MAIL")
    expect(c.cmd("RCPT TO:<rcpt@remote.example>"), 250, "2.1.5", None, "submissions: RCPT")
    expect(send_data(c, message()), 250, "2.0.0", QUEUED, "submissions: DATA")
    c.close()

    # swaks: AUTH LOGIN after STARTTLS on submission.
    host, port = h.submission
    rc, out = swaks("--server", host, "--port", str(port), "--tls", "--auth", "LOGIN",
                    "--auth-user", h.user, "--auth-password", h.password,
                    "--from", "app@example.com", "--to", "rcpt@remote.example")
    check(rc == 0 and re.search(r"<[-~] +250 2\.0\.0 Ok: queued as ", out) is not None,
          "swaks STARTTLS + AUTH LOGIN on submission: queued (exit %d)" % rc, out[-1500:])
    rc, out = swaks("--server", host, "--port", str(port), "--tls", "--auth", "PLAIN",
                    "--auth-user", h.user, "--auth-password", h.password,
                    "--from", "app@remote.example", "--to", "rcpt@remote.example")
    check(rc != 0 and re.search(r"<[*~]\* +553 5\.7\.1 <app@remote\.example>: Sender address is not in a domain",
                                out) is not None,
          "swaks AUTH PLAIN with a foreign sender: 553 5.7.1 (exit %d)" % rc)


def test_lockout(h, max_failures, lockout_s):
    """smtpd.auth_max_failures failures lock the user and the address out."""
    # The user: wrong passwords, then the right one is refused too.
    c = submission_authed_noauth(h)
    for i in range(max_failures):
        expect(c.cmd("AUTH PLAIN " + plain(h.user, "wrong%d" % i)), 535, "5.7.8", None,
               "lockout: wrong password %d/%d" % (i + 1, max_failures))
    expect(c.cmd("AUTH PLAIN " + plain(h.user, h.password)), 454, "4.7.0",
           "Too many authentication failures, try again later",
           "lockout: right password during the lockout")
    check(h.log_has(r'event=auth-locked user="%s"' % re.escape(h.user)), "lockout: logged as auth-locked")
    c.close()
    c = submission_authed_noauth(h)
    expect(c.cmd("AUTH PLAIN " + plain(h.user, h.password)), 454, "4.7.0", None,
           "lockout: a new connection is locked out too")
    c.close()
    time.sleep(lockout_s + 0.3)
    c = submission_authed_noauth(h)
    expect(c.cmd("AUTH PLAIN " + plain(h.user, h.password)), 235, "2.7.0", None,
           "lockout: right password after smtpd.auth_lockout")
    c.close()

    # The address: failures spread over other user names and connections
    # lock the client address, even for a user with no failures.
    for i in range(max_failures):
        c = submission_authed_noauth(h)
        expect(c.cmd("AUTH PLAIN " + plain("guess%d" % i, "pw")), 535, "5.7.8", None,
               "lockout: guessed user %d/%d" % (i + 1, max_failures))
        c.close()
    c = submission_authed_noauth(h)
    expect(c.cmd("AUTH PLAIN " + plain(h.user, h.password)), 454, "4.7.0", None,
           "lockout: address locked after failures for other users")
    c.close()
    c = Conn(h.submissions, tls=True)
    c.ehlo()
    expect(c.cmd("AUTH PLAIN " + plain(h.user, h.password)), 454, "4.7.0", None,
           "lockout: address locked on the submissions port as well")
    c.close()
    time.sleep(lockout_s + 0.3)
    c = submission_authed_noauth(h)
    expect(c.cmd("AUTH PLAIN " + plain(h.user, h.password)), 235, "2.7.0", None,
           "lockout: address unlocked after smtpd.auth_lockout")
    c.close()


def submission_authed_noauth(h):
    c = Conn(h.submission)
    c.ehlo()
    c.starttls()
    c.ehlo()
    return c


def test_allow_ip(h):
    """`account allow-ip` lets an address send without AUTH; disallow-ip revokes."""
    c = Conn(h.submission)
    c.ehlo()
    expect(c.cmd("MAIL FROM:<sender@example.com>"), 530, "5.7.0", None, "allow-ip: MAIL refused before allow-ip")
    c.close()
    out = h.cli("account", "allow-ip", "acme", "127.0.0.1")
    check("127.0.0.1" in out, "allow-ip: cli confirms (%r)" % out.strip())
    t0 = time.monotonic()
    r = None
    for _ in range(40):
        c = Conn(h.submission)
        c.ehlo()
        r = c.cmd("MAIL FROM:<sender@example.com>")
        if r.code == 250:
            break
        c.close()
        if time.monotonic() - t0 > 2.0:
            break
        time.sleep(0.05)
    dt = time.monotonic() - t0
    expect(r, 250, "2.1.0", "Ok", "allow-ip: MAIL without AUTH from the allowed address")
    check(dt < 1.5, "allow-ip: took effect within %.2fs (< 1.5s)" % dt)
    expect(c.cmd("RCPT TO:<rcpt@remote.example>"), 250, "2.1.5", None, "allow-ip: RCPT to a remote domain")
    r = send_data(c, message())
    expect(r, 250, "2.0.0", QUEUED, "allow-ip: message queued")
    env, _ = h.spool_messages()[queued_id(r)]
    check(env["account"] == "1" and env["source"] == "submission",
          "allow-ip: queued for account 1 as submission (%s/%s)" % (env["account"], env["source"]))
    expect(c.cmd("MAIL FROM:<sender@remote.example>"), 553, "5.7.1", None,
           "allow-ip: the account's sender domains still apply")
    c.cmd("RSET")
    c.cmd("MAIL FROM:<sender@example.com>")
    c.cmd("RCPT TO:<rcpt@remote.example>")
    expect(send_data(c, message(frm="x@remote.example")), 550, "5.7.1", None,
           "allow-ip: the From: rule still applies")
    c.close()

    h.cli("account", "disallow-ip", "acme", "127.0.0.1")
    t0 = time.monotonic()
    for _ in range(40):
        c = Conn(h.submission)
        c.ehlo()
        r = c.cmd("MAIL FROM:<sender@example.com>")
        c.close()
        if r.code != 250 or time.monotonic() - t0 > 2.0:
            break
        time.sleep(0.05)
    dt = time.monotonic() - t0
    expect(r, 530, "5.7.0", "Authentication required", "disallow-ip: MAIL refused again")
    check(dt < 1.5, "disallow-ip: took effect within %.2fs (< 1.5s)" % dt)


def test_sender_policy_envelope():
    with harness.Herald(sets={"smtpd.sender_policy": "envelope", "smtpd.auth_fail_delay": "300ms"}) as h:
        # The failure delay doubles with each failure of the address.
        c = submission_authed_noauth(h)
        for n, least in ((1, 0.29), (2, 0.59)):
            t0 = time.monotonic()
            r = c.cmd("AUTH PLAIN " + plain(h.user, "wrong"))
            dt = time.monotonic() - t0
            expect(r, 535, "5.7.8", None, "auth_fail_delay=300ms: failure %d" % n)
            check(least <= dt < least + 1.5, "auth_fail_delay=300ms: failure %d answered after %.2fs (>= %.2fs)"
                  % (n, dt, least))
        expect(c.cmd("AUTH PLAIN " + plain(h.user, h.password)), 235, "2.7.0", None,
               "auth_fail_delay=300ms: right password after two failures")
        c.close()
        c = submission_authed(h)
        expect(c.cmd("MAIL FROM:<sender@remote.example>"), 553, "5.7.1", None,
               "sender_policy=envelope: foreign MAIL FROM refused")
        c.cmd("MAIL FROM:<sender@example.com>")
        c.cmd("RCPT TO:<rcpt@remote.example>")
        expect(send_data(c, message(frm="someone@remote.example")), 250, "2.0.0", QUEUED,
               "sender_policy=envelope: foreign From: accepted")
        c.cmd("MAIL FROM:<sender@example.com>")
        c.cmd("RCPT TO:<rcpt@remote.example>")
        expect(send_data(c, message(frm=None)), 250, "2.0.0", QUEUED,
               "sender_policy=envelope: message without From: accepted")
        c.close()


def test_sender_policy_none():
    with harness.Herald(sets={"smtpd.sender_policy": "none"}) as h:
        c = submission_authed(h, "submissions")
        expect(c.cmd("MAIL FROM:<sender@remote.example>"), 250, "2.1.0", None,
               "sender_policy=none: foreign MAIL FROM accepted")
        c.cmd("RCPT TO:<rcpt@remote.example>")
        r = send_data(c, message(frm="someone@remote.example"))
        expect(r, 250, "2.0.0", QUEUED, "sender_policy=none: foreign From: accepted")
        env, _ = h.spool_messages()[queued_id(r)]
        check(env["sender"] == "sender@remote.example" and env["account"] == "1",
              "sender_policy=none: queued with the given sender for account 1")
        c.close()
        # Relay rules for unauthenticated clients do not depend on it.
        c = Conn(h.mx)
        c.ehlo()
        c.cmd("MAIL FROM:<a@remote.example>")
        expect(c.cmd("RCPT TO:<victim@remote.example>"), 554, "5.7.1", None,
               "sender_policy=none: mx still refuses relaying")
        c.close()
        c = Conn(h.submission)
        c.ehlo()
        expect(c.cmd("MAIL FROM:<sender@remote.example>"), 530, "5.7.0", None,
               "sender_policy=none: submission still requires AUTH")
        c.close()


def main():
    max_failures, lockout_s = 3, 1.0
    with harness.Herald(sets={"smtpd.max_errors": "100",
                              "smtpd.auth_max_failures": str(max_failures),
                              "smtpd.auth_lockout": "1s"}) as h:
        test_mx(h)
        test_swaks_probes(h)
        test_mx_tls(h)
        test_submission_auth(h)
        test_submissions(h)
        test_allow_ip(h)
        test_lockout(h, max_failures, lockout_s)
        check(h.proc.poll() is None, "herald serve is still running")
    test_sender_policy_envelope()
    test_sender_policy_none()


if __name__ == "__main__":
    harness.run(main)
