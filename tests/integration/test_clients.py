#!/usr/bin/python3
"""test_clients - real SMTP clients against a real `herald serve`.

swaks, curl, msmtp, Python's smtplib (DATA, BDAT, SMTPUTF8) and Postfix's
smtp-source submit mail; every accepted message is looked up in the spool
by the queue id the client was given and compared byte for byte with what
the client sent (apart from the header fields Herald adds in front).

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_clients.py
"""
import os
import re
import secrets
import smtplib
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq, tls_context  # noqa: E402

DEADLINE = time.time() + 200      # the whole script, well inside meson's 240 s


def run(args, input=None, timeout=30):
    assert time.time() < DEADLINE, "test ran out of time"
    return subprocess.run(args, input=input, capture_output=True,
                          timeout=timeout)


# Herald's Received: field, always the first field of the stored message.
RECEIVED = re.compile(
    rb"Received: from (\S+) \(\[(?:127\.0\.0\.1|IPv6:::1)\]\)\r\n"
    rb"\tby herald\.test \(Herald\)"
    rb"(?: \(using (TLSv1\.[23]) with cipher ([A-Za-z0-9_-]+)\))?\r\n"
    rb"\twith ([A-Z0-9]+) id ([0-9a-z]{16})\r\n"
    rb"\tfor <([^>\r\n]+)>; "
    rb"((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} "
    rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    rb"\d\d:\d\d:\d\d [+-]\d{4})\r\n")
ADDED = re.compile(rb"Message-ID: <[0-9a-z]{16}\.[A-Za-z0-9_-]+@herald\.test>\r\n"
                   rb"Date: (?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} \w{3} \d{4} "
                   rb"\d\d:\d\d:\d\d [+-]\d{4}\r\n")


def stored(h, qid, rcpt, with_, tls=True, added=False):
    """Parse the spool file of qid, check Herald's added fields, return
    (envelope, the message as the client sent it)."""
    path = os.path.join(h.queue_dir(), qid)
    check(os.path.isfile(path), "%s: spool file exists" % qid)
    env, body = harness.parse_spool_file(path)
    check_eq(env["id"], qid, "%s: envelope id" % qid)
    m = RECEIVED.match(body)
    check(m is not None, "%s: Received: field first" % qid, body[:300])
    check_eq((m.group(4), m.group(5), m.group(6), m.group(2) is not None),
             (with_.encode(), qid.encode(), rcpt.encode(), tls),
             "%s: Received: says with %s id %s for <%s>, TLS %s" % (
                 qid, with_, qid, rcpt, tls))
    rest = body[m.end():]
    if added:
        a = ADDED.match(rest)
        check(a is not None, "%s: Herald added Message-ID: and Date:" % qid,
              rest[:200])
        rest = rest[a.end():]
    else:
        # the harness helper must agree when nothing else was added
        check_eq(harness.strip_added_headers(body), rest,
                 "%s: harness.strip_added_headers agrees" % qid)
    return env, rest


def check_env(env, qid, sender, rcpt, source="submission", auth="app1"):
    got = (env["sender"], env["rcpt"], env["source"], env.get("auth"),
           env["account"], env["client"])
    want = (sender, [rcpt], source, auth, "1" if auth or source == "submission"
            else "0", "127.0.0.1")
    check_eq(got, want, "%s: envelope sender/rcpt/source/auth/account/client"
             % qid)


def message(token, tool, extra=b"", msgid=True, eol=b"\r\n"):
    """A 7-bit test message with dots, blanks, folds and long lines; no
    final line end (the client adds it)."""
    lines = [b"From: Herald Test <a@example.com>",
             b"To: <b@inbound.test>",
             b"Subject: " + tool + b" " + token]
    if msgid:
        lines += [b"Message-ID: <" + token + b"@example.com>",
                  b"Date: Mon, 01 Jan 2024 00:00:00 +0000"]
    lines += [b"X-Folded: first part", b"\tsecond part",
              b"MIME-Version: 1.0",
              b"Content-Type: text/plain; charset=us-ascii",
              b"",
              b"body of " + token,
              b".leading dot",
              b"..two leading dots",
              b".",
              b"",
              b"trailing blanks   ",
              b"\tindented with a tab",
              b"y" * 998,
              extra + b"end of " + token]
    return eol.join(lines)


