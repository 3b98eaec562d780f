"""proctree - the processes under a PID, read from /proc (for bench/lib)."""

import os


def stats():
    """{pid: the fields of /proc/PID/stat after the command name}; the
    command name may hold spaces and parentheses, so split after the last
    ')'.  Field 0 is the state, field 1 the parent pid."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                out[int(d)] = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
    return out


def descendants(root, st=None):
    """root and every process below it (root first)."""
    st = stats() if st is None else st
    children = {}
    for pid, rest in st.items():
        children.setdefault(int(rest[1]), []).append(pid)
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out
