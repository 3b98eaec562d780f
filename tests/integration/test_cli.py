#!/usr/bin/python3
"""test_cli - the `herald` command line: init, --help, configuration
(herald.conf, --set, errors naming file, line and key), accounts,
credentials, domains, the queue commands, and a credential revocation
seen by a running server.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_cli.py
"""
import base64
import os
import re
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq, tls_context  # noqa: E402

HERALD = harness.HERALD


def herald(data, *args):
    """Run herald on a data directory (no --set); CompletedProcess."""
    return subprocess.run([HERALD, "--data", data] + list(args),
                          capture_output=True, text=True, timeout=30)


def ok(p, what):
    check(p.returncode == 0, what + ": exit 0",
          lambda: "exit %d, stdout %r, stderr %r" % (p.returncode, p.stdout, p.stderr))
    return p.stdout


def fails(p, what, stderr_is=None):
    """A refused command: non-zero exit, nothing on stdout, one clear line
    on stderr (exactly stderr_is when given)."""
    check(p.returncode != 0 and p.returncode < 128,
          what + ": fails (exit %d)" % p.returncode,
          lambda: "stdout %r stderr %r" % (p.stdout, p.stderr))
    if stderr_is is not None:
        check_eq(p.stderr, stderr_is + "\n", what + ": error message")
    return p.stderr


def read(path):
    with open(path, "rb") as f:
        return f.read()


# ---------------------------------------------------------------- init, help

COMMANDS = ["init", "serve", "account create", "account list",
            "account allow-ip", "account disallow-ip", "credential create",
            "credential list", "credential revoke", "domain add", "domain list",
            "domain remove", "queue list", "queue show", "config dump", "version"]


def test_init_and_help(tmp):
    data = os.path.join(tmp, "d1")
    out = ok(herald(data, "init"), "init (first)")
    check("created self-signed TLS certificate" in out and
          "is ready" in out, "init (first): reports certificate and store", out)
    files = {f: read(os.path.join(data, f)) for f in
             ("tls/cert.pem", "tls/key.pem", "secrets/master.key")}
    check_eq(os.stat(os.path.join(data, "tls/key.pem")).st_mode & 0o777, 0o600,
             "init: TLS key is mode 0600")
    check_eq(os.stat(os.path.join(data, "secrets/master.key")).st_mode & 0o077, 0,
             "init: master key not readable by others")
    ok(herald(data, "account", "create", "keepme"), "account create keepme")
    out = ok(herald(data, "init"), "init (second)")
    check("created" not in out, "init (second): creates nothing new", out)
    for f, before in files.items():
        check_eq(read(os.path.join(data, f)), before, "init (second): %s kept" % f)
    out = ok(herald(data, "account", "list"), "account list after second init")
    check(re.search(r"^1\s+keepme\s+\S+Z$", out, re.M) is not None,
          "init (second): database kept (account keepme still there)", out)

    p = herald(data, "--help")
    check_eq((p.returncode, p.stderr), (0, ""), "herald --help: exit 0, no stderr")
    for c in COMMANDS:
        check(c in p.stdout, "herald --help lists '%s'" % c)
        p2 = herald(data, *(c.split() + ["--help"]))
        check(p2.returncode == 0 and p2.stdout.startswith("usage: herald " + c)
              and p2.stderr == "", "herald %s --help: exit 0, usage on stdout" % c,
              lambda: (p2.returncode, p2.stdout[:200], p2.stderr[:200]))
    for fam in ("account", "credential", "domain", "queue", "config"):
        p2 = herald(data, fam, "--help")
        check(p2.returncode == 0 and p2.stdout.startswith("usage:\n  herald " + fam)
              and p2.stderr == "", "herald %s --help: exit 0, subcommands on stdout"
              % fam, lambda: (p2.returncode, p2.stdout[:200], p2.stderr[:200]))
        p2 = herald(data, fam)
        check(p2.returncode == 2 and p2.stderr.startswith("usage:\n"),
              "herald %s (no subcommand): exit 2, usage on stderr" % fam)
    p = herald(data, "frobnicate")
    check(p.returncode == 2 and p.stderr.startswith(
        "herald: unknown command 'frobnicate'\n"), "unknown command: exit 2, named")
    p = herald(data, "version")
    check(p.returncode == 0 and re.match(r"herald \d+\.\d+\.\d+\n$", p.stdout),
          "version: 'herald X.Y.Z'", p.stdout)
    missing = os.path.join(tmp, "nothere")
    fails(herald(missing, "account", "list"), "account list on a missing data dir",
          "herald: data directory %s does not exist; run 'herald init --data %s' "
          "first" % (missing, missing))
    check(not os.path.exists(missing), "missing data dir not created by account list")


