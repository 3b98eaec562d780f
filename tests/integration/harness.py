"""harness - start a real `herald serve` on loopback for integration tests.

Every test script imports this module (run with Debian's /usr/bin/python3).
A Herald instance gets a fresh data directory, free loopback ports, one
account ("acme", sender domain example.com) with an SMTP credential, and an
inbound domain (inbound.test).  Nothing here talks to anything but
127.0.0.1.

    with harness.Herald() as h:
        h.submission, h.submissions, h.mx   # (host, port) tuples
        h.user, h.password                  # the SMTP credential
        h.spool_messages()                  # {queue_id: (envelope, body)}
        h.queue_ids()                       # {queue_id, ...} in spool/queue
        h.log_has(r"event=started")         # waits up to 2 s for a log line

The engine is off (mta.enabled=no) unless a test's sets turn it on.  For
the delivery tests (see also sinks.py and deliverylib.py):

        h.write_destinations(text)          # <data>/destinations, before start()
        h.write_file(name, text)            # a file beside the data dir
        qid = submit(h, sender, rcpts, data)  # STARTTLS + AUTH, returns the id
        h.log_events(event="delivered", id=qid)  # key=value fields of log lines
        h.wait_events(n, timeout, event=...)     # bounded wait for n of them
        h.queue_list(), h.queue_show(qid), h.wait_queue_empty(timeout)

It also holds what the test scripts share:

  - check(cond, what[, detail]) and check_eq(got, want, what): one
    "ok - what" line per check, counted; the first failure raises;
  - run(main): runs a script's main(), then prints the time taken and
    "N passed, 0 failed" as the last line (or, when main() raised, the
    traceback and "N passed, 1 failed", and exits with status 1);
  - Conn and Reply: a raw SMTP client that sends exact bytes and reads
    exact (multi-line) replies, with bounded reads; reply_ok() compares a
    reply with a code, an enhanced status code and an exact or regex text;
    send_data() sends DATA and a message;
  - tls_context(): a TLS client context that accepts Herald's self-signed
    certificate (for Conn and for smtplib).
"""
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import traceback

