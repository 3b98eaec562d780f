"""sinks - receiving SMTP servers for Herald's delivery tests.

Three kinds of peers that Herald's outbound client delivers to, none of
them written here:

  - AioSink: python3-aiosmtpd's Controller (a real, independent SMTP
    server) on a chosen 127.0.0.x address and port.  It records every
    message exactly as received (after dot-unstuffing) with its envelope,
    the client's EHLO name, the peer address and whether TLS was active;
    it counts connections and keeps the largest number open at once; and
    it can misbehave on purpose: a reply per recipient regex on RCPT (for
    the first N tries or always), a reply to the end of DATA, a greeting
    reply, dropping the connection in the middle of DATA, slow replies,
    STARTTLS with a self-signed certificate made by `openssl req` (or no
    STARTTLS at all).
  - SilentServer: accepts TCP connections and never says anything (for
    greeting timeouts).
  - SmtpSink: Postfix's /usr/sbin/smtp-sink capturing each message to a
    file (-d), with its own fault flags (-r/-f/-b/-B/-q/-Q/-w/-W ...);
    messages() parses the captures back.
  - PostfixSink: a private Postfix instance (root only) whose smtpd offers
    STARTTLS, CHUNKING, SMTPUTF8, DSN and delivers into a Maildir;
    messages() reads it back, smtpd_sessions() the command counts Postfix
    logged per session.

Use each as a context manager (or start()/stop()).  Every wait here is
bounded.  Nothing listens anywhere but 127.0.0.0/8.
"""
import asyncio
import logging
import os
import random
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

# aiosmtpd logs to "mail.log": warnings (an unknown command after a
# deliberate hang-up) and tracebacks of sessions a client ended on purpose
# (a TLS handshake refused by a verifying client) would clutter the test
# output; the tests check what the sinks recorded instead
from harness import wait_until  # noqa: E402,F401  (one poller for all)

logging.getLogger("mail.log").setLevel(logging.CRITICAL)


def _family(host):
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _ephemeral_low():
    try:
        return int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host="127.0.0.1"):
    """A TCP port nobody uses right now on host, below the ephemeral range
    (so that no outgoing connection of a busy machine takes it before the
    sink binds it)."""
    high = _ephemeral_low() - 1
    for _ in range(200):
        port = random.randint(min(10000, high - 1000), high)
        with socket.socket(_family(host)) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket(_family(host)) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_port_on(hosts):
    """A port free on every one of hosts (for MX hosts 127.0.0.2, .3 ...
    that must share the port Herald uses for MX hosts)."""
    for _ in range(100):
        port = free_port(hosts[0])
        ok = True
        for h in hosts[1:]:
            with socket.socket(_family(h)) as s:
                try:
                    s.bind((h, port))
                except OSError:
                    ok = False
                    break
        if ok:
            return port
    raise RuntimeError("no port free on all of %s" % (hosts,))


def make_cert(directory, cn):
    """A self-signed certificate (P-256 key) for cn, with cn as CN and as
    subjectAltName DNS name.  Returns (cert path, key path)."""
    crt = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt,
         "-days", "2", "-subj", "/CN=" + cn, "-addext", "subjectAltName=DNS:" + cn],
        check=True, capture_output=True, timeout=60)
    return crt, key


class Managed:
    """start() on entering a with block, stop() on leaving it."""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


class Rule:
    """A reply given instead of the normal one when pattern (a regex,
    searched) matches the command's argument, for the first `times`
    matches (None = always)."""

    def __init__(self, pattern, reply, times=None):
        self.rx = re.compile(pattern)
        self.reply = reply
        self.times = times
        self.hits = 0

    def fire(self, arg):
        if not self.rx.search(arg):
            return None
        if self.times is not None and self.hits >= self.times:
            return None
        self.hits += 1
        return self.reply