def find_by_token(h, before, token):
    new = h.queue_ids() - before
    hits = [q for q in sorted(new)
            if token in open(os.path.join(h.queue_dir(), q), "rb").read()]
    check_eq(len(hits), 1, "exactly one new spool file holds %s" % token.decode())
    return hits[0]


# ---------------------------------------------------------------- swaks

QUEUED_SWAKS = re.compile(r"^<~  250 2\.0\.0 Ok: queued as ([0-9a-z]{16})$", re.M)


def test_swaks(h, tmp):
    cases = [
        ("STARTTLS AUTH PLAIN", h.submission, ["-tls", "--auth", "PLAIN"]),
        ("STARTTLS AUTH LOGIN", h.submission, ["-tls", "--auth", "LOGIN"]),
        ("implicit TLS AUTH PLAIN", h.submissions, ["--tlsc", "--auth", "PLAIN"]),
    ]
    for name, addr, extra in cases:
        token = secrets.token_hex(8).encode()
        data = message(token, b"swaks " + name.encode())
        path = os.path.join(tmp, "swaks-%s.eml" % token.decode())
        open(path, "wb").write(data)
        p = run(["swaks", "--server", addr[0], "--port", str(addr[1]),
                 "--from", "a@example.com", "--to", "b@inbound.test",
                 "--auth-user", h.user, "--auth-password", h.password,
                 "--ehlo", "swaks.test", "--timeout", "20",
                 "--data", "@" + path] + extra)
        out = p.stdout.decode(errors="replace")
        check(p.returncode == 0, "swaks %s: exit 0" % name, p.stderr[-300:])
        check("<~  235 2.7.0 Authentication successful" in out,
              "swaks %s: 235 2.7.0 after AUTH" % name)
        if "-tls" in extra:
            plain = out.split(" -> STARTTLS")[0]
            check("250-STARTTLS" in plain and "AUTH" not in plain,
                  "swaks %s: STARTTLS but no AUTH offered before TLS" % name)
            check("<~  250-AUTH PLAIN LOGIN" in out,
                  "swaks %s: AUTH PLAIN LOGIN offered after TLS" % name)
        ids = QUEUED_SWAKS.findall(out)
        check_eq(len(ids), 1, "swaks %s: one '250 2.0.0 Ok: queued as'" % name)
        env, msg = stored(h, ids[0], "b@inbound.test", "ESMTPSA")
        check_env(env, ids[0], "a@example.com", "b@inbound.test")
        check_eq(env["helo"], "swaks.test", "swaks %s: helo recorded" % name)
        check_eq(msg, data + b"\r\n", "swaks %s: message stored byte for byte"
                 % name)


# ---------------------------------------------------------------- curl

QUEUED_CURL = re.compile(r"^< 250 2\.0\.0 Ok: queued as ([0-9a-z]{16})\r?$", re.M)


def test_curl(h, tmp):
    # smtp:// + STARTTLS; CRLF file without a final line end (curl adds it)
    token = secrets.token_hex(8).encode()
    data = message(token, b"curl smtp")
    path = os.path.join(tmp, "curl1.eml")
    open(path, "wb").write(data)
    url = "smtp://127.0.0.1:%d/curl.test" % h.submission[1]
    p = run(["curl", "-sS", "-v", "--max-time", "20", url, "--ssl-reqd", "-k",
             "--user", "%s:%s" % (h.user, h.password),
             "--mail-from", "a@example.com", "--mail-rcpt", "b@inbound.test",
             "--upload-file", path])
    err = p.stderr.decode(errors="replace")
    check(p.returncode == 0, "curl smtp:// --ssl-reqd: exit 0", err[-500:])
    check("< 220 2.0.0 Ready to start TLS" in err, "curl smtp://: STARTTLS used")
    ids = QUEUED_CURL.findall(err)
    check_eq(len(ids), 1, "curl smtp://: one '250 2.0.0 Ok: queued as'")
    env, msg = stored(h, ids[0], "b@inbound.test", "ESMTPSA")
    check_env(env, ids[0], "a@example.com", "b@inbound.test")
    check_eq(env["helo"], "curl.test", "curl smtp://: EHLO name from the URL")
    check_eq(msg, data + b"\r\n", "curl smtp://: message stored byte for byte")

    # smtps:// ; LF file converted by --crlf; no Message-ID/Date: Herald adds
    token = secrets.token_hex(8).encode()
    data = message(token, b"curl smtps", msgid=False, eol=b"\n") + b"\n"
    path = os.path.join(tmp, "curl2.eml")
    open(path, "wb").write(data)
    url = "smtps://127.0.0.1:%d/curl.test" % h.submissions[1]
    p = run(["curl", "-sS", "-v", "--max-time", "20", url, "-k", "--crlf",
             "--user", "%s:%s" % (h.user, h.password),
             "--mail-from", "a@example.com", "--mail-rcpt", "b@inbound.test",
             "--upload-file", path])
    err = p.stderr.decode(errors="replace")
    check(p.returncode == 0, "curl smtps://: exit 0", err[-500:])
    ids = QUEUED_CURL.findall(err)
    check_eq(len(ids), 1, "curl smtps://: one '250 2.0.0 Ok: queued as'")
    env, msg = stored(h, ids[0], "b@inbound.test", "ESMTPSA", added=True)
    check_env(env, ids[0], "a@example.com", "b@inbound.test")
    check_eq(msg, data.replace(b"\n", b"\r\n"),
             "curl smtps:// --crlf: message stored byte for byte")