HERALD = os.environ.get("HERALD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "src", "cli", "herald")


def free_port():
    """A TCP port nobody listens on right now (loopback), below the
    kernel's ephemeral range: a port bind(0) hands out is also handed to
    outgoing connections (sinks, clients), and tests running in parallel
    could take it before Herald binds it."""
    import random
    try:
        low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randint(10000, max(10001, low - 1))
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_spool_file(path):
    """Return (envelope dict, message bytes) of a spool file, or raise."""
    data = open(path, "rb").read()
    first, rest = data.split(b"\n", 1)
    m = re.match(rb"HERALD-SPOOL 1 (\d{20})$", first)
    assert m, "bad first line in %s: %r" % (path, first)
    size = int(m.group(1))
    env_text, body = rest.split(b"\n\n", 1)
    assert len(body) == size, "%s: size field %d, body %d" % (path, size, len(body))
    env = {"rcpt": []}
    for line in env_text.decode().split("\n"):
        k, v = line.split(" ", 1)
        if k == "rcpt":
            env["rcpt"].append(v.split(" ")[0])
        else:
            env[k] = v
    return env, body


def strip_added_headers(body):
    """The message as the client sent it: drop Herald's Received: (first
    field, folded) and the Message-ID:/Date: it may add right after it."""
    lines = body.split(b"\r\n")
    i = 0
    assert lines[0].startswith(b"Received: from "), lines[0]
    i = 1
    while lines[i].startswith(b"\t"):
        i += 1
    return b"\r\n".join(lines[i:])


class Herald:
    """A running `herald serve`; use as a context manager."""

    def __init__(self, sets=None, account=True, start=True):
        self.dir = tempfile.mkdtemp(prefix="herald-test-")
        self.data = os.path.join(self.dir, "data")
        self.ports = {k: free_port() for k in ("submission", "submissions", "mx", "http")}
        self.http = ("127.0.0.1", self.ports["http"])
        self.api = "http://127.0.0.1:%d/api/v1" % self.ports["http"]
        self.submission = ("127.0.0.1", self.ports["submission"])
        self.submissions = ("127.0.0.1", self.ports["submissions"])
        self.mx = ("127.0.0.1", self.ports["mx"])
        self.sets = {
            "smtpd.submission_listen": "127.0.0.1:%d" % self.ports["submission"],
            "smtpd.submissions_listen": "127.0.0.1:%d" % self.ports["submissions"],
            "smtpd.mx_listen": "127.0.0.1:%d" % self.ports["mx"],
            "smtpd.inbound_domains": "inbound.test",
            "smtpd.hostname": "herald.test",
            "smtpd.policy_refresh": "200ms",
            "smtpd.auth_fail_delay": "10ms",
            "mta.enabled": "no",
            "http.listen": "127.0.0.1:%d" % self.ports["http"],
        }
        self.sets.update(sets or {})
        self.proc = None
        self.log_path = os.path.join(self.dir, "herald.log")
        self.cli("init")
        if account:
            self.cli("account", "create", "acme")
            self.cli("domain", "add", "--account", "acme", "example.com")
            out = self.cli("credential", "create", "--account", "acme", "--name", "app1")
            self.user = re.search(r"username: (\S+)", out).group(1)
            self.password = re.search(r"password: (\S+)", out).group(1)
        if start:
            self.start()

    def set_args(self):
        args = []
        for k, v in self.sets.items():
            args += ["--set", "%s=%s" % (k, v)]
        return args

    def cli(self, *args, check=True):
        """Run a herald subcommand on this data directory; return stdout."""
        p = subprocess.run([HERALD, "--data", self.data] + self.set_args() + list(args),
                           capture_output=True, text=True, timeout=60)
        if check and p.returncode != 0:
            raise RuntimeError("herald %s failed (%d): %s%s" % (
                " ".join(args), p.returncode, p.stdout, p.stderr))
        return p.stdout if check else p

    def start(self, timeout=10):
        """Start serve and wait until every listener accepts."""
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([HERALD, "--data", self.data] + self.set_args() + ["serve"],
                                     stdout=subprocess.PIPE, stderr=self.log)
        deadline = time.time() + timeout
        self.banner = []
        while time.time() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                raise RuntimeError("herald serve exited: %s" % self.read_log())
            self.banner.append(line)
            if line.startswith("listening: smtp mx"):
                return
        raise RuntimeError("herald serve did not start: %s" % self.read_log())

    def stop(self, sig=signal.SIGTERM):
        """Stop serve with sig.  A graceful stop (SIGTERM) must end with
        status 0 and no sanitizer report in the log: a crash or a leak
        found at exit fails the test that stopped it."""
        exited_before = self.proc is not None and self.proc.poll() is not None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        status = self.proc.returncode if self.proc else 0
        if self.proc:
            self.proc.stdout.close()
            self.log.close()
        self.proc = None
        if sig == signal.SIGTERM and (status != 0 or exited_before):
            raise RuntimeError("herald serve ended with status %s%s:\n%s" % (
                status, " before it was stopped" if exited_before else "",
                self.read_log()[-6000:]))
        if re.search(r"(AddressSanitizer|LeakSanitizer|runtime error:)",
                     self.read_log()):
            raise RuntimeError("sanitizer report in the herald log:\n%s"
                               % self.read_log()[-8000:])

    def kill9(self):
        self.stop(signal.SIGKILL)

    def read_log(self):
        try:
            return open(self.log_path, errors="replace").read()
        except OSError:
            return ""

    def log_has(self, pattern, timeout=2.0, start=0):
        """True as soon as the log, from character offset start, matches the
        regex pattern; False when it still does not after timeout seconds."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            if rx.search(self.read_log()[start:]):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def queue_dir(self):
        return os.path.join(self.data, "spool", "queue")

    def _committed(self, name):
        try:
            with open(os.path.join(self.queue_dir(), name), "rb") as f:
                return f.read(15) == b"HERALD-SPOOL 1 "
        except FileNotFoundError:  # a refused message, removed just now
            return None

    def queue_ids(self):
        """The set of queue ids of committed messages in spool/queue."""
        return {n for n in os.listdir(self.queue_dir()) if self._committed(n)}

    def uncommitted(self):
        """Queue files not committed: still being written by a session in
        DATA (empty, or "HERALD-SPOOL 0"), or left by a crash; recovery
        removes them."""
        return sorted(n for n in os.listdir(self.queue_dir())
                      if self._committed(n) is False)

    def spool_messages(self):
        """{queue_id: (envelope, body bytes)} of every file in the queue."""
        out = {}
        for name in sorted(self.queue_ids()):
            out[name] = parse_spool_file(os.path.join(self.queue_dir(), name))
        return out

    # ---- helpers of the delivery tests ----

    def write_file(self, name, text):
        """Write text to a file in this instance's directory (outside the
        data directory); return its path."""
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def write_destinations(self, text):
        """Write <data>/destinations (mta.destinations' default path)."""
        path = os.path.join(self.data, "destinations")
        with open(path, "w") as f:
            f.write(text)
        return path

    def log_events(self, component="delivery", start=0, **match):
        """The key=value fields (a dict per line; "level" and "component"
        added) of every log line of component whose fields equal match."""
        out = []
        for line in self.read_log()[start:].splitlines():
            parts = line.split(" ", 3)
            if len(parts) < 4 or parts[2] != component:
                continue
            f = {k: (q if q or v.startswith('"') else v)
                 for k, v, q in LOG_FIELD.findall(parts[3])}
            f["level"], f["component"] = parts[1], parts[2]
            if all(f.get(k) == v for k, v in match.items()):
                out.append(f)
        return out

    def wait_events(self, n, timeout, component="delivery", start=0, **match):
        """Wait until at least n lines match (see log_events); return them."""
        deadline = time.monotonic() + timeout
        while True:
            ev = self.log_events(component, start, **match)
            if len(ev) >= n or time.monotonic() > deadline:
                return ev
            time.sleep(0.05)

    def queue_list(self, *args):
        """`herald queue list ARGS`: (rows, n) where rows are dicts (id,
        state, attempts, next, account, sender, rcpt, reply) and n the
        number of the last line "N recipients"."""
        out = self.cli("queue", "list", *args)
        lines = out.strip("\n").split("\n") if out.strip() else []
        m = re.match(r"(\d+) recipients?$", lines[-1]) if lines else None
        if not m:
            raise AssertionError("queue list: no 'N recipients' last line: %r" % out)
        rows = []
        for line in lines[:-1]:
            f = line.split(None, 7)
            if len(f) < 7:
                raise AssertionError("queue list: short line %r" % line)
            rows.append({"id": f[0], "state": f[1], "attempts": f[2], "next": f[3],
                         "account": f[4], "sender": f[5].strip("<>"), "rcpt": f[6],
                         "reply": f[7] if len(f) > 7 else "", "line": line})
        return rows, int(m.group(1))

    def queue_show(self, qid):
        """`herald queue show ID`: its output."""
        return self.cli("queue", "show", qid)

    def wait_queue_empty(self, timeout):
        """Wait until `herald queue list` says "0 recipients" and the spool
        has no committed file; True when it did within timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                empty = self.queue_list()[1] == 0 and not self.queue_ids()
            except (AssertionError, RuntimeError):
                empty = False
            if empty:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.stop()
        except RuntimeError as e:
            if exc[0] is None:
                shutil.rmtree(self.dir, ignore_errors=True)
                raise
            sys.stderr.write("---- also: %s\n" % str(e)[:300])
        if exc[0] is not None:
            sys.stderr.write("---- herald log ----\n" + self.read_log()[-20000:])
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


# ---- checks and the "N passed, M failed" line ----

passed = 0      # checks passed so far in this process


def check(cond, what, detail=None):
    """Assert with a message; print a line per check for the test log and
    count it.  detail (called if callable) is added only on failure."""
    global passed
    if not cond:
        if detail is not None:
            what += " -- " + str(detail() if callable(detail) else detail)
        raise AssertionError(what)
    print("ok -", what)
    passed += 1


def check_eq(got, want, what):
    """check() that shows both sides when they differ."""
    if got != want:
        raise AssertionError("%s\n  got:  %r\n  want: %r" % (what, got, want))
    check(True, what)


def run(main):
    """Run a test script's main(): the first failed check (or any other
    exception) stops it.  Print the time taken and "N passed, 0 failed",
    or the traceback and "N passed, 1 failed" and exit with status 1."""
    t0 = time.monotonic()
    try:
        main()
    except BaseException:                   # noqa: BLE001
        traceback.print_exc()
        print("%d passed, 1 failed" % passed)
        sys.exit(1)
    print("# %.1f s" % (time.monotonic() - t0))
    print("%d passed, 0 failed" % passed)


# ---- a raw SMTP client: exact bytes out, exact replies in ----

def tls_context():
    """A TLS client context that accepts Herald's self-signed certificate."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Reply:
    """One SMTP reply: its lines (without CRLF); code (-1 if the last line
    has none); enh, the enhanced status code of the last line or None; text,
    the rest of it; keywords, the first word of every line after the first,
    upper case (the extensions, in an EHLO reply)."""

    def __init__(self, lines):
        self.lines = lines
        last = lines[-1]
        self.code = int(last[:3]) if last[:3].isdigit() else -1
        rest = last[4:]
        m = re.match(r"([245]\.\d{1,3}\.\d{1,3}) ?(.*)$", rest)
        self.enh, self.text = (m.group(1), m.group(2)) if m else (None, rest)
        self.keywords = [l[4:].split(" ")[0].upper() for l in lines[1:]]

    def __repr__(self):
        return repr(self.lines)


