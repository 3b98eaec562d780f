#!/usr/bin/python3
"""sink-wait - wait until an smtp-sink has received a number of messages.

usage: sink-wait.py FILE [--sessions]          print the count now (with
                                               --sessions: the sessions)
       sink-wait.py FILE --target N [--t0 EPOCH] [--timeout S] [--stall S]
                    [--interval S] [--stop-file PATH]

FILE is the standard output of `smtp-sink -c`: a counter record
"sess=N quit=N mesg=N" followed by a carriage return, written whenever a
session ends, a QUIT is executed or the "." ending a message arrives
(mesg counts those).

With --target, polls FILE every --interval seconds (default 0.01) until
mesg reaches N, then prints "reached=1 count=C elapsed=S": S is the time
from --t0 (a time.time() value, default: when this started) to the poll
that first saw the target, so the figure is late by at most one interval.
Gives up, printing "reached=0 count=C elapsed=S why=stall|timeout|stopped"
and exiting 1, when the count has not moved for --stall seconds (default
60: a message the MTA deferred would wait for its retry), after --timeout
seconds (default 900), or when --stop-file exists (the caller creates it
when the submission failed).
"""

import argparse
import os
import re
import sys
import time

RECORD = re.compile(rb"sess=(\d+) quit=\d+ mesg=(\d+)\r")


class Counter:
    """Reads FILE incrementally; .count and .sessions are the last complete
    record's mesg and sess."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.tail = b""
        self.count = 0
        self.sessions = 0

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return self.count
        if not data:
            return self.count
        self.offset += len(data)
        data = self.tail + data
        cut = data.rfind(b"\r") + 1
        self.tail = data[cut:]
        last = None
        for last in RECORD.finditer(data, 0, cut):
            pass
        if last:
            self.sessions = int(last.group(1))
            self.count = int(last.group(2))
        return self.count


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--target", type=int)
    ap.add_argument("--t0", type=float)
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--stall", type=float, default=60.0)
    ap.add_argument("--interval", type=float, default=0.01)
    ap.add_argument("--stop-file")
    ap.add_argument("--sessions", action="store_true")
    args = ap.parse_args()

    c = Counter(args.file)
    if args.target is None:
        c.poll()
        print(c.sessions if args.sessions else c.count)
        return 0

    t0 = args.t0 if args.t0 is not None else time.time()
    start = time.monotonic()
    last_count, last_move = c.poll(), start
    why = None
    while True:
        n = c.poll()
        now = time.monotonic()
        if n >= args.target:
            print(f"reached=1 count={n} elapsed={time.time() - t0:.3f}")
            return 0
        if n != last_count:
            last_count, last_move = n, now
        if now - last_move > args.stall:
            why = "stall"
        elif now - start > args.timeout:
            why = "timeout"
        elif args.stop_file and os.path.exists(args.stop_file):
            why = "stopped"
        if why:
            print(f"reached=0 count={n} elapsed={time.time() - t0:.3f} "
                  f"why={why}")
            return 1
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