# ---------------------------------------------------------------- msmtp

def test_msmtp(h, tmp):
    cases = [("STARTTLS auth plain", h.submission, "on", "plain"),
             ("STARTTLS auth login", h.submission, "on", "login"),
             ("implicit TLS auth plain", h.submissions, "off", "plain")]
    for i, (name, addr, starttls, auth) in enumerate(cases):
        conf = os.path.join(tmp, "msmtprc%d" % i)
        log = os.path.join(tmp, "msmtp%d.log" % i)
        with open(os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                  "w") as f:
            f.write("account herald\nhost 127.0.0.1\nport %d\ntls on\n"
                    "tls_starttls %s\ntls_certcheck off\nauth %s\nuser %s\n"
                    "password %s\nfrom a@example.com\ndomain msmtp.test\n"
                    "timeout 20\nlogfile %s\naccount default : herald\n" % (
                        addr[1], starttls, auth, h.user, h.password, log))
        token = secrets.token_hex(8).encode()
        data = message(token, b"msmtp " + name.encode(), eol=b"\n") + b"\n"
        p = run(["msmtp", "-C", conf, "b@inbound.test"], input=data)
        check(p.returncode == 0, "msmtp %s: exit 0" % name, p.stderr[-300:])
        ids = re.findall(r"smtpmsg='250 2\.0\.0 Ok: queued as ([0-9a-z]{16})'",
                         open(log).read())
        check_eq(len(ids), 1, "msmtp %s: log has '250 2.0.0 Ok: queued as'" % name)
        env, msg = stored(h, ids[0], "b@inbound.test", "ESMTPSA")
        check_env(env, ids[0], "a@example.com", "b@inbound.test")
        check_eq(env["helo"], "msmtp.test", "msmtp %s: helo recorded" % name)
        check_eq(msg, data.replace(b"\n", b"\r\n"),
                 "msmtp %s: message stored byte for byte" % name)


# ---------------------------------------------------------------- smtplib

def smtp_login(h):
    s = smtplib.SMTP(h.submission[0], h.submission[1], local_hostname="py.test",
                     timeout=20)
    s.starttls(context=tls_context())
    s.login(h.user, h.password)
    return s


def test_smtplib(h):
    token = secrets.token_hex(8).encode()
    data = message(token, b"smtplib sendmail")
    before = h.queue_ids()
    s = smtp_login(h)
    refused = s.sendmail("a@example.com", ["b@inbound.test"], data)
    check_eq(refused, {}, "smtplib starttls+login+sendmail: no refused recipient")
    qid = find_by_token(h, before, token)
    env, msg = stored(h, qid, "b@inbound.test", "ESMTPSA")
    check_env(env, qid, "a@example.com", "b@inbound.test")
    check_eq(msg, data + b"\r\n", "smtplib sendmail: message stored byte for byte")
    s.quit()