class Received:
    """One message (or one refused DATA) as the sink saw it."""

    def __init__(self, session, envelope, sink):
        # aiosmtpd keeps the null reverse-path as "<>"; "" here
        self.mail_from = "" if envelope.mail_from == "<>" else envelope.mail_from
        self.rcpt_tos = list(envelope.rcpt_tos)
        self.mail_options = list(envelope.mail_options)
        self.rcpt_options = list(envelope.rcpt_options)
        self.data = bytes(envelope.original_content or b"")
        self.peer = session.peer
        self.ehlo = session.host_name
        self.tls = session.ssl is not None
        self.tls_version = None
        if self.tls:
            obj = session.ssl.get("ssl_object")
            self.tls_version = obj.version() if obj is not None else "?"
        self.conn = getattr(session, "conn_id", None)   # which connection
        a = session.auth_data
        self.auth_user = a.login.decode("utf-8", "replace") if a is not None else None
        self.sink = "%s:%d" % (sink.host, sink.port)
        self.time = time.time()

    def __repr__(self):
        return "<Received from=%r to=%r %d bytes tls=%s ehlo=%r via %s>" % (
            self.mail_from, self.rcpt_tos, len(self.data), self.tls_version,
            self.ehlo, self.sink)


class _Handler:
    """aiosmtpd handler hooks: record, and apply the sink's faults."""

    def __init__(self, sink):
        self.sink = sink

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        sink = self.sink
        await sink._delay("EHLO")
        r = sink._fire("EHLO", hostname)
        if r:
            return [r]
        if sink.extra_ehlo:
            last = responses[-1]
            responses = responses[:-1] + ["250-" + e for e in sink.extra_ehlo] + [last]
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        session.host_name = hostname
        await self.sink._delay("HELO")
        r = self.sink._fire("HELO", hostname)
        return r or "250 %s" % server.hostname

    async def handle_MAIL(self, server, session, envelope, address, options):
        sink = self.sink
        await sink._delay("MAIL")
        r = sink._fire("MAIL", address)
        if r:
            return r
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 Ok"

    async def handle_RCPT(self, server, session, envelope, address, options):
        sink = self.sink
        await sink._delay("RCPT")
        with sink.lock:
            sink.rcpt_attempts.append(address)
        r = sink._fire("RCPT", address)
        if r:
            with sink.lock:
                sink.rcpt_refused.append((address, r))
            return r
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(options)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        sink = self.sink
        await sink._delay("DATA")
        rec = Received(session, envelope, sink)
        r = sink._fire("DATA", " ".join(envelope.rcpt_tos))
        with sink.lock:
            if r:
                sink.data_refused.append((rec, r))
                return r
            sink.messages.append(rec)
            n = len(sink.messages)
        return "250 2.0.0 Ok: queued as m%d" % n


class _SMTP(SMTP):
    """aiosmtpd's SMTP with connection counting, a greeting fault and a
    drop in the middle of DATA."""

    def __init__(self, handler, sink, **kw):
        super().__init__(handler, **kw)
        self.sink = sink
        self._counted = False
        self._conn_id = None

    def connection_made(self, transport):
        first = self._original_transport is None and self.transport is None
        super().connection_made(transport)
        if first:
            self._counted = True
            self._conn_id = self.sink._conn_open()
        # a new Session after STARTTLS too: it keeps the connection's id
        self.session.conn_id = self._conn_id

    def _uncount(self):
        if self._counted:
            self._counted = False
            self.sink._conn_close()

    def connection_lost(self, error):
        self._uncount()
        super().connection_lost(error)

    async def smtp_QUIT(self, arg):
        # The client is done with this connection as soon as it says QUIT:
        # count it closed now, so that a client which opens its next
        # connection right after QUIT is not seen as over its limit.
        self._uncount()
        with self.sink.lock:
            self.sink.quits += 1
        await super().smtp_QUIT(arg)

    async def _handle_client(self):
        sink = self.sink
        await sink._delay("CONNECT")
        r = sink._fire("CONNECT", "")
        if r:
            await self.push(r)
            self.transport.close()
            return
        await super()._handle_client()

    async def smtp_DATA(self, arg):
        sink = self.sink
        if self.envelope.rcpt_tos and sink._take_drop():
            # 354, read the first chunk of the message, then hang up
            await self.push("354 End data with <CR><LF>.<CR><LF>")
            try:
                await asyncio.wait_for(self._reader.readuntil(b"\r\n"), 10)
            except Exception:                      # noqa: BLE001
                pass
            with sink.lock:
                sink.dropped += 1
            self._uncount()
            self._reader._buffer.clear()       # not to be read as commands
            self.transport.abort()
            return
        await super().smtp_DATA(arg)