# ---------------------------------------------------------------- config

def dump_value(out, key):
    m = re.search(r"^%s = (.*)$" % re.escape(key), out, re.M)
    return m.group(1) if m else None


def test_config(tmp):
    data = os.path.join(tmp, "d2")
    ok(herald(data, "init"), "init d2")
    conf = os.path.join(data, "herald.conf")
    out = ok(herald(data, "config", "dump"), "config dump with no herald.conf")
    check("# configuration file: (none)\n" in out, "config dump: says no file", out[:300])
    want = {"smtpd.max_recipients": "1000", "smtpd.max_message_size": "52428800",
            "smtpd.data_line_max": "1000", "smtpd.command_timeout": "300s",
            "smtpd.submission_listen": "127.0.0.1:587",
            "smtpd.require_8bitmime": "yes",
            "store.url": os.path.join(data, "herald.db"),
            "smtpd.tls_cert": os.path.join(data, "tls", "cert.pem")}
    got = {k: dump_value(out, k) for k in want}
    check_eq(got, want, "config dump: defaults (and paths under the data dir)")

    with open(conf, "w") as f:
        f.write("# a comment\n\nsmtpd.max_recipients = 7\n[smtpd]\n"
                "max_message_size = 10k\n  hostname =  conf.test  \n")
    out = ok(herald(data, "config", "dump"), "config dump with herald.conf")
    check("# configuration file: %s\n" % conf in out, "config dump: names the file")
    check_eq((dump_value(out, "smtpd.max_recipients"),
              dump_value(out, "smtpd.max_message_size"),
              dump_value(out, "smtpd.hostname")),
             ("7", "10240", "conf.test"),
             "config dump: herald.conf values, [smtpd] section, 10k = 10240")
    out = ok(herald(data, "--set", "smtpd.max_recipients=9", "--set",
                    "smtpd.threads=3", "config", "dump"), "config dump --set")
    check_eq((dump_value(out, "smtpd.max_recipients"), dump_value(out, "smtpd.threads"),
              dump_value(out, "smtpd.max_message_size")), ("9", "3", "10240"),
             "config dump: --set overrides herald.conf, file values stay")

    bad = [
        ("smtpd.max_recipients = 7\n\nsmtpd.bogus = 1\n", 3,
         "unknown setting 'smtpd.bogus'"),
        ("[smtpd]\nbogus = 1\n", 2, "unknown setting 'smtpd.bogus'"),
        ("smtpd.max_recipients = -3\n", 1,
         "smtpd.max_recipients: '-3' is out of range (1 to 1000000)"),
        ("# x\nsmtpd.max_message_size = lots\n", 2,
         "smtpd.max_message_size: 'lots' is not a size (e.g. 512, 64k, 50M, 1G)"),
        ("smtpd.require_8bitmime = maybe\n", 1,
         "smtpd.require_8bitmime: 'maybe' is not yes or no"),
        ("smtpd.hostname\n", 1, "expected 'name = value', got 'smtpd.hostname'"),
    ]
    for text, line, msg in bad:
        with open(conf, "w") as f:
            f.write(text)
        fails(herald(data, "config", "dump"), "herald.conf %r" % text,
              "herald: configuration: %s:%d: %s" % (conf, line, msg))
    # serve refuses to start on a bad file, before binding anything
    t0 = time.time()
    with open(conf, "w") as f:
        f.write("smtpd.max_recipients = 7\nsmtpd.max_recipients = many\n")
    fails(herald(data, "--set", "smtpd.submission_listen=127.0.0.1:%d"
                 % harness.free_port(), "serve"), "serve with a bad herald.conf",
          "herald: configuration: %s:2: smtpd.max_recipients: 'many' is not a whole "
          "number" % conf)
    check(time.time() - t0 < 10, "serve with a bad herald.conf stops at once")
    os.unlink(conf)
    fails(herald(data, "--set", "smtpd.bogus=1", "config", "dump"),
          "--set smtpd.bogus=1",
          "herald: configuration: --set unknown setting 'smtpd.bogus'")
    fails(herald(data, "--set", "smtpd.max_recipients=abc", "config", "dump"),
          "--set smtpd.max_recipients=abc",
          "herald: configuration: --set smtpd.max_recipients: 'abc' is not a whole "
          "number")
    fails(herald(data, "--set", "nokey", "config", "dump"), "--set nokey",
          "herald: configuration: --set nokey: expected name=value")
    fails(herald(data, "--set", "smtpd.bogus=1", "account", "list"),
          "--set smtpd.bogus=1 on another command",
          "herald: configuration: --set unknown setting 'smtpd.bogus'")