def test_bdat(h):
    s = smtp_login(h)
    check(s.has_extn("chunking"), "BDAT: CHUNKING offered")
    token = secrets.token_hex(8).encode()
    # No dot-stuffing in BDAT: '.' and '..' lines are content as they are.
    data = (b"From: a@example.com\r\nTo: b@inbound.test\r\n"
            b"Subject: bdat " + token + b"\r\n"
            b"Message-ID: <" + token + b"@example.com>\r\n"
            b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\n"
            b"first\r\n.\r\n..two\r\n.\r\nlast " + token + b"\r\n")
    # awkward chunk boundaries: inside a field name, between CR and LF
    cut1 = 7
    cut2 = data.index(b"\r\n\r\n") + 1
    chunks = [data[:cut1], data[cut1:cut2], data[cut2:]]
    check_eq(s.docmd("MAIL", "FROM:<a@example.com>"), (250, b"2.1.0 Ok"),
             "BDAT: MAIL 250 2.1.0")
    check_eq(s.docmd("RCPT", "TO:<b@inbound.test>"), (250, b"2.1.5 Ok"),
             "BDAT: RCPT 250 2.1.5")
    # first two chunks pipelined in one write
    s.send(b"BDAT %d\r\n" % len(chunks[0]) + chunks[0] +
           b"BDAT %d\r\n" % len(chunks[1]) + chunks[1])
    check_eq(s.getreply(), (250, b"2.0.0 Ok: %d octets received" % cut1),
             "BDAT chunk 1: 250 2.0.0 Ok: %d octets received" % cut1)
    check_eq(s.getreply(), (250, b"2.0.0 Ok: %d octets received" % cut2),
             "BDAT chunk 2: 250 2.0.0 Ok: %d octets received (running total)"
             % cut2)
    s.send(b"BDAT %d\r\n" % len(chunks[2]) + chunks[2])
    check_eq(s.getreply(), (250, b"2.0.0 Ok: %d octets received" % len(data)),
             "BDAT chunk 3: 250 2.0.0 Ok: %d octets received" % len(data))
    s.send(b"BDAT 0 LAST\r\n")
    code, text = s.getreply()
    m = re.match(rb"2\.0\.0 Ok: queued as ([0-9a-z]{16})$", text)
    check(code == 250 and m, "BDAT 0 LAST: 250 2.0.0 Ok: queued as", (code, text))
    qid = m.group(1).decode()
    env, msg = stored(h, qid, "b@inbound.test", "ESMTPSA")
    check_env(env, qid, "a@example.com", "b@inbound.test")
    check_eq(msg, data, "BDAT 0 LAST: chunks assembled byte for byte")

    # one chunk with LAST, no Message-ID/Date: Herald adds them
    token = secrets.token_hex(8).encode()
    data = (b"From: a@example.com\r\nSubject: bdat last " + token +
            b"\r\n\r\n.\r\nbody\r\n")
    check_eq(s.docmd("MAIL", "FROM:<a@example.com>"), (250, b"2.1.0 Ok"),
             "BDAT LAST: MAIL 250 2.1.0")
    check_eq(s.docmd("RCPT", "TO:<c@inbound.test>"), (250, b"2.1.5 Ok"),
             "BDAT LAST: RCPT 250 2.1.5")
    s.send(b"BDAT %d LAST\r\n" % len(data) + data)
    code, text = s.getreply()
    m = re.match(rb"2\.0\.0 Ok: queued as ([0-9a-z]{16})$", text)
    check(code == 250 and m, "BDAT n LAST: 250 2.0.0 Ok: queued as", (code, text))
    qid = m.group(1).decode()
    env, msg = stored(h, qid, "c@inbound.test", "ESMTPSA", added=True)
    check_env(env, qid, "a@example.com", "c@inbound.test")
    check_eq(msg, data, "BDAT n LAST: message stored byte for byte")
    check_eq(s.docmd("QUIT"), (221, b"2.0.0 Bye"), "BDAT session: QUIT 221")
    s.close()


