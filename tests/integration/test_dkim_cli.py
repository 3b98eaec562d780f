#!/usr/bin/python3
"""test_dkim_cli - `herald dkim keygen|list|show|remove`: key files (place,
modes, owner), the DNS records printed (checked with python3-cryptography
against the private keys), default and explicit selectors, refusals (a
domain no account sends as, an existing selector, bad options), which
key signs, and removal.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_dkim_cli.py
"""
import base64
import os
import pwd
import re
import stat
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

RECORD = re.compile(r'^([a-z0-9-]+)\._domainkey\.([a-z0-9.-]+)\. IN TXT \( '
                    r'((?:"[^"]*" )+)\)$')


def records(out):
    """{selector: (domain, TXT value, [strings], key file)} from the
    output of keygen or show: each record line is followed by the line
    naming its key file."""
    lines = out.splitlines()
    found = {}
    for i, line in enumerate(lines):
        m = RECORD.match(line)
        if not m:
            continue
        strings = re.findall(r'"([^"]*)"', m.group(3))
        check(i + 1 < len(lines) and lines[i + 1].startswith("key file: "),
              "record %s is followed by its key file" % m.group(1), out)
        found[m.group(1)] = (m.group(2), "".join(strings), strings,
                             lines[i + 1][len("key file: "):])
    return found


def tags(txt):
    """The tags of a DKIM key record as a dict."""
    return dict(t.strip().split("=", 1) for t in txt.split(";") if t.strip())


def check_key(sel, rec, algo, bits=None):
    """The record's p= is the public half of the key in the file."""
    domain, txt, strings, path = rec
    check(all(len(s) <= 255 for s in strings),
          "%s: TXT strings of at most 255 characters" % sel, strings)
    t = tags(txt)
    check_eq((t["v"], t["k"]), ("DKIM1", algo), "%s: v=DKIM1; k=%s" % (sel, algo))
    p = base64.b64decode(t["p"], validate=True)
    with open(path, "rb") as f:
        pem = f.read()
    check(pem.startswith(b"-----BEGIN PRIVATE KEY-----"), "%s: PKCS#8 PEM" % sel)
    key = serialization.load_pem_private_key(pem, password=None)
    if algo == "rsa":
        pub = serialization.load_der_public_key(p)
        check(isinstance(pub, rsa.RSAPublicKey) and pub.key_size == bits,
              "%s: p= is a %d-bit RSA SubjectPublicKeyInfo" % (sel, bits))
        mine = key.public_key().public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo)
    else:
        check_eq(len(p), 32, "%s: p= is a bare 32-byte Ed25519 key" % sel)
        check(isinstance(key, ed25519.Ed25519PrivateKey),
              "%s: the file holds an Ed25519 key" % sel)
        mine = key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    check_eq(mine, p, "%s: the record matches the private key" % sel)
    st = os.stat(path)
    check_eq(stat.S_IMODE(st.st_mode), 0o600, "%s: key file mode 0600" % sel)


def fails(p, what, code=1, stderr_has=()):
    check(p.returncode == code, "%s: exit %d" % (what, code),
          lambda: "exit %d, stdout %r, stderr %r" % (p.returncode, p.stdout, p.stderr))
    for s in stderr_has:
        check(s in p.stderr, "%s: error says %r" % (what, s), p.stderr)
    return p.stderr


def list_rows(h, *args):
    out = h.cli("dkim", "list", *args)
    lines = out.splitlines()
    check(lines[0].split() == ["DOMAIN", "SELECTOR", "ALGORITHM", "SIGNING", "FILE"],
          "dkim list: header line", lines[0])
    return [l.split() for l in lines[1:]]