# ---------------------------------------------------------------- accounts

def test_accounts(tmp):
    data = os.path.join(tmp, "d3")
    ok(herald(data, "init"), "init d3")
    check_eq(ok(herald(data, "account", "create", "acme"), "account create acme"),
             "account acme created (id 1)\n", "account create acme: prints id 1")
    fails(herald(data, "account", "create", "acme"), "duplicate account",
          "herald: account 'acme' already exists")
    fails(herald(data, "account", "create", "bad name!"), "invalid account name",
          "herald: invalid account name 'bad name!': use 1-64 characters of "
          "A-Z a-z 0-9 . _ -")
    fails(herald(data, "account", "create"), "account create without a name")
    ok(herald(data, "account", "create", "other"), "account create other")
    out = ok(herald(data, "account", "list"), "account list")
    rows = [l.split()[:2] for l in out.splitlines()[1:]]
    check_eq(rows, [["1", "acme"], ["2", "other"]], "account list: both accounts")

    # domains
    ok(herald(data, "domain", "add", "--account", "acme", "example.com"),
       "domain add example.com to acme")
    ok(herald(data, "domain", "add", "--account", "acme", "Mail.Example.ORG"),
       "domain add Mail.Example.ORG to acme")
    fails(herald(data, "domain", "add", "--account", "other", "example.com"),
          "domain owned by another account",
          "herald: domain 'example.com' belongs to another account")
    fails(herald(data, "domain", "add", "--account", "nobody", "x.test"),
          "domain add to an unknown account",
          "herald: no account 'nobody' (see 'herald account list')")
    fails(herald(data, "domain", "list", "--account", "nobody"),
          "domain list of an unknown account",
          "herald: no account 'nobody' (see 'herald account list')")
    fails(herald(data, "domain", "add", "--account", "acme", "not a domain"),
          "domain add of an invalid domain")
    out = ok(herald(data, "domain", "list", "--account", "acme"), "domain list acme")
    doms = sorted(l.split()[0] for l in out.splitlines()[1:])
    check_eq(doms, ["example.com", "mail.example.org"],
             "domain list: both domains (normalized to lower case)")
    out = ok(herald(data, "domain", "list", "--account", "other"), "domain list other")
    check_eq(out.splitlines()[1:], [], "domain list other: empty (walls)")
    fails(herald(data, "domain", "remove", "--account", "other", "example.com"),
          "domain remove by another account",
          "herald: no domain 'example.com' in this account")
    ok(herald(data, "domain", "remove", "--account", "acme", "mail.example.org"),
       "domain remove by the owner")
    out = ok(herald(data, "domain", "list", "--account", "acme"), "domain list acme")
    check_eq([l.split()[0] for l in out.splitlines()[1:]], ["example.com"],
             "domain remove: gone from the list")

    # credentials
    out = ok(herald(data, "credential", "create", "--account", "acme", "--name",
                    "app1"), "credential create app1")
    m = re.match(r"username: app1\npassword: ([A-Za-z0-9]{33})\n", out)
    check(m is not None, "credential create: prints username and a 33-character "
          "letters-and-digits password (196 bits; no leading '-' for command lines)", out)
    pw = m.group(1)
    fails(herald(data, "credential", "create", "--account", "other", "--name",
                 "app1"), "credential create with a taken username",
          "herald: SMTP username 'app1' is already taken")
    out = ok(herald(data, "credential", "create", "--account", "other"),
             "credential create without --name")
    check(re.match(r"username: other-[a-z0-9]{6}\npassword: [A-Za-z0-9]{33}\n", out) is not None,
          "credential create without --name: a generated username", out)
    fails(herald(data, "credential", "create", "--account", "nobody"),
          "credential create for an unknown account",
          "herald: no account 'nobody' (see 'herald account list')")
    out = ok(herald(data, "credential", "list", "--account", "acme"),
             "credential list acme")
    check(re.search(r"^app1\s+\S+Z$", out, re.M) is not None and pw not in out,
          "credential list: app1 listed, password not shown", out)
    db = read(os.path.join(data, "herald.db"))
    wal = os.path.join(data, "herald.db-wal")
    if os.path.exists(wal):
        db += read(wal)
    check(pw.encode() not in db, "password not stored in clear in the database")
    fails(herald(data, "credential", "revoke", "--account", "other", "app1"),
          "revoke of another account's credential",
          "herald: no such active credential in this account")
    out = ok(herald(data, "credential", "list", "--account", "acme"),
             "credential list after the refused revoke")
    check("revoked" not in out, "refused revoke left app1 active", out)
    check_eq(ok(herald(data, "credential", "revoke", "--account", "acme", "app1"),
                "credential revoke by the owner"), "credential app1 revoked\n",
             "credential revoke: confirms")
    out = ok(herald(data, "credential", "list", "--account", "acme"),
             "credential list after revoke")
    check(re.search(r"^app1\s+\S+Z\s+revoked \S+Z$", out, re.M) is not None,
          "credential list: app1 marked revoked", out)
    fails(herald(data, "credential", "revoke", "--account", "acme", "app1"),
          "revoke twice", "herald: no such active credential in this account")

    # relay addresses
    out = ok(herald(data, "account", "allow-ip", "acme", "10.0.0.0/8"),
             "allow-ip 10.0.0.0/8")
    check_eq(out, "10.0.0.0/8 may send for account acme without AUTH\n",
             "allow-ip: confirms")
    fails(herald(data, "account", "allow-ip", "acme", "bogus"), "allow-ip bogus",
          "herald: invalid relay network 'bogus' is not an IPv4 or IPv6 address "
          "or network")
    fails(herald(data, "account", "allow-ip", "nobody", "10.0.0.1"),
          "allow-ip for an unknown account",
          "herald: no account 'nobody' (see 'herald account list')")
    fails(herald(data, "account", "disallow-ip", "acme", "10.1.0.0/16"),
          "disallow-ip of a network never allowed",
          "herald: no relay network 10.1.0.0/16 in this account")
    fails(herald(data, "account", "disallow-ip", "other", "10.0.0.0/8"),
          "disallow-ip by another account",
          "herald: no relay network 10.0.0.0/8 in this account")
    ok(herald(data, "account", "disallow-ip", "acme", "10.0.0.0/8"),
       "disallow-ip by the owner")


