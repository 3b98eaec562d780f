#!/usr/bin/python3
"""cputime PID... - CPU seconds (user + system) used so far by PIDs' process trees.

Counts every live process under each PID (PID included) and the children
they have already reaped (cutime and cstime), so a Postfix master's figure
includes the smtpd and cleanup processes that have come and gone.  With
several PIDs (say Postfix's master and an OpenDKIM beside it), prints the
sum.  Prints one number.
"""

import os
import sys

import proctree


def main():
    roots = [int(a) for a in sys.argv[1:]]
    if not roots:
        sys.exit("usage: cputime.py PID...")
    hz = os.sysconf("SC_CLK_TCK")
    st = proctree.stats()
    pids = set()
    for root in roots:
        if root not in st:
            sys.exit(f"cputime: no process {root}")
        pids.update(proctree.descendants(root, st))
    # fields 14-17 of stat: utime stime cutime cstime; st[pid] starts at 3
    ticks = sum(sum(int(x) for x in st[pid][11:15]) for pid in pids)
    print(f"{ticks / hz:.2f}")


if __name__ == "__main__":
    main()
