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
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERALD = os.environ.get("HERALD") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "src", "cli", "herald")


def free_port():
    """A TCP port nobody listens on right now (loopback)."""
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
        self.ports = {k: free_port() for k in ("submission", "submissions", "mx")}
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
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.proc.stdout.close()
            self.log.close()
        self.proc = None

    def kill9(self):
        self.stop(signal.SIGKILL)

    def read_log(self):
        try:
            return open(self.log_path, errors="replace").read()
        except OSError:
            return ""

    def queue_dir(self):
        return os.path.join(self.data, "spool", "queue")

    def spool_messages(self):
        """{queue_id: (envelope, body bytes)} of every file in the queue."""
        out = {}
        for name in sorted(os.listdir(self.queue_dir())):
            out[name] = parse_spool_file(os.path.join(self.queue_dir(), name))
        return out

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        if exc[0] is not None:
            sys.stderr.write("---- herald log ----\n" + self.read_log()[-20000:])
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


def check(cond, what):
    """Assert with a message; print a line per check for the test log."""
    if not cond:
        raise AssertionError(what)
    print("ok -", what)