# ---------------------------------------------------------------- with a server

def try_auth(h, user, password):
    """(code, text) of AUTH PLAIN on a fresh STARTTLS session."""
    token = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode())
    with smtplib.SMTP(*h.submission, local_hostname="cli.test", timeout=10) as s:
        s.starttls(context=tls_context())
        s.ehlo("cli.test")
        return s.docmd("AUTH", "PLAIN " + token.decode())


def test_server(tmp):
    with harness.Herald(start=False) as h:
        with open(os.path.join(h.data, "herald.conf"), "w") as f:
            f.write("[smtpd]\nmax_recipients = 2\n")
        h.start()
        p = h.cli("serve", "--set", "smtpd.submission_listen=127.0.0.1:%d" % harness.free_port(),
                  "--set", "smtpd.submissions_listen=", "--set", "smtpd.mx_listen=", check=False)
        fails(p, "a second serve on the same data directory",
              "herald: %s is in use by another herald serve (%s is locked)" % (
                  h.data, os.path.join(h.data, "serve.lock")))
        p = h.cli("queue", "list")
        check_eq(p, "%-16s %-20s %9s %-7s %-10s %s\n0 messages\n" % (
            "ID", "RECEIVED", "SIZE", "ACCOUNT", "STATE", "ENVELOPE"),
            "queue list: empty queue")

        # one message through submission with DSN parameters, one through MX
        with smtplib.SMTP(*h.submission, local_hostname="cli.test", timeout=10) as s:
            s.starttls(context=tls_context())
            s.login(h.user, h.password)
            check_eq(s.mail("a@example.com", ["RET=HDRS", "ENVID=env+2Bid"]),
                     (250, b"2.1.0 Ok"), "MAIL with RET and ENVID")
            check_eq(s.rcpt("b@inbound.test", ["NOTIFY=SUCCESS,FAILURE",
                                               "ORCPT=rfc822;b@inbound.test"]),
                     (250, b"2.1.5 Ok"), "RCPT 1 with NOTIFY and ORCPT")
            check_eq(s.rcpt("c@inbound.test"), (250, b"2.1.5 Ok"), "RCPT 2")
            check_eq(s.rcpt("d@inbound.test"),
                     (452, b"4.5.3 Error: too many recipients"),
                     "RCPT 3: 452 4.5.3 (max_recipients = 2 from herald.conf)")
            code, text = s.data(b"From: a@example.com\r\nSubject: q\r\n\r\nhi\r\n")
            check_eq(code, 250, "DATA accepted")
            sub_id = re.match(rb"2\.0\.0 Ok: queued as (\w{16})$", text).group(1).decode()
        with smtplib.SMTP(*h.mx, local_hostname="mx.test", timeout=10) as s:
            s.ehlo("mx.test")
            s.mail("")
            s.rcpt("bounce@inbound.test")
            code, text = s.data(b"Subject: bounce\r\n\r\nreport\r\n")
            check_eq(code, 250, "MX: null sender message accepted")
            mx_id = re.match(rb"2\.0\.0 Ok: queued as (\w{16})$", text).group(1).decode()

        out = h.cli("queue", "list")
        lines = out.splitlines()
        check_eq(lines[-1], "2 messages", "queue list: '2 messages'")
        rows = {l.split()[0]: l for l in lines[1:-1]}
        check_eq(sorted(rows), sorted([sub_id, mx_id]), "queue list: both ids, first column")
        size = len(harness.parse_spool_file(os.path.join(h.queue_dir(), sub_id))[1])
        check(re.match(r"%s \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ +%d 1 +queued +"
                       r"<a@example\.com> -> 2 rcpts$" % (sub_id, size),
                       rows[sub_id]) is not None,
              "queue list: submission row (size, account, sender, 2 rcpts)", rows[sub_id])
        check(re.search(r" 0 +queued +<> -> 1 rcpt$", rows[mx_id]) is not None,
              "queue list: MX row (account 0, null sender, 1 rcpt)", rows[mx_id])

        out = h.cli("queue", "show", sub_id)
        want = [
            "id:          %s" % sub_id,
            "state:       queued",
            "size:        %d bytes" % size,
            "account:     1",
            "source:      submission",
            "client:      127.0.0.1 (helo cli.test)",
            "auth:        app1",
            "sender:      <a@example.com>",
            "body:        7BIT",
            "dsn:         ret=HDRS envid=env+id",   # xtext decoded
            "file:        %s" % os.path.join(h.queue_dir(), sub_id),
            "recipient:   <b@inbound.test> notify=SUCCESS,FAILURE "
            "orcpt=rfc822;b@inbound.test state=queued",
            "recipient:   <c@inbound.test> notify=- orcpt=- state=queued",
        ]
        got = out.splitlines()
        missing = [w for w in want if w not in got]
        check_eq(missing, [], "queue show: id, state, size, sender, DSN, recipients")
        check(re.search(r"^received:    \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", out, re.M)
              is not None, "queue show: received time")
        check("From         a@example.com" in got and "Subject      q" in got,
              "queue show: From and Subject of the message", out)
        check(any(l.startswith("Message-ID   <%s." % sub_id) for l in got),
              "queue show: the Message-ID Herald added", out)
        p = subprocess.run([harness.HERALD, "--data", h.data, "queue", "show", sub_id, "--message"],
                           capture_output=True, timeout=30)
        check_eq(p.stdout, harness.parse_spool_file(os.path.join(h.queue_dir(), sub_id))[1],
                 "queue show --message: the stored message, byte for byte")
        out = h.cli("queue", "show", mx_id)
        check("sender:      <>" in out.splitlines() and
              "source:      mx" in out.splitlines(), "queue show: MX message", out)
        p = h.cli("queue", "show", "k0t8aaaaaaaaaaaa", check=False)
        fails(p, "queue show of an unknown id")
        check(p.stderr.startswith("herald: no message k0t8aaaaaaaaaaaa in the queue"),
              "queue show unknown id: says so", p.stderr)
        for bad in ("../../herald.db", "nosuchid", ""):
            p = h.cli("queue", "show", bad, check=False)
            fails(p, "queue show %r" % bad,
                  "herald: '%s' is not a queue id" % bad if bad else None)
        fails(h.cli("queue", "show", check=False), "queue show without an id")

        # revocation reaches the running server (policy_refresh = 200ms)
        out = h.cli("credential", "create", "--account", "acme", "--name", "app2")
        pw2 = re.search(r"password: (\S+)", out).group(1)
        h.cli("account", "create", "other")
        out = h.cli("credential", "create", "--account", "other", "--name", "oth1")
        pw3 = re.search(r"password: (\S+)", out).group(1)
        deadline = time.time() + 5
        r2 = r3 = None
        while time.time() < deadline:
            r2, r3 = try_auth(h, "app2", pw2), try_auth(h, "oth1", pw3)
            if r2[0] == 235 and r3[0] == 235:
                break
            time.sleep(0.1)
        check_eq((r2, r3), ((235, b"2.7.0 Authentication successful"),) * 2,
                 "new credentials app2 (acme) and oth1 (other) work within 5 s")
        fails(h.cli("credential", "revoke", "--account", "acme", "oth1", check=False),
              "acme revoking other's credential",
              "herald: no such active credential in this account")
        h.cli("credential", "revoke", "--account", "acme", "app2")
        t0 = time.time()
        r = None
        while time.time() < t0 + 5:
            r = try_auth(h, "app2", pw2)
            if r[0] != 235:
                break
            time.sleep(0.05)
        took = time.time() - t0
        check_eq(r, (535, b"5.7.8 Authentication credentials invalid"),
                 "revoked credential: AUTH 535 5.7.8")
        check(took < 1.5, "revocation effective within ~1 s (took %.2f s)" % took)
        check_eq(try_auth(h, "oth1", pw3), (235, b"2.7.0 Authentication successful"),
                 "other's credential still works after acme's refused revoke")
        check_eq(try_auth(h, h.user, h.password),
                 (235, b"2.7.0 Authentication successful"),
                 "app1 unaffected by the revocation of app2")
        h.stop()