def test_8bit(h):
    s = smtp_login(h)
    check(s.has_extn("8bitmime") and s.has_extn("smtputf8"),
          "8BITMIME and SMTPUTF8 offered")
    # SMTPUTF8: UTF-8 addresses in the envelope and in the header
    token = secrets.token_hex(8).encode()
    sender, rcpt = "jöran@example.com", "zoë@inbound.test"
    data = ("From: Jöran Ågren <jöran@example.com>\r\nTo: <zoë@inbound.test>\r\n"
            "Subject: grüße ").encode() + token + (
            "\r\nMessage-ID: <").encode() + token + (
            "@example.com>\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
            "\r\nĐây là nội dung\r\n.ñ\r\n").encode()
    check_eq(s.mail(sender, ["SMTPUTF8", "BODY=8BITMIME"]), (250, b"2.1.0 Ok"),
             "SMTPUTF8: MAIL FROM:<jöran@example.com> SMTPUTF8 BODY=8BITMIME 250")
    check_eq(s.rcpt(rcpt), (250, b"2.1.5 Ok"), "SMTPUTF8: RCPT TO:<zoë@inbound.test> 250")
    code, text = s.data(data)
    m = re.match(rb"2\.0\.0 Ok: queued as ([0-9a-z]{16})$", text)
    check(code == 250 and m, "SMTPUTF8: DATA 250 queued", (code, text))
    qid = m.group(1).decode()
    env, msg = stored(h, qid, rcpt, "UTF8SMTPSA")
    check_eq((env["sender"], env["rcpt"], env["smtputf8"], env["body"]),
             (sender, [rcpt], "1", "2"),
             "SMTPUTF8: envelope keeps UTF-8 addresses, smtputf8 1, body 8BITMIME")
    check_eq(msg, data, "SMTPUTF8: message stored byte for byte")
    s.command_encoding = "ascii"

    # 8BITMIME without SMTPUTF8
    token = secrets.token_hex(8).encode()
    data = (b"From: a@example.com\r\nSubject: 8bit " + token +
            b"\r\nMessage-ID: <" + token + b"@example.com>\r\n"
            b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\n"
            b"caf\xc3\xa9 \xff\xfe raw octets\r\n")
    check_eq(s.mail("a@example.com", ["BODY=8BITMIME"]), (250, b"2.1.0 Ok"),
             "8BITMIME: MAIL BODY=8BITMIME 250")
    check_eq(s.rcpt("b@inbound.test"), (250, b"2.1.5 Ok"), "8BITMIME: RCPT 250")
    code, text = s.data(data)
    m = re.match(rb"2\.0\.0 Ok: queued as ([0-9a-z]{16})$", text)
    check(code == 250 and m, "8BITMIME: DATA 250 queued", (code, text))
    qid = m.group(1).decode()
    env, msg = stored(h, qid, "b@inbound.test", "ESMTPSA")
    check_eq((env["smtputf8"], env["body"]), ("0", "2"),
             "8BITMIME: envelope body 8BITMIME, smtputf8 0")
    check_eq(msg, data, "8BITMIME: 8-bit message stored byte for byte")

    # 8-bit data without BODY=8BITMIME is refused and not stored
    before = h.queue_ids()
    check_eq(s.mail("a@example.com"), (250, b"2.1.0 Ok"), "7BIT: MAIL 250")
    check_eq(s.rcpt("b@inbound.test"), (250, b"2.1.5 Ok"), "7BIT: RCPT 250")
    check_eq(s.data(data), (554, b"5.6.1 8-bit data on line 6 without BODY=8BITMIME"),
             "8-bit data without BODY=8BITMIME: 554 5.6.1 naming the line")
    check_eq(h.queue_ids() - before, set(), "refused 8-bit message not in the queue")
    check_eq(s.noop(), (250, b"2.0.0 Ok"), "session usable after the refusal")
    s.quit()


# ---------------------------------------------------------------- smtp-source

def smtp_source_body(length):
    """The body Postfix's smtp-source writes for -l length: 78-octet lines
    starting with a digit, the remainder as X's (counting CRLF)."""
    out, n, i = [], length, 1
    while n >= 80:
        out.append(b"%d" % (i % 10) + b"X" * 77 + b"\r\n")
        n -= 80
        i += 1
    if n:
        out.append(b"X" * n + b"\r\n")
    return b"".join(out)


SOURCE_HEADER = re.compile(
    rb"From: <a@example\.com>\r\nTo: <x@inbound\.test>\r\n"
    rb"Date: [^\r\n]+\r\nMessage-Id: <[^>\r\n]+>\r\n\r\n")


def check_source_messages(h, new, source, account, what):
    body = smtp_source_body(5000)
    bad = []
    for qid in sorted(new):
        try:
            env, data = harness.parse_spool_file(os.path.join(h.queue_dir(), qid))
            m = RECEIVED.match(data)
            rest = data[m.end():]
            hd = SOURCE_HEADER.match(rest)
            ok = (m.group(5).decode() == qid and hd is not None and
                  rest[hd.end():] == body and env["sender"] == "a@example.com"
                  and env["rcpt"] == ["x@inbound.test"]
                  and env["source"] == source and env["account"] == account)
        except Exception as e:                     # noqa: BLE001
            ok = False
            data = repr(e).encode()
        if not ok:
            bad.append((qid, data[:400]))
    check(not bad, "%s: every spool file valid, From: <a@example.com>, body "
          "exact" % what, lambda: bad[:2])