def main():
    with harness.Herald(start=False) as h:
        keydir = os.path.join(h.data, "dkim", "example.com")
        month = time.strftime("herald%Y%m", time.gmtime())

        # ---- keygen: defaults (RSA 2048, herald<YYYYMM>-rsa)
        out = h.cli("dkim", "keygen", "example.com")
        recs = records(out)
        sel_rsa = month + "-rsa"
        check_eq(list(recs), [sel_rsa], "keygen: one record, default selector")
        check_eq(recs[sel_rsa][0], "example.com", "keygen: record for the domain")
        check_eq(recs[sel_rsa][3], os.path.join(keydir, sel_rsa + ".rsa.pem"),
                 "keygen: the key file is <data>/dkim/<domain>/<sel>.rsa.pem")
        check_key(sel_rsa, recs[sel_rsa], "rsa", 2048)
        check(len(recs[sel_rsa][2]) == 2, "keygen: a 2048-bit record takes two strings")
        check("Publish this record in the DNS of example.com" in out,
              "keygen: says to publish the record", out)
        for d in (os.path.join(h.data, "dkim"), keydir):
            check_eq(stat.S_IMODE(os.stat(d).st_mode), 0o700,
                     "keygen: %s is 0700" % d)
        check_eq(sorted(os.listdir(keydir)), [sel_rsa + ".rsa.pem"],
                 "keygen: no temporary file left")

        # ---- keygen: Ed25519, domain given in upper case
        out = h.cli("dkim", "keygen", "EXAMPLE.com", "--algorithm", "ed25519")
        recs = records(out)
        sel_ed = month + "-ed25519"
        check_eq(list(recs), [sel_ed], "keygen ed25519: default selector")
        check_key(sel_ed, recs[sel_ed], "ed25519")
        check_eq(len(recs[sel_ed][2]), 1, "keygen ed25519: one string")

        # ---- keygen: both, explicit selector, 1024 bits
        time.sleep(0.05)  # the newer keys must be newer on any file system
        out = h.cli("dkim", "keygen", "example.com", "--algorithm", "both",
                    "--selector", "S2", "--bits", "1024")
        recs = records(out)
        check_eq(sorted(recs), ["s2-ed25519", "s2-rsa"],
                 "keygen both: selectors S-rsa and S-ed25519, lower case")
        check_key("s2-rsa", recs["s2-rsa"], "rsa", 1024)
        check_key("s2-ed25519", recs["s2-ed25519"], "ed25519")
        check("Publish these records" in out, "keygen both: two records", out)
        shown_s2 = {k: v for k, v in recs.items()}

        # ---- keygen: an explicit selector for one key is used as given
        out = h.cli("dkim", "keygen", "example.com", "--selector", "mail1",
                    "--algorithm", "ed25519")
        check_eq(list(records(out)), ["mail1"], "keygen --selector: used as given")
        os.unlink(os.path.join(keydir, "mail1.ed25519.pem"))

        # ---- refusals
        before = open(os.path.join(keydir, sel_rsa + ".rsa.pem"), "rb").read()
        p = h.cli("dkim", "keygen", "example.com", check=False)
        fails(p, "keygen again with the same selector", 1, ("already", sel_rsa))
        check_eq(p.stdout, "", "refused keygen: nothing on stdout")
        check_eq(open(os.path.join(keydir, sel_rsa + ".rsa.pem"), "rb").read(), before,
                 "refused keygen: the existing key is untouched")
        fails(h.cli("dkim", "keygen", "example.com", "--selector", "s2-rsa",
                    "--algorithm", "ed25519", check=False),
              "keygen: a selector an RSA key has, for Ed25519", 1, ("s2-rsa", "already"))
        p = h.cli("dkim", "keygen", "unknown.example", check=False)
        fails(p, "keygen for a domain no account has", 1,
              ("domain unknown.example is not a sender domain of any account",
               "herald domain add"))
        check(not os.path.exists(os.path.join(h.data, "dkim", "unknown.example")),
              "refused keygen: no directory for the unknown domain")
        fails(h.cli("dkim", "keygen", "[192.0.2.1]", check=False),
              "keygen for an address literal", 1, ("domain names only",))
        for args, what in ((["--algorithm", "dsa"], "--algorithm dsa"),
                           (["--bits", "512"], "--bits 512"),
                           (["--bits", "8192"], "--bits 8192"),
                           (["--bits", "2048", "--algorithm", "ed25519"],
                            "--bits with ed25519"),
                           (["--selector", "bad_sel"], "--selector bad_sel"),
                           (["--selector", "-x"], "--selector -x"),
                           (["--selector", "a" * 60, "--algorithm", "both"],
                            "a selector too long once suffixed"),
                           (["--selector"], "--selector without a value"),
                           (["extra"], "an extra argument")):
            fails(h.cli("dkim", "keygen", "example.com", *args, check=False),
                  "keygen " + what, 2, ("usage: herald dkim keygen",))

        # ---- list: the newest key of each algorithm signs
        rows = list_rows(h)
        want = [["example.com", sel_ed, "ed25519", "no"],
                ["example.com", sel_rsa, "rsa", "no"],
                ["example.com", "s2-ed25519", "ed25519", "yes"],
                ["example.com", "s2-rsa", "rsa", "yes"]]
        check_eq([r[:4] for r in rows], sorted(want), "dkim list: every key, the newest signs")
        check_eq(rows[0][4], os.path.join(keydir, rows[0][1] + ".ed25519.pem"),
                 "dkim list: the file column")
        check_eq(list_rows(h, "example.com"), rows, "dkim list DOMAIN: the same")
        h.cli("account", "create", "other")
        h.cli("domain", "add", "--account", "other", "other.example")
        check_eq(list_rows(h, "other.example"), [], "dkim list: a domain without keys")
        out = h.cli("dkim", "keygen", "other.example", "--algorithm", "ed25519")
        check_eq([r[:4] for r in list_rows(h)][-1],
                 ["other.example", sel_ed, "ed25519", "yes"],
                 "dkim list: keys of every domain")

        # ---- show
        out = h.cli("dkim", "show", "example.com")
        shown = records(out)
        check_eq(sorted(shown), sorted(r[1] for r in want), "dkim show: every key's record")
        out = h.cli("dkim", "show", "example.com", "--selector", "s2-rsa")
        check_eq(records(out), {"s2-rsa": shown_s2["s2-rsa"]},
                 "dkim show --selector: the record keygen printed")
        fails(h.cli("dkim", "show", "example.com", "--selector", "nope", check=False),
              "dkim show: unknown selector", 1, ("no DKIM key with selector nope",))
        fails(h.cli("dkim", "show", "nokeys.example", check=False),
              "dkim show: a domain without keys", 1, ("has no DKIM key",))

        # ---- remove: the next newest signs
        out = h.cli("dkim", "remove", "example.com", "--selector", "s2-rsa")
        check(not os.path.exists(os.path.join(keydir, "s2-rsa.rsa.pem")),
              "dkim remove: the file is gone")
        check("removed " + os.path.join(keydir, "s2-rsa.rsa.pem") in out and
              "s2-rsa._domainkey.example.com." in out,
              "dkim remove: names the file and the DNS record to delete", out)
        check("example.com signs with %s (rsa)" % sel_rsa in out,
              "dkim remove: the older RSA key signs again", out)
        check_eq([r[:4] for r in list_rows(h, "example.com")
                  if r[2] == "rsa"], [["example.com", sel_rsa, "rsa", "yes"]],
                 "dkim list after remove")
        fails(h.cli("dkim", "remove", "example.com", "--selector", "s2-rsa", check=False),
              "dkim remove: again", 1, ("no DKIM key with selector s2-rsa",))
        fails(h.cli("dkim", "remove", "example.com", check=False),
              "dkim remove without --selector", 2, ("usage: herald dkim remove",))
        out = h.cli("dkim", "remove", "other.example", "--selector", sel_ed)
        check("other.example has no DKIM key left" in out,
              "dkim remove: the last key", out)

        # ---- as root, the files belong to server.user
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            h.sets["server.user"] = "nobody"
            out = h.cli("dkim", "keygen", "other.example", "--selector", "n1")
            path = records(out)["n1"][3]
            for f in (path, os.path.dirname(path), os.path.dirname(os.path.dirname(path))):
                st = os.stat(f)
                check_eq((st.st_uid, st.st_gid), (nobody.pw_uid, nobody.pw_gid),
                         "as root with server.user=nobody: %s belongs to nobody" % f)
            h.sets["server.user"] = "no-such-user-here"
            fails(h.cli("dkim", "keygen", "other.example", "--selector", "n2", check=False),
                  "keygen: an unknown server.user", 1, ("no-such-user-here",))
            check(not os.path.exists(os.path.join(os.path.dirname(path), "n2.rsa.pem")),
                  "keygen with an unknown server.user writes nothing")
            del h.sets["server.user"]

        # ---- help
        out = h.cli("dkim", "--help")
        for c in ("keygen", "list", "show", "remove"):
            check("herald dkim " + c in out, "herald dkim --help lists %s" % c)


if __name__ == "__main__":
    harness.run(main)