class _Controller(Controller):
    def __init__(self, sink, handler, **kw):
        self.sink = sink
        super().__init__(handler, **kw)

    def factory(self):
        return _SMTP(self.handler, self.sink, **self.SMTP_kwargs)


class AioSink(Managed):
    """An aiosmtpd server on host:port recording what it receives.

    tls: offer STARTTLS with a self-signed certificate for tls_cn
    (self.cert_file is the certificate, usable as a CA file).
    extra_ehlo: more EHLO keywords to announce (e.g. ["PIPELINING"]).
    auth: (user, password): AUTH PLAIN/LOGIN offered (only after STARTTLS
    when tls) and, unless auth_required=False, required before MAIL;
    auth_attempts records (mechanism, user, success, over TLS); a message's
    auth_user is who sent it.
    Faults (also settable later with the methods below):
      rcpt_fail(pattern, reply, times=None), data_fail(reply, times,
      pattern=""), mail_fail, ehlo_fail, greeting(reply, times),
      drop_in_data(times), slow={"CONNECT"|"EHLO"|"MAIL"|"RCPT"|"DATA": s}.
    """

    def __init__(self, host="127.0.0.1", port=None, tls=False, tls_cn="mx.sink.test",
                 name="sink.test", extra_ehlo=(), slow=None, auth=None,
                 auth_required=True):
        self.auth = auth           # (user, password): AUTH offered (after STARTTLS
        self.auth_required = auth_required   # when tls), required unless told
        self.host = host
        self.fixed_port = port is not None
        self.port = port or free_port(host)
        self.addr = (host, self.port)
        self.name = name
        self.tls = tls
        self.tls_cn = tls_cn
        self.extra_ehlo = list(extra_ehlo)
        self.slow = dict(slow or {})
        self.rules = {k: [] for k in ("CONNECT", "EHLO", "HELO", "MAIL", "RCPT", "DATA")}
        self.drops_left = 0
        self.lock = threading.Lock()
        self.armed = False
        self.dir = tempfile.mkdtemp(prefix="herald-sink-")
        self.cert_file = self.key_file = None
        self.controller = None
        self.reset()

    def reset(self):
        """Forget what was received and counted (faults stay)."""
        with self.lock:
            self.messages = []
            self.data_refused = []
            self.rcpt_refused = []
            self.rcpt_attempts = []
            self.dropped = 0
            self.quits = 0
            self.auth_attempts = []
            self.connections = 0
            self.current = 0
            self.max_current = 0

    # ---- faults ----
    def rcpt_fail(self, pattern, reply, times=None):
        self.rules["RCPT"].append(Rule(pattern, reply, times))

    def mail_fail(self, pattern, reply, times=None):
        self.rules["MAIL"].append(Rule(pattern, reply, times))

    def data_fail(self, reply, times=None, pattern=""):
        """Reply to the end of data (pattern is searched in the
        space-separated recipients)."""
        self.rules["DATA"].append(Rule(pattern, reply, times))

    def ehlo_fail(self, reply, times=None):
        self.rules["EHLO"].append(Rule("", reply, times))

    def greeting(self, reply, times=None):
        """Greet with reply (e.g. "421 4.3.2 busy") and hang up."""
        self.rules["CONNECT"].append(Rule("", reply, times))

    def drop_in_data(self, times):
        """Hang up after the first line of the message, `times` times."""
        with self.lock:
            self.drops_left += times

    def clear_faults(self):
        for k in self.rules:
            self.rules[k] = []
        self.drops_left = 0
        self.slow = {}

    def _fire(self, cmd, arg):
        if not self.armed:
            return None
        with self.lock:
            for rule in self.rules[cmd]:
                r = rule.fire(arg)
                if r:
                    return r
        return None

    def _take_drop(self):
        if not self.armed:
            return False
        with self.lock:
            if self.drops_left > 0:
                self.drops_left -= 1
                return True
        return False

    async def _delay(self, cmd):
        d = self.slow.get(cmd) if self.armed else None
        if d:
            await asyncio.sleep(d)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        login = getattr(auth_data, "login", b"") or b""
        password = getattr(auth_data, "password", b"") or b""
        ok = (login.decode("utf-8", "replace"),
              password.decode("utf-8", "replace")) == tuple(self.auth)
        with self.lock:
            self.auth_attempts.append((mechanism, login.decode("utf-8", "replace"), ok,
                                       session.ssl is not None))
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    def _conn_open(self):
        with self.lock:
            self.connections += 1
            self.current += 1
            self.max_current = max(self.max_current, self.current)
            return self.connections

    def _conn_close(self):
        with self.lock:
            self.current -= 1

    # ---- life ----
    def start(self):
        kw = {}
        if self.tls:
            self.cert_file, self.key_file = make_cert(self.dir, self.tls_cn)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert_file, self.key_file)
            kw["tls_context"] = ctx
        if self.auth:
            kw.update(authenticator=self._authenticate,
                      auth_required=self.auth_required,
                      auth_require_tls=bool(self.tls))
        for attempt in range(5):
            self.controller = _Controller(
                self, _Handler(self), hostname=self.host, port=self.port,
                server_hostname=self.name, ready_timeout=10, timeout=120,
                **kw)
            try:
                self.controller.start()
                break
            except OSError:
                # taken since free_port() looked: another one, if ours to pick
                self.controller = None
                if self.fixed_port or attempt == 4:
                    raise
                self.port = free_port(self.host)
                self.addr = (self.host, self.port)
        # The controller's own check connection has been counted: let it
        # go, then start from zero with the faults armed.
        wait_until(lambda: self.current == 0, 5)
        self.reset()
        self.armed = True
        return self

    def stop(self):
        if self.controller is not None:
            try:
                self.controller.stop()
            except Exception:                      # noqa: BLE001
                pass
            self.controller = None
        shutil.rmtree(self.dir, ignore_errors=True)

    # ---- reading ----
    def received(self):
        with self.lock:
            return list(self.messages)

    def wait_messages(self, n, timeout):
        """Wait until at least n messages arrived; return them."""
        wait_until(lambda: len(self.messages) >= n, timeout)
        return self.received()

    def rcpts(self):
        """Every accepted recipient of every received message, in order."""
        return [r for m in self.received() for r in m.rcpt_tos]


