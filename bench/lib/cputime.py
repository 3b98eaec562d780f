#!/usr/bin/python3
"""cputime PID - CPU seconds (user + system) used so far by PID's process tree.

Counts every live process under PID (PID included) and the children they
have already reaped (cutime and cstime), so a Postfix master's figure
includes the smtpd and cleanup processes that have come and gone.  Prints
one number.
"""

import os
import sys


def main():
    root = int(sys.argv[1])
    hz = os.sysconf("SC_CLK_TCK")
    stats, children = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                # the command name may hold spaces and parentheses
                rest = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(d)
        stats[pid] = rest
        children.setdefault(int(rest[1]), []).append(pid)
    if root not in stats:
        sys.exit(f"cputime: no process {root}")
    ticks, todo = 0, [root]
    while todo:
        pid = todo.pop()
        rest = stats[pid]
        # fields 14-17 of stat: utime stime cutime cstime; rest starts at 3
        ticks += sum(int(x) for x in rest[11:15])
        todo.extend(children.get(pid, []))
    print(f"{ticks / hz:.2f}")


if __name__ == "__main__":
    main()
