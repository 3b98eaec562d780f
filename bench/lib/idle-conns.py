#!/usr/bin/python3
"""idle-conns - memory a server spends on idle SMTP connections.

usage: idle-conns.py --port PORT --count N (--pid PID | --postfix-master PID)
                     [--host 127.0.0.1] [--timeout SECONDS] [--settle SECONDS]

Measures the server's memory, opens N TCP connections to HOST:PORT, reads
the 220 greeting on each and then leaves them idle, measures again, closes
them, and prints one line of key=value pairs:

  --pid PID             one process (Herald): VmRSS before and after, from
                        /proc/PID/status; per_conn = (after - before) / N.
  --postfix-master PID  Postfix's master and all its descendants: the sum
                        of their Pss (/proc/*/smaps_rollup; shared library
                        pages divided among the processes that map them) and
                        of their Rss.  Postfix serves each connection with
                        an smtpd process, so per_conn is mostly the cost of
                        one smtpd process.

Exits 1 when a connection is refused, closed or not greeted with 220
within --timeout seconds.
"""

import argparse
import resource
import select
import socket
import sys
import time

import proctree


def status_kb(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def tree_kb(root):
    """(number of processes, sum of Pss, sum of Rss) of root's tree, in kB."""
    n = pss = rss = 0
    for pid in proctree.descendants(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                vals = {}
                for line in f:
                    parts = line.split()
                    if len(parts) >= 2 and parts[0] in ("Rss:", "Pss:"):
                        vals[parts[0]] = int(parts[1])
            pss += vals.get("Pss:", 0)
            rss += vals.get("Rss:", 0)
            n += 1
        except OSError:
            pass  # exited meanwhile
    return n, pss, rss


def measure(args):
    if args.pid:
        return {"rss_kb": status_kb(args.pid, "VmRSS")}
    n, pss, rss = tree_kb(args.postfix_master)
    return {"procs": n, "pss_kb": pss, "rss_kb": rss}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--settle", type=float, default=1.0,
                    help="seconds to wait after the last greeting")
    who = ap.add_mutually_exclusive_group(required=True)
    who.add_argument("--pid", type=int)
    who.add_argument("--postfix-master", type=int)
    args = ap.parse_args()

    want = args.count + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (min(want, hard) if hard != resource.RLIM_INFINITY
                            else want, hard))

    before = measure(args)
    deadline = time.monotonic() + args.timeout
    socks, pending, got = [], {}, {}
    try:
        for _ in range(args.count):
            s = socket.create_connection((args.host, args.port),
                                         timeout=args.timeout)
            s.setblocking(False)
            socks.append(s)
            pending[s.fileno()] = s
            got[s.fileno()] = b""
        poller = select.poll()
        for fd in pending:
            poller.register(fd, select.POLLIN)
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                print(f"idle-conns: {len(pending)} of {args.count} "
                      f"connections not greeted within {args.timeout}s",
                      file=sys.stderr)
                return 1
            for fd, _ in poller.poll(left * 1000):
                data = pending[fd].recv(4096)
                if not data:
                    print("idle-conns: server closed a connection before "
                          "its greeting", file=sys.stderr)
                    return 1
                got[fd] += data
                # a greeting may span lines: "220-..." then "220 ..."
                lines = got[fd].split(b"\n")[:-1]
                if any(ln.startswith(b"220 ") for ln in lines):
                    poller.unregister(fd)
                    del pending[fd]
                elif any(not ln.startswith(b"220") for ln in lines):
                    print("idle-conns: unexpected greeting: "
                          + got[fd][:200].decode("latin-1").strip(),
                          file=sys.stderr)
                    return 1
        time.sleep(args.settle)
        after = measure(args)
    finally:
        for s in socks:
            s.close()

    out = [f"connections={args.count}"]
    for k in before:
        out.append(f"{k}_before={before[k]}")
        out.append(f"{k}_after={after[k]}")
    key = "rss_kb" if args.pid else "pss_kb"
    per_conn = (after[key] - before[key]) * 1024 / args.count
    out.append(f"per_conn_bytes={per_conn:.0f}")
    if not args.pid:
        rss_per = (after["rss_kb"] - before["rss_kb"]) * 1024 / args.count
        out.append(f"per_conn_rss_bytes={rss_per:.0f}")
    print(" ".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