class SilentServer(Managed):
    """Accepts TCP connections on host:port and never sends a byte; keeps
    them open until the client closes them (or stop())."""

    def __init__(self, host="127.0.0.1", port=None):
        self.host = host
        self.port = port or free_port(host)
        self.addr = (host, self.port)
        self.accepted = 0
        self.closed_by_client = 0
        self._stop = threading.Event()
        self._socks = []
        self._thread = None
        self.lsock = None

    def start(self):
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(self.addr)
        self.lsock.listen(64)
        self.lsock.settimeout(0.1)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        import select
        while not self._stop.is_set():
            try:
                c, _ = self.lsock.accept()
                self.accepted += 1
                c.setblocking(False)
                self._socks.append(c)
            except socket.timeout:
                pass
            except OSError:
                break
            # notice the clients that hung up
            if self._socks:
                r, _, _ = select.select(self._socks, [], [], 0)
                for c in r:
                    try:
                        d = c.recv(65536)
                    except OSError:
                        d = b""
                    if not d:
                        self.closed_by_client += 1
                        self._socks.remove(c)
                        c.close()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(5)
        if self.lsock is not None:
            self.lsock.close()
        for c in self._socks:
            c.close()


class SinkMessage:
    """A message captured by smtp-sink (-d): envelope from the X- fields,
    the message bytes with CRLF line ends as they were sent."""

    def __init__(self, path):
        self.path = path
        raw = open(path, "rb").read()
        self.raw = raw
        self.mail_args = None
        self.rcpt_args = []
        self.helo = None
        self.client = None
        self.proto = None
        lines = raw.split(b"\n")
        i = 0
        while i < len(lines) and not lines[i].startswith(b"Received: "):
            k, _, v = lines[i].decode("utf-8", "replace").partition(": ")
            if k == "X-Mail-Args":
                self.mail_args = v
            elif k == "X-Rcpt-Args":
                self.rcpt_args.append(v)
            elif k == "X-Helo-Args":
                self.helo = v
            elif k == "X-Client-Addr":
                self.client = v
            elif k == "X-Client-Proto":
                self.proto = v
            i += 1
        # smtp-sink's own Received: field is three lines
        body = b"\n".join(lines[i + 3:])
        # smtp-sink writes each line with "\n" and one empty line after
        # the message
        self.complete = body.endswith(b"\n\n")
        if self.complete:
            body = body[:-1]
        self.data = body.replace(b"\n", b"\r\n")
        self.mail_from = re.match(r"<([^>]*)>", self.mail_args or "<>").group(1)
        self.rcpt_tos = [re.match(r"<([^>]*)>", a).group(1) for a in self.rcpt_args]

    def __repr__(self):
        return "<SinkMessage from=%r to=%r %d bytes>" % (
            self.mail_from, self.rcpt_tos, len(self.data))


