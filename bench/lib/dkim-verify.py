#!/usr/bin/python3
"""dkim-verify - check the DKIM signature of a message an smtp-sink dumped.

usage: dkim-verify.py MESSAGE TXT

MESSAGE: a file written by `smtp-sink -d` (smtp-sink's X-Client-Addr...
and Received: lines, then the message as received, then an empty line).
TXT: the key's DNS record as `opendkim-genkey` or `herald dkim keygen`
print it (SEL._domainkey IN TXT ( "v=DKIM1; k=rsa; " "p=..." )): the
quoted strings are joined and served as the answer to the key look-up, so
no DNS is used.

Prints "pass d=DOMAIN s=SELECTOR a=ALGORITHM signatures=N" and exits 0 when
the first DKIM-Signature verifies; otherwise prints why and exits 1.
Needs python3-dkim (dkimpy).
"""

import re
import sys

try:
    import dkim
except ImportError:
    print("fail: python3-dkim (dkimpy) is not installed")
    sys.exit(1)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], "rb") as f:
        msg = f.read()
    with open(sys.argv[2], "rb") as f:
        txt = b"".join(re.findall(rb'"([^"]*)"', f.read()))
    if not txt:
        print(f"fail: no quoted TXT record in {sys.argv[2]}")
        return 1
    # smtp-sink writes bare LFs; DKIM canonicalizes CRLF lines.
    msg = re.sub(rb"\r?\n", b"\r\n", msg)
    head = msg.split(b"\r\n\r\n", 1)[0]
    sigs = re.findall(rb"(?im)^dkim-signature:([^\r\n]*(?:\r\n[ \t][^\r\n]*)*)",
                      head)
    if not sigs:
        print("fail: no DKIM-Signature")
        return 1
    tags = dict(
        (k.strip().decode(), v.strip().decode())
        for k, _, v in (t.partition(b"=") for t in
                        re.sub(rb"\s+", b"", sigs[0]).split(b";")) if k)
    desc = (f"d={tags.get('d', '?')} s={tags.get('s', '?')} "
            f"a={tags.get('a', '?')} signatures={len(sigs)}")
    try:
        ok = dkim.verify(msg, dnsfunc=lambda name, timeout=5: txt)
    except Exception as e:  # dkimpy raises on malformed signatures
        print(f"fail: {e.__class__.__name__}: {e} ({desc})")
        return 1
    print(("pass " if ok else "fail: signature does not verify; ") + desc)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