def test_smtp_source(h):
    before = h.queue_ids()
    t0 = time.time()
    p = run(["/usr/sbin/smtp-source", "-s", "20", "-m", "200", "-l", "5000",
             "-f", "a@example.com", "-t", "x@inbound.test",
             "127.0.0.1:%d" % h.mx[1]], timeout=60)
    check_eq((p.returncode, p.stderr), (0, b""),
             "smtp-source -s 20 -m 200 to MX: exit 0, no errors (%.1fs)"
             % (time.time() - t0))
    new = h.queue_ids() - before
    check_eq(len(new), 200, "smtp-source to MX: exactly 200 new messages queued")
    check_source_messages(h, new, "mx", "0", "smtp-source to MX")

    # submission without AUTH, from an allowed address
    h.cli("account", "allow-ip", "acme", "127.0.0.1")
    ok = False
    for _ in range(50):                         # policy_refresh is 200 ms
        with smtplib.SMTP(*h.submission, timeout=10) as s:
            s.ehlo("py.test")
            code, _ = s.mail("a@example.com")
            if code == 250:
                ok = True
                break
        time.sleep(0.1)
    check(ok, "allow-ip 127.0.0.1: MAIL without AUTH accepted within 5 s")
    before = h.queue_ids()
    p = run(["/usr/sbin/smtp-source", "-s", "5", "-m", "20", "-l", "5000",
             "-f", "a@example.com", "-t", "x@inbound.test",
             "127.0.0.1:%d" % h.submission[1]], timeout=60)
    check_eq((p.returncode, p.stderr), (0, b""),
             "smtp-source -s 5 -m 20 to submission (allowed IP): exit 0")
    new = h.queue_ids() - before
    check_eq(len(new), 20, "smtp-source to submission: exactly 20 new messages")
    check_source_messages(h, new, "submission", "1", "smtp-source to submission")
    h.cli("account", "disallow-ip", "acme", "127.0.0.1")
    code = None
    for _ in range(50):
        with smtplib.SMTP(*h.submission, timeout=10) as s:
            s.ehlo("py.test")
            code, text = s.mail("a@example.com")
            if code == 530:
                break
        time.sleep(0.1)
    check_eq(code, 530, "disallow-ip: MAIL without AUTH refused (530) again within 5 s")


def test_ipv6():
    """Listeners on [::1]: curl delivers over IPv6 and the log has ::1."""
    port = harness.free_port()
    with harness.Herald(sets={"smtpd.mx_listen": "[::1]:%d,127.0.0.1:%d" % (port, port)}) as h:
        check(any("[::1]:%d" % port in line for line in h.banner),
              "serve prints the [::1] listener", "".join(h.banner))
        token = secrets.token_hex(8).encode()
        data = message(token, b"curl over IPv6")
        path = os.path.join(h.dir, "v6.eml")
        open(path, "wb").write(data)
        p = run(["curl", "-sS", "-v", "--max-time", "20", "smtp://[::1]:%d/v6.test" % port,
                 "--mail-from", "a@remote.example", "--mail-rcpt", "v6@inbound.test",
                 "--upload-file", path])
        err = p.stderr.decode(errors="replace")
        check(p.returncode == 0, "curl smtp://[::1]: exit 0", err[-500:])
        ids = QUEUED_CURL.findall(err)
        check_eq(len(ids), 1, "curl smtp://[::1]: one '250 2.0.0 Ok: queued as'")
        env, msg = stored(h, ids[0], "v6@inbound.test", "ESMTP", tls=False)
        check_eq(env["client"], "::1", "IPv6 client address in the envelope")
        check_eq(msg, data + b"\r\n", "curl smtp://[::1]: message stored byte for byte")


def main():
    test_ipv6()
    with harness.Herald() as h:
        tmp = os.path.join(h.dir, "clients")
        os.mkdir(tmp)
        test_swaks(h, tmp)
        test_curl(h, tmp)
        test_msmtp(h, tmp)
        test_smtplib(h)
        test_bdat(h)
        test_8bit(h)
        test_smtp_source(h)
        check_eq(len(h.queue_ids()), 3 + 2 + 3 + 1 + 2 + 2 + 200 + 20,
                 "queue holds every accepted message and nothing else")
        check_eq(h.uncommitted(), [], "no uncommitted file in the spool")
        h.stop()


if __name__ == "__main__":
    harness.run(main)