class SmtpSink(Managed):
    """Postfix's smtp-sink on host:port, capturing every message with -d.

    flags: more smtp-sink options, e.g. ["-f", "RCPT", "-B", "550 5.1.1 no"]
    (hard-reject every RCPT with that reply), ["-r", "DATA"] (soft-reject
    DATA), ["-Q", "."] (421 after the message), ["-w", "2"] (slow DATA).
    """

    SINK = "/usr/sbin/smtp-sink"

    def __init__(self, host="127.0.0.1", port=None, flags=(), name="smtp-sink.test",
                 template="%H%M%S."):
        self.template = template
        self.host = host
        self.port = port or free_port(host)
        self.addr = (host, self.port)
        self.flags = list(flags)
        self.name = name
        self.proc = None
        self.dir = tempfile.mkdtemp(prefix="herald-smtp-sink-")
        os.chmod(self.dir, 0o755)
        self.dump = os.path.join(self.dir, "dump")
        os.mkdir(self.dump)
        os.chmod(self.dump, 0o777)

    def start(self):
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        self.out = open(os.path.join(self.dir, "counters"), "wb")
        self.err = open(os.path.join(self.dir, "stderr"), "wb")
        # -d: one file per message, named by the template (strftime) and a
        # random 32-bit hex number: the time keeps names of many messages
        # apart
        args = [self.SINK] + user + ["-c", "-h", self.name, "-d",
                                     os.path.join(self.dump, self.template)]
        self.proc = subprocess.Popen(
            args + self.flags + ["%s:%d" % (self.host, self.port), "64"],
            stdout=self.out, stderr=self.err)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(self.addr, timeout=2) as s:
                    s.settimeout(2)
                    if s.recv(100).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("smtp-sink did not start: %s" % self.stderr())
            time.sleep(0.05)
        return self

    def stderr(self):
        try:
            return open(os.path.join(self.dir, "stderr"), errors="replace").read()
        except OSError:
            return ""

    def counters(self):
        """The last "sess=N quit=N mesg=N" of -c, as a dict (after the
        start-up check session)."""
        txt = open(os.path.join(self.dir, "counters"), "rb").read().decode(
            errors="replace")
        found = re.findall(r"sess=(\d+) quit=(\d+) mesg=(\d+)", txt)
        if not found:
            return {"sess": 0, "quit": 0, "mesg": 0}
        s, q, m = (int(x) for x in found[-1])
        return {"sess": s, "quit": q, "mesg": m}

    def count(self):
        """Messages completed so far (mesg= of -c), reading only the end of
        the counters output."""
        try:
            with open(os.path.join(self.dir, "counters"), "rb") as f:
                f.seek(0, 2)
                f.seek(max(0, f.tell() - 200))
                tail = f.read().decode(errors="replace")
        except OSError:
            return 0
        found = re.findall(r"mesg=(\d+)", tail)
        return int(found[-1]) if found else 0

    def messages(self):
        """Every captured message, oldest first."""
        out = []
        for name in os.listdir(self.dump):
            p = os.path.join(self.dump, name)
            try:
                out.append((os.stat(p).st_mtime_ns, name, SinkMessage(p)))
            except (OSError, AttributeError):
                continue
        return [m for _, _, m in sorted(out, key=lambda t: (t[0], t[1]))]

    def wait_messages(self, n, timeout):
        wait_until(lambda: len([m for m in self.messages() if m.complete]) >= n,
                   timeout)
        return self.messages()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc:
            self.out.close()
            self.err.close()
        self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)