def test_privilege_drop():
    """As root, serve binds its ports, then runs as server.user."""
    if os.geteuid() != 0:
        print("# not root: server.user not tested")
        return
    import pwd
    nobody = pwd.getpwnam("nobody")
    with harness.Herald(start=False) as h:
        h.sets["server.user"] = "nobody"
        # The data directory still belongs to root: refused at start.
        p = h.cli("serve", check=False)
        check(p.returncode == 1 and "server.user 'nobody' cannot write" in p.stderr,
              "server.user without access to the data directory: a clear error",
              p.stderr)
        os.chmod(h.dir, 0o711)   # nobody may pass through the test directory
        for root, dirs, files in os.walk(h.data):
            for name in dirs + files + [""]:
                os.chown(os.path.join(root, name), nobody.pw_uid, nobody.pw_gid)
        h.start()
        status = open("/proc/%d/status" % h.proc.pid).read()
        uid_line = [l for l in status.splitlines() if l.startswith("Uid:")][0]
        check_eq(uid_line.split()[1:], [str(nobody.pw_uid)] * 4,
                 "server.user=nobody: real, effective, saved and fs uid are nobody")
        check(h.log_has(r"event=privileges-dropped user=nobody"),
              "server.user: the drop is logged")
        with smtplib.SMTP(*h.mx, local_hostname="drop.test", timeout=10) as s:
            code, text = s.sendmail("a@remote.example", ["x@inbound.test"],
                                    b"Subject: dropped\r\n\r\nhi\r\n"), None
            check_eq(code, {}, "server.user=nobody: a message is accepted")
        ids = h.queue_ids()
        check_eq(len(ids), 1, "server.user=nobody: the message is in the spool")
        st = os.stat(os.path.join(h.queue_dir(), ids.pop()))
        check_eq(st.st_uid, nobody.pw_uid, "the spool file belongs to nobody")


def main():
    tmp = tempfile.mkdtemp(prefix="herald-cli-")
    try:
        test_init_and_help(tmp)
        test_config(tmp)
        test_accounts(tmp)
        test_server(tmp)
        test_privilege_drop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    harness.run(main)
