#!/usr/bin/python3
"""test_crash - "250 means on disk": kill -9 herald under load, restart it,
and find every acknowledged message complete in the queue.

Each cycle: 8 smtplib clients loop sending messages (small and larger) to
the MX port while Postfix's smtp-source adds load; every queue id answered
with 250 is recorded with the exact bytes sent.  After ~3 s herald gets
SIGKILL, is started again (spool recovery runs), and every recorded id must
be in spool/queue as a complete spool file holding exactly those bytes;
no uncommitted file may be left.  Three cycles on the same data directory.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_crash.py
"""
import os
import re
import secrets
import smtplib
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check  # noqa: E402

THREADS = 8
RUN_SECONDS = 3.0
CYCLES = 3
DEADLINE = time.time() + 240          # meson gives 300 s

RECEIVED = re.compile(rb"Received: from \S+ \(\[127\.0\.0\.1\]\)\r\n"
                      rb"(?:\t[^\r\n]*\r\n)+")
QUEUED = re.compile(rb"2\.0\.0 Ok: queued as ([0-9a-z]{16})$")


class Sender(threading.Thread):
    """Send messages to the MX port until stopped or the server dies;
    remember the bytes of every message acknowledged with 250."""

    def __init__(self, addr, n, stop):
        super().__init__(daemon=True)
        self.addr, self.n, self.stop = addr, n, stop
        self.acked = {}           # queue id -> message bytes
        self.refused = []         # unexpected non-250 replies
        self.cut_off = False      # the kill caught this client mid-session

    def message(self, i):
        token = secrets.token_hex(8).encode()
        # every 7th message is ~40 KB so some kills land inside DATA
        size = 40000 if i % 7 == 3 else 200
        body = b"".join(b"%s line %05d %s\r\n" % (token, k, b"z" * 40)
                        for k in range(size // 70 + 1))
        return (b"From: <sender%d@remote.test>\r\nTo: <x@inbound.test>\r\n"
                b"Subject: crash %s %d\r\nMessage-ID: <%s@remote.test>\r\n"
                b"Date: Mon, 01 Jan 2024 00:00:00 +0000\r\n\r\n"
                % (self.n, token, i, token)) + body

    def run(self):
        i = 0
        end = time.time() + 30
        while not self.stop.is_set() and time.time() < end:
            try:
                s = smtplib.SMTP(self.addr[0], self.addr[1],
                                 local_hostname="crash%d.test" % self.n,
                                 timeout=5)
            except OSError:
                time.sleep(0.05)           # server is down; wait for stop
                continue
            try:
                s.ehlo("crash%d.test" % self.n)
                for _ in range(50):        # a few messages per connection
                    if self.stop.is_set() or time.time() > end:
                        break
                    i += 1
                    msg = self.message(i)
                    code, text = s.mail("sender%d@remote.test" % self.n)
                    if code != 250:
                        self.refused.append(("MAIL", code, text))
                        break
                    code, text = s.rcpt("x@inbound.test")
                    if code != 250:
                        self.refused.append(("RCPT", code, text))
                        break
                    code, text = s.data(msg)
                    m = QUEUED.match(text)
                    if code == 250 and m:
                        self.acked[m.group(1).decode()] = msg
                    else:
                        self.refused.append(("DATA", code, text))
                        break
                s.quit()
            except (OSError, smtplib.SMTPException):
                self.cut_off = True
            finally:
                try:
                    s.close()
                except OSError:
                    pass


def cycle(h, c, acked_all):
    assert time.time() < DEADLINE, "test ran out of time"
    stop = threading.Event()
    senders = [Sender(h.mx, n, stop) for n in range(THREADS)]
    load = subprocess.Popen(
        ["/usr/sbin/smtp-source", "-s", "10", "-m", "1000000", "-l", "3000",
         "-f", "load@remote.test", "-t", "load@inbound.test",
         "127.0.0.1:%d" % h.mx[1]],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    before = h.queue_ids()
    for t in senders:
        t.start()
    time.sleep(RUN_SECONDS)
    pid = h.proc.pid
    h.kill9()                                  # SIGKILL, then reap
    killed_at = time.time()
    stop.set()
    for t in senders:
        t.join(timeout=max(1, 15 - (time.time() - killed_at)))
    check(not any(t.is_alive() for t in senders),
          "cycle %d: all %d clients stopped after the kill" % (c, THREADS))
    try:
        load.wait(timeout=10)
    except subprocess.TimeoutExpired:
        load.kill()
        load.wait()
    check(load.returncode != 0,
          "cycle %d: smtp-source was cut off by the kill (exit %s)"
          % (c, load.returncode))
    check(not os.path.exists("/proc/%d" % pid) or
          open("/proc/%d/stat" % pid).read().split()[2] == "Z",
          "cycle %d: herald pid %d is gone" % (c, pid))

    acked = {}
    for t in senders:
        acked.update(t.acked)
    refused = [r for t in senders for r in t.refused]
    check(refused == [], "cycle %d: no refusals before the kill" % c,
          lambda: refused[:3])
    cut = sum(t.cut_off for t in senders)
    queued_before_restart = h.queue_ids() - before
    check(len(acked) >= 20, "cycle %d: clients got %d acknowledgements "
          "(%d clients cut off mid-session, %d new queue files incl. smtp-source)"
          % (c, len(acked), cut, len(queued_before_restart)))
    acked_all.update(acked)
    left = len(h.uncommitted())

    h.start()                                  # recovery runs here
    uncommitted = h.uncommitted()
    corrupt = os.listdir(os.path.join(h.data, "spool", "corrupt"))
    queue = h.queue_ids()

    missing, wrong = [], []
    for qid, sent in sorted(acked_all.items()):
        if qid not in queue:
            missing.append(qid)
            continue
        try:
            env, body = harness.parse_spool_file(os.path.join(h.queue_dir(), qid))
            m = RECEIVED.match(body)
            ok = (m is not None and body[m.end():] == sent and env["id"] == qid
                  and env["rcpt"] == ["x@inbound.test"])
        except Exception as e:               # noqa: BLE001
            ok, body = False, repr(e).encode()
        if not ok:
            wrong.append((qid, body[:300]))
    invalid = []
    for qid in sorted(queue):
        try:
            harness.parse_spool_file(os.path.join(h.queue_dir(), qid))
        except Exception as e:               # noqa: BLE001
            invalid.append((qid, repr(e)))
    print("# cycle %d: acknowledged %d (this cycle %d), found %d, missing %d, "
          "incomplete set aside %d, queue files %d, uncommitted files "
          "at the kill %d" % (
              c, len(acked_all), len(acked), len(acked_all) - len(missing),
              len(missing), len(corrupt), len(queue), left))
    check(missing == [], "cycle %d: every acknowledged message (%d) is in the "
          "queue after restart" % (c, len(acked_all)), lambda: missing[:5])
    check(wrong == [], "cycle %d: each is a complete spool file with exactly "
          "the bytes sent" % c, lambda: wrong[:2])
    check(invalid == [], "cycle %d: every file in spool/queue (%d) parses"
          % (c, len(queue)), lambda: invalid[:3])
    check(uncommitted == [], "cycle %d: no uncommitted file left after "
          "restart" % c, lambda: uncommitted[:5])
    return len(corrupt)


def main():
    with harness.Herald(account=False) as h:
        acked_all = {}
        for c in range(1, CYCLES + 1):
            cycle(h, c, acked_all)
        # the restarted server still takes mail, and the queue keeps it
        with smtplib.SMTP(*h.mx, local_hostname="after.test", timeout=10) as s:
            s.ehlo("after.test")
            s.mail("a@remote.test")
            s.rcpt("x@inbound.test")
            code, text = s.data(b"Subject: after\r\n\r\nstill here\r\n")
        check(code == 250 and QUEUED.match(text),
              "after %d crashes: a new message is accepted" % CYCLES, (code, text))
        h.stop()
        log = h.read_log()
        check(log.count("event=started") == CYCLES + 1,
              "log shows %d starts" % (CYCLES + 1))


if __name__ == "__main__":
    harness.run(main)