class PostfixMessage:
    """One message Postfix's virtual(8) delivered into the sink's Maildir:
    the envelope from the fields Postfix put in front (Return-Path:,
    Delivered-To:), Postfix's own Received: field, and the message as
    Herald sent it (CRLF line ends restored)."""

    def __init__(self, path):
        self.path = path
        raw = open(path, "rb").read()
        self.raw = raw
        lines = raw.split(b"\n")
        self.mail_from = self.rcpt = None
        i = 0
        while i < len(lines):
            ln = lines[i]
            if ln.startswith(b"Return-Path: "):
                self.mail_from = re.match(rb"Return-Path: <([^>]*)>", ln).group(1).decode(
                    "utf-8", "replace")
            elif ln.startswith(b"Delivered-To: "):
                self.rcpt = ln[len(b"Delivered-To: "):].decode("utf-8", "replace")
            elif not ln.startswith(b"X-Original-To: "):
                break
            i += 1
        # Postfix's Received: field, folded
        assert lines[i].startswith(b"Received: "), lines[i]
        j = i + 1
        while j < len(lines) and lines[j][:1] in (b" ", b"\t"):
            j += 1
        self.received = b"\n".join(lines[i:j]).decode("utf-8", "replace")
        self.tls = "using TLS" in self.received
        m = re.search(r"with (\S+) id", self.received)
        self.protocol = m.group(1) if m else None
        self.data = b"\n".join(lines[j:]).replace(b"\n", b"\r\n")

    def __repr__(self):
        return "<PostfixMessage from=%r to=%r %d bytes %s>" % (
            self.mail_from, self.rcpt, len(self.data), self.protocol)


