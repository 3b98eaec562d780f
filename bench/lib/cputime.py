#!/usr/bin/python3
"""cputime PID - CPU seconds (user + system) used so far by PID's process tree.

Counts every live process under PID (PID included) and the children they
have already reaped (cutime and cstime), so a Postfix master's figure
includes the smtpd and cleanup processes that have come and gone.  Prints
one number.
"""

import os
import sys

import proctree


def main():
    root = int(sys.argv[1])
    hz = os.sysconf("SC_CLK_TCK")
    st = proctree.stats()
    if root not in st:
        sys.exit(f"cputime: no process {root}")
    # fields 14-17 of stat: utime stime cutime cstime; st[pid] starts at 3
    ticks = sum(sum(int(x) for x in st[pid][11:15])
                for pid in proctree.descendants(root, st))
    print(f"{ticks / hz:.2f}")


if __name__ == "__main__":
    main()