class Conn:
    """One SMTP client connection with bounded reads.  greeting is the
    server's first reply (None with greet=False); sent_at is the time
    (time.monotonic) of the last send."""

    def __init__(self, addr, tls=False, timeout=5.0, greet=True):
        self.timeout = timeout
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.buf = b""
        self.sent_at = time.monotonic()
        if tls:
            self.wrap()
        self.greeting = self.reply() if greet else None

    def wrap(self):
        """Start TLS on the socket (client side)."""
        self.sock = tls_context().wrap_socket(self.sock, server_hostname="herald.test")

    def send(self, data):
        """Send exactly these bytes (str is encoded as UTF-8), in one write."""
        self.sock.sendall(data.encode() if isinstance(data, str) else data)
        self.sent_at = time.monotonic()

    def line(self):
        deadline = time.monotonic() + self.timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no reply within %.1fs; have %r" % (self.timeout, self.buf))
            self.sock.settimeout(left)
            d = self.sock.recv(65536)
            if not d:
                raise EOFError("connection closed; have %r" % self.buf)
            self.buf += d
        ln, self.buf = self.buf.split(b"\n", 1)
        return ln.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """Read the next (possibly multi-line) reply."""
        lines = []
        for _ in range(64):
            ln = self.line()
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                break
        return Reply(lines)

    def cmd(self, line):
        """Send line + CRLF; return the reply."""
        self.send(line + "\r\n")
        return self.reply()

    def starttls(self):
        r = self.cmd("STARTTLS")
        if r.code == 220:
            self.wrap()
        return r

    def ehlo(self, name="client.test"):
        return self.cmd("EHLO " + name)

    def closed(self, timeout=3.0):
        """True when the server closes the connection; pending data is kept."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError, ssl.SSLError):
                return True
            if not d:
                return True
            self.buf += d
        return False

    def silent(self, seconds):
        """True when nothing arrives for that long (and the socket stays open)."""
        self.sock.settimeout(seconds)
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return True
        self.buf += d
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def reply_ok(r, code, enh, text=None):
    """Whether reply r has this code and enhanced code (None: none) and,
    unless text is None, this text (a str: exactly; a compiled regex:
    fullmatch)."""
    ok = r.code == code and r.enh == enh
    if text is not None:
        if isinstance(text, re.Pattern):
            ok = ok and text.fullmatch(r.text) is not None
        else:
            ok = ok and r.text == text
    return ok


def send_data(c, body):
    """DATA, body, '.'; return the final reply (or the DATA reply if not 354)."""
    r = c.cmd("DATA")
    if r.code != 354:
        return r
    c.send(body + ".\r\n")
    return c.reply()


QUEUED = re.compile(r"Ok: queued as ([0-9a-z]+)")    # Reply.text of a 250 after DATA


# ---- submitting mail (delivery tests) ----

LOG_FIELD = re.compile(r'([A-Za-z_][A-Za-z0-9_.-]*)=("([^"]*)"|\S*)')


def wait_until(cond, timeout, interval=0.05):
    """Poll cond() until true (return its value) or timeout seconds pass
    (return its last, false value)."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() >= deadline:
            return v
        time.sleep(interval)


def smtp_login(h, name="py.test"):
    """An smtplib session on h's submission port, STARTTLS, logged in."""
    import smtplib
    s = smtplib.SMTP(h.submission[0], h.submission[1], local_hostname=name,
                     timeout=20)
    s.starttls(context=tls_context())
    s.login(h.user, h.password)
    return s


def submit(h, sender, rcpts, data, mail_options=(), rcpt_options=(), s=None):
    """Submit one message through h's submission port (STARTTLS + AUTH
    with the harness credential, or on the smtplib session s); return the
    queue id from "250 2.0.0 Ok: queued as ID".  Every recipient must be
    accepted."""
    own = s is None
    if own:
        s = smtp_login(h)
    code, text = s.mail(sender, list(mail_options))
    assert code == 250, "MAIL FROM:<%s>: %d %r" % (sender, code, text)
    for r in rcpts:
        code, text = s.rcpt(r, list(rcpt_options))
        assert code == 250, "RCPT TO:<%s>: %d %r" % (r, code, text)
    code, text = s.data(data)
    m = re.match(rb"2\.0\.0 Ok: queued as ([0-9a-z]+)$", text)
    assert code == 250 and m, "DATA: %d %r" % (code, text)
    if own:
        s.quit()
    return m.group(1).decode()