class PostfixSink(Managed):
    """A private Postfix instance (its own main.cf, master.cf, queue) whose
    smtpd listens on host:port, offers STARTTLS with a self-signed
    certificate, CHUNKING, SMTPUTF8, DSN and PIPELINING (Postfix's
    defaults), accepts mail for `domains` from anywhere and delivers it
    with virtual(8) into one Maildir.  Needs root (the daemons run as
    user postfix, virtual delivers as nobody)."""

    def __init__(self, host="127.0.0.1", port=None, domains=("pfx.test",),
                 name="pfx.sink.test"):
        self.host = host
        self.port = port or free_port(host)
        self.addr = (host, self.port)
        self.domains = list(domains)
        self.name = name
        self.dir = tempfile.mkdtemp(prefix="herald-postfix-")
        os.chmod(self.dir, 0o755)
        self.conf = os.path.join(self.dir, "conf")
        self.queue = os.path.join(self.dir, "queue")
        self.data_dir = os.path.join(self.dir, "data")
        self.mail = os.path.join(self.dir, "mail")
        self.maillog = os.path.join(self.dir, "maillog")
        self.started = False

    def _postfix(self, *args, timeout=60):
        return subprocess.run(["postfix", "-c", self.conf] + list(args),
                              capture_output=True, text=True, timeout=timeout)

    def start(self):
        for d in (self.conf, self.queue, self.data_dir, self.mail):
            os.mkdir(d)
        os.chmod(self.mail, 0o777)
        shutil.chown(self.data_dir, "postfix")
        self.cert_file, self.key_file = make_cert(self.conf, self.name)
        os.chmod(self.key_file, 0o600)
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write("""\
compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {maillog}
maillog_file_prefixes = {dir}
myhostname = {name}
mydomain = sink.test
myorigin = $myhostname
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = {host}
inet_protocols = ipv4
mynetworks =
smtpd_peername_lookup = no
smtpd_relay_restrictions = reject_unauth_destination
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
in_flow_delay = 0
biff = no
virtual_mailbox_domains = {domains}
virtual_mailbox_base = {mail}
virtual_mailbox_maps = static:box/
virtual_uid_maps = static:65534
virtual_gid_maps = static:65534
smtpd_tls_security_level = may
smtpd_tls_cert_file = {cert}
smtpd_tls_key_file = {key}
smtpd_tls_received_header = yes
smtputf8_enable = yes
# leave the header of mail from 127.0.0.1 as it came
local_header_rewrite_clients =
default_transport = error:this sink delivers nothing else
relay_transport = error:this sink relays nothing
""".format(queue=self.queue, data=self.data_dir, maillog=self.maillog, dir=self.dir,
           name=self.name, host=self.host, domains=", ".join(self.domains),
           mail=self.mail, cert=self.cert_file, key=self.key_file))
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write("""\
{host}:{port} inet n - n - - smtpd
cleanup   unix  n       -       n       -       0       cleanup
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
qmgr      unix  n       -       n       300     1       qmgr
virtual   unix  -       n       n       -       -       virtual
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
""".format(host=self.host, port=self.port))
        p = self._postfix("check")
        if p.returncode != 0:
            raise RuntimeError("postfix check: %s%s" % (p.stdout, p.stderr))
        p = self._postfix("start")
        if p.returncode != 0:
            raise RuntimeError("postfix start: %s%s %s" % (p.stdout, p.stderr, self.log()))
        self.started = True
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(self.addr, timeout=2) as s:
                    s.settimeout(5)
                    if s.recv(200).startswith(b"220"):
                        s.sendall(b"QUIT\r\n")
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("postfix smtpd does not answer: %s" % self.log())
            time.sleep(0.1)
        return self

    def log(self):
        try:
            return open(self.maillog, errors="replace").read()
        except OSError:
            return ""

    def messages(self):
        """Every delivered message (one per recipient), oldest first."""
        new = os.path.join(self.mail, "box", "new")
        try:
            names = os.listdir(new)
        except FileNotFoundError:
            return []
        out = []
        for n in names:
            p = os.path.join(new, n)
            out.append((os.stat(p).st_mtime_ns, n, PostfixMessage(p)))
        return [m for _, _, m in sorted(out, key=lambda t: (t[0], t[1]))]

    def wait_messages(self, n, timeout):
        wait_until(lambda: len(self.messages()) >= n, timeout)
        return self.messages()

    def smtpd_sessions(self):
        """The command counts of each ended smtpd session, from the
        "disconnect from" lines: [{"ehlo": 2, "starttls": 1, "bdat": 1, ...}]."""
        out = []
        for line in self.log().splitlines():
            m = re.search(r"smtpd\[\d+\]: disconnect from \S+ (.*)$", line)
            if m:
                out.append({k: int(v.split("/")[0]) for k, v in
                            re.findall(r"(\w+)=(\d+(?:/\d+)?)", m.group(1))})
        return out

    def stop(self):
        if self.started:
            pid = None
            try:
                pid = int(open(os.path.join(self.queue, "pid", "master.pid")).read().strip())
            except (OSError, ValueError):
                pass
            try:
                self._postfix("stop", timeout=30)
            except subprocess.TimeoutExpired:
                pass
            if pid:
                for _ in range(100):
                    try:
                        os.kill(pid, 0)
                    except OSError:
                        break
                    time.sleep(0.1)
                else:
                    try:
                        os.kill(pid, 9)
                    except OSError:
                        pass
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)
