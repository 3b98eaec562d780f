#!/usr/bin/python3
"""test_import_cli - `herald import` end to end, on data directories made
with `herald init`, checking what lands in the store (herald.db, read
with Python's sqlite3) and what `herald export` gives back:

  - Horde's Gmail, Outlook, Yahoo and Thunderbird (with a header line
    added) exports imported without --map: addresses and names as
    Python's csv module reads them;
  - every vCard of php-horde-turba and evolution-data-server-tests: one
    contact per distinct normalized EMAIL;
  - every csv-spectrum case with its first column mapped to a field: no
    address, so every record is a bad row at the line it starts on;
  - typed custom fields (number, date, boolean, one_of): values stored,
    wrong types reported with line and reason, exact error count;
  - modes add/upsert/update, --overwrite if_empty/never, duplicates in one
    file merged;
  - unsubscribed and suppressed addresses stay so on re-import, unless
    --consent;
  - JSON Lines in (listmonk-like "attribs"), export --format jsonl, back in;
  - a cp1252 CSV, a ';' CSV with BOM and CRLF;
  - resume after kill -9 and after SIGTERM, --cancel of a stopped job;
  - bounded input: a 64 MiB line, a 2 MB field, empty, header only, random
    bytes;
  - peak RSS of a 1,000,000-row import under 64 MB.

The contact files come from tests/data/fetch-contacts (as in
test_contact_files.py); when fetching fails the test fails.

Run: HERALD=build/src/cli/herald /usr/bin/python3 tests/integration/test_import_cli.py
"""
import csv
import glob
import io
import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
import test_contact_files as tcf  # noqa: E402  (fetch and the vCard reader)

HERALD = os.environ.get("HERALD", "")
TMP = None

THUNDERBIRD_HEADER = (
    "First Name,Last Name,Display Name,Nickname,Primary Email,"
    "Secondary Email,Screen Name,Work Phone,Home Phone,Fax Number,"
    "Pager Number,Mobile Number,Home Address,Home Address 2,Home City,"
    "Home State,Home ZipCode,Home Country,Work Address,Work Address 2,"
    "Work City,Work State,Work ZipCode,Work Country,Job Title,Department,"
    "Organization,Web Page 1,Web Page 2,Birth Year,Birth Month,Birth Day,"
    "Custom 1,Custom 2,Custom 3,Custom 4,Notes,\r\n")


# ---- helpers ----

def herald(data, *args, timeout=120, ok=True, stdin=None):
    """Run herald --data DATA ARGS; never a crash (signal, sanitizer);
    with ok, exit 0.  Returns the CompletedProcess (text)."""
    p = subprocess.run([HERALD, "--data", data] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, check=False, stdin=stdin)
    p.stdout = p.stdout.decode(errors="replace")
    p.stderr = p.stderr.decode(errors="replace")
    what = "herald %s" % " ".join(a if len(a) < 80 else a[:77] + "..."
                                  for a in args)
    if p.returncode < 0 or p.returncode >= 128 or "Sanitizer" in p.stderr:
        raise AssertionError("%s crashed: exit %d\n%s%s"
                             % (what, p.returncode, p.stdout, p.stderr))
    if ok and p.returncode != 0:
        raise AssertionError("%s: exit %d\n%s%s"
                             % (what, p.returncode, p.stdout, p.stderr))
    return p


def new_data(name, account="acme", lists=(), fields=()):
    """A fresh data directory with an account, lists and fields
    [(name, type, choices or None)]."""
    d = os.path.join(TMP, name)
    herald(d, "init", "--data", d)
    herald(d, "account", "create", account)
    for lst in lists:
        herald(d, "list", "create", "--account", account, lst)
    for f in fields:
        args = ["field", "create", "--account", account, f[0], f[1]]
        if f[2]:
            args += ["--choices", f[2]]
        herald(d, *args)
    return d


def db(data):
    c = sqlite3.connect("file:%s?mode=ro" % os.path.join(data, "herald.db"),
                        uri=True, timeout=30)
    return c


def q(data, sql, args=()):
    c = db(data)
    try:
        return c.execute(sql, args).fetchall()
    finally:
        c.close()


def contacts(data, account="acme"):
    """{email: (name, attrs dict)} of an account."""
    rows = q(data, "SELECT c.email, c.name, c.attrs FROM contacts c "
             "JOIN accounts a ON a.id = c.account_id WHERE a.name = ?",
             (account,))
    return {e: (n, json.loads(a)) for e, n, a in rows}


def subs(data, lst):
    """{email: status} of a list's subscriptions."""
    rows = q(data, "SELECT c.email, s.status FROM subscriptions s "
             "JOIN contacts c ON c.id = s.contact_id "
             "JOIN lists l ON l.id = s.list_id WHERE l.name = ?", (lst,))
    return dict(rows)


def last_job(data):
    r = q(data, "SELECT id, state, rows_done, created, updated, skipped, "
          "errors FROM import_jobs ORDER BY id DESC LIMIT 1")
    check(len(r) == 1, "an import job is recorded")
    return dict(zip(("id", "state", "rows_done", "created", "updated",
                     "skipped", "errors"), r[0]))


def job(data, jid):
    r = q(data, "SELECT id, state, rows_done, created, updated, skipped, "
          "errors FROM import_jobs WHERE id = ?", (jid,))
    return dict(zip(("id", "state", "rows_done", "created", "updated",
                     "skipped", "errors"), r[0]))


def job_errors(data, jid):
    return q(data, "SELECT line, reason FROM import_errors WHERE job_id = ? "
             "ORDER BY line", (jid,))


def write(name, data):
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())
    return path


def imp(data, path, *args, account="acme", ok=True, timeout=120):
    return herald(data, "import", path, "--account", account, *args,
                  ok=ok, timeout=timeout)


def export_csv(data, *args, account="acme"):
    p = herald(data, "export", "--account", account, *args)
    return list(csv.DictReader(io.StringIO(p.stdout, newline="")))


def norm(addr):
    """The comparison form of an address: trimmed, mailto: and <> unwrapped,
    the domain lower-cased (ASCII domains only here)."""
    a = addr.strip()
    m = re.search(r"<([^>]*)>", a)
    if m:
        a = m.group(1).strip()
    if a.lower().startswith("mailto:"):
        a = a[7:]
    local, _, dom = a.rpartition("@")
    return local + "@" + dom.lower()


# ---- Horde's exports ----

def horde_case(data_root):
    d = os.path.join(data_root, "php-horde-data", "usr", "share", "doc",
                     "php-horde-data", "examples")
    files = {n: os.path.join(d, n) for n in ("Gmail.csv", "Outlook.csv",
                                             "Yahoo.csv")}
    with open(os.path.join(d, "Thunderbird.csv"), "rb") as f:
        tb = f.read()
    files["Thunderbird-with-header.csv"] = write(
        "Thunderbird-with-header.csv", THUNDERBIRD_HEADER.encode() + tb)
    email_h = ("email", "e-mail", "email address", "e-mail address",
               "primary email")
    first_h = ("first name", "first")
    last_h = ("last name", "last")
    full_h = ("display name", "name")
    for i, (name, path) in enumerate(sorted(files.items())):
        acct = "h%d" % i
        data = new_data("horde-" + name[:-4], account=acct)
        rows = tcf.python_csv(path)
        header = [h.strip().lower() for h in rows[0]]

        def col(names):
            for n in names:
                if n in header:
                    return header.index(n)
            return None
        ec, fc, lc, nc = (col(email_h), col(first_h), col(last_h),
                          col(full_h))
        check(ec is not None, "%s: Python finds the address column" % name)
        want = {}
        for r in rows[1:]:
            def v(c):
                return r[c] if c is not None and c < len(r) else ""
            if not v(ec):
                continue
            nm = v(nc) or " ".join(x for x in (v(fc), v(lc)) if x)
            want[norm(v(ec))] = nm
        check(len(want) > 0, "%s: %d addresses in the file" % (name, len(want)))
        p = imp(data, path, account=acct)
        got = {e: n for e, (n, _) in contacts(data, acct).items()}
        check_eq(got, want, "%s imported without --map: addresses and names "
                 "as Python's csv module reads them" % name)
        exp = {r["email"]: r["name"] for r in export_csv(data, account=acct)}
        check_eq(exp, want, "%s: the same from herald export" % name)
        check("done" in p.stdout, "%s: the job is done" % name, p.stdout)


# ---- vCards ----

def vcard_case(data_root):
    files = []
    for pkg in ("php-horde-turba", "evolution-data-server-tests"):
        found = sorted(glob.glob(os.path.join(data_root, pkg, "**", "*.vcf"),
                                 recursive=True))
        check(len(found) > 0, "%s holds .vcf files (%d)" % (pkg, len(found)))
        files += found
    data = new_data("vcards", account="v0")
    total = multi = 0
    for i, path in enumerate(files):
        acct = "v%d" % (i + 1)
        herald(data, "account", "create", acct)
        name = os.path.relpath(path, data_root)
        with open(path, "rb") as f:
            cards, _ = tcf.py_vcards(f.read())
        args = [] if path.endswith(".vcf") and i % 2 else ["--format",
                                                           "vcard"]
        p = imp(data, path, *args, account=acct, ok=False)
        check(p.returncode in (0, 1), "%s: imported (exit %d)"
              % (name, p.returncode), p.stderr)
        j = last_job(data)
        errs = job_errors(data, j["id"])
        bad_lines = {ln for ln, _ in errs}
        want = set()
        fns = {}
        for c in cards:
            valid = [e for e in c["emails"] if tcf.ADDRESS.match(e.strip())]
            if c["line"] in bad_lines:
                check(not valid, "%s: the card at line %d, reported bad, "
                      "has no valid address" % (name, c["line"]), c)
                continue
            for e in valid:
                fns.setdefault(norm(e), []).append(c["fn"])
            for e in c["emails"]:
                if tcf.ADDRESS.match(e.strip()):
                    want.add(norm(e))
            if len({norm(e) for e in c["emails"]}) > 1:
                multi += 1
        got = set(contacts(data, acct))
        names = {e: n for e, (n, _) in contacts(data, acct).items()}
        for e, fl in fns.items():
            if len(fl) == 1 and fl[0] and e in names:
                check_eq(names[e], fl[0], "%s: %s named by its FN"
                         % (name, e))
        check_eq(got, want, "%s: %d contacts, one per distinct normalized "
                 "EMAIL (%d cards, %d reported bad)"
                 % (name, len(want), len(cards), len(errs)))
        for ln, why in errs:
            check(ln >= 1 and why, "%s: bad card at line %d: %s"
                  % (name, ln, why))
        total += len(got)
    check(multi > 0, "vCards: %d cards with several addresses, each giving "
          "several contacts" % multi)
    check(total > 0, "vCards: %d contacts from %d files" % (total, len(files)))


# ---- csv-spectrum ----

def record_lines(text):
    """The line each CSV record starts on (Python's csv module)."""
    r = csv.reader(io.StringIO(text, newline=""))
    out, prev = [], 0
    for row in r:
        if row:
            out.append(prev + 1)
        prev = r.line_num
    return out


def spectrum_case(data_root):
    d = os.path.join(data_root, "csv-spectrum", "package", "csvs")
    paths = sorted(glob.glob(os.path.join(d, "*.csv")))
    check(len(paths) >= 10, "csv-spectrum cases (%d)" % len(paths))
    data = new_data("spectrum", fields=[("note", "text", None)])
    for path in paths:
        name = os.path.basename(path)
        with open(path, encoding="utf-8-sig", newline="") as f:
            text = f.read()
        header = next(csv.reader(io.StringIO(text, newline="")))
        starts = record_lines(text)[1:]
        p = imp(data, path, "--map", "%s=email" % header[0], ok=False)
        check(p.returncode in (0, 1), "csv-spectrum %s: no crash (exit %d)"
              % (name, p.returncode), p.stderr)
        j = last_job(data)
        errs = job_errors(data, j["id"])
        check_eq(([ln for ln, _ in errs], j["errors"], j["created"]),
                 (starts, len(starts), 0),
                 "csv-spectrum %s: every record a bad row at the line it "
                 "starts on" % name)
        check(all(why == "no email address" or why.startswith("invalid address")
                  for _, why in errs),
              "csv-spectrum %s: reason: no or invalid address" % name, errs)
        if starts:
            check("line %d: " % starts[0] in p.stderr,
                  "csv-spectrum %s: herald import prints the first bad row"
                  % name, p.stderr)
        # without an address column the job fails at once, saying so
        p = imp(data, path, "--map", "%s=note" % header[0], ok=False)
        check(p.returncode == 1 and "is an address" in p.stderr,
              "csv-spectrum %s: no address column: the import fails and "
              "says why" % name, p.stderr)
        check_eq(last_job(data)["state"], "failed",
                 "csv-spectrum %s: that job is failed" % name)
    check_eq(len(contacts(data)), 0, "csv-spectrum: no contact made")


# ---- typed fields ----

TYPED_FIELDS = [("city", "text", None), ("age", "number", None),
                ("since", "date", None), ("vip", "boolean", None),
                ("plan", "one_of", "free,pro,team")]


def typed_case():
    data = new_data("typed", lists=["news"], fields=TYPED_FIELDS)
    small = ("email,name,city,age,since,vip,plan\r\n"
             "a@x.org,A,Paris,42,2024-03-01,yes,free\r\n"
             "b@x.org,B,Rome,-3.5,2024-03-01T12:00:00Z,0,pro\r\n"
             "c@x.org,C,Oslo,1e3,1700000000,true,team\r\n"
             "d@x.org,D,Kyiv,forty,2024-03-01,yes,free\r\n"
             "e@x.org,E,Lima,1,2024-13-45,yes,free\r\n"
             "f@x.org,F,Nice,1,2024-03-01,perhaps,free\r\n"
             "g@x.org,G,Bonn,1,2024-03-01,no,gold\r\n"
             "h@x.org,H,Riga,,,,\r\n")
    p = imp(data, write("typed.csv", small), "--list", "news")
    c = contacts(data)
    check_eq(sorted(c), ["a@x.org", "b@x.org", "c@x.org", "h@x.org"],
             "typed: the good rows imported, the bad ones not")
    check_eq(c["a@x.org"][1], {"city": "Paris", "age": 42,
                               "since": 1709251200, "vip": True,
                               "plan": "free"},
             "typed: text, number, date (Unix seconds), boolean, one_of")
    check_eq(c["b@x.org"][1], {"city": "Rome", "age": -3.5,
                               "since": 1709294400, "vip": False,
                               "plan": "pro"}, "typed: row b")
    check_eq(c["c@x.org"][1], {"city": "Oslo", "age": 1000.0,
                               "since": 1700000000, "vip": True,
                               "plan": "team"}, "typed: row c")
    check_eq(c["h@x.org"][1], {"city": "Riga"},
             "typed: empty values are no values")
    j = last_job(data)
    errs = job_errors(data, j["id"])
    check_eq([ln for ln, _ in errs], [5, 6, 7, 8],
             "typed: wrong types reported at their lines")
    want = [r"field age: 'forty' is not a number",
            r"field since: '2024-13-45' is not a date",
            r"field vip: 'perhaps' is not a boolean",
            r"field plan: 'gold' is not one of its values"]
    for (ln, why), w in zip(errs, want):
        check(w in why, "typed: line %d: %s" % (ln, why))
        check("line %d: %s" % (ln, why) in p.stderr,
              "typed: herald import prints line %d" % ln, p.stderr)
    check_eq((j["created"], j["errors"], j["state"]), (4, 4, "done"),
             "typed: job counts")
    check_eq(len(subs(data, "news")), 4, "typed: good rows subscribed")

    # 1% bad rows of 10,000: exact error count
    rnd = random.Random(7)
    lines = ["email,city,age,since,vip,plan"]
    bad = []
    for i in range(10000):
        e, age, since, vip = "u%d@big.example" % i, str(i % 90), \
            "2020-01-%02d" % (i % 28 + 1), "yes"
        if i % 100 == 37:
            k = rnd.randrange(4)
            if k == 0:
                e = "u%d.big.example" % i
            elif k == 1:
                age = "x%d" % i
            elif k == 2:
                since = "someday"
            else:
                vip = "maybe"
            bad.append(i + 2)
        lines.append("%s,c%d,%s,%s,%s,%s" % (e, i, age, since, vip,
                                              ("free", "pro", "team")[i % 3]))
    p = imp(data, write("typed-1pct.csv", "\n".join(lines) + "\n"),
            "--list", "news")
    j = last_job(data)
    check_eq((j["errors"], j["created"], j["rows_done"]), (100, 9900, 10000),
             "typed 1%: exactly 100 errors, 9900 created")
    check_eq([ln for ln, _ in job_errors(data, j["id"])], bad,
             "typed 1%: the bad rows' line numbers")
    check_eq(len(contacts(data)), 4 + 9900, "typed 1%: contacts in the store")


# ---- modes, overwrite, duplicates ----

def modes_case():
    data = new_data("modes", lists=["news"],
                    fields=[("city", "text", None), ("age", "number", None)])
    imp(data, write("m0.csv", "email,name,city,age\n"
                    "a@x.org,Ann,Paris,30\nb@x.org,Bob,,40\n"),
        "--list", "news")
    before = contacts(data)
    imp(data, write("m1.csv", "email,name,city,age\n"
                    "a@x.org,ANN,Berlin,31\nc@x.org,Cid,Lyon,50\n"),
        "--mode", "add")
    c = contacts(data)
    check_eq(c["a@x.org"], before["a@x.org"],
             "mode add: an existing contact untouched")
    check_eq(c["c@x.org"], ("Cid", {"city": "Lyon", "age": 50}),
             "mode add: a new contact created")
    j = last_job(data)
    check_eq((j["created"], j["updated"]), (1, 0), "mode add: counts")

    imp(data, write("m2.csv", "email,name,city,age\n"
                    "a@x.org,Anna,Berlin,31\nd@x.org,Dee,Metz,60\n"),
        "--mode", "upsert")
    c = contacts(data)
    check_eq(c["a@x.org"], ("Anna", {"city": "Berlin", "age": 31}),
             "mode upsert: an existing contact updated")
    check("d@x.org" in c, "mode upsert: a new contact created")
    j = last_job(data)
    check_eq((j["created"], j["updated"]), (1, 1), "mode upsert: counts")

    imp(data, write("m3.csv", "email,name,city,age\n"
                    "a@x.org,Annie,Turin,32\ne@x.org,Eve,Gent,70\n"),
        "--mode", "update")
    c = contacts(data)
    check_eq(c["a@x.org"], ("Annie", {"city": "Turin", "age": 32}),
             "mode update: an existing contact updated")
    check("e@x.org" not in c, "mode update: no new contact")
    j = last_job(data)
    check_eq((j["created"], j["updated"], j["skipped"]), (0, 1, 1),
             "mode update: counts (the unknown address skipped)")

    # --overwrite city=if_empty: b has no city, a has one
    imp(data, write("m4.csv", "email,city,age\n"
                    "a@x.org,Cairo,33\nb@x.org,Bern,41\n"),
        "--mode", "upsert", "--overwrite", "city=if_empty")
    c = contacts(data)
    check_eq(c["a@x.org"][1], {"city": "Turin", "age": 33},
             "overwrite city=if_empty: a set city kept, age overwritten")
    check_eq(c["b@x.org"][1], {"city": "Bern", "age": 41},
             "overwrite city=if_empty: an empty city filled")
    imp(data, write("m5.csv", "email,city,age\n"
                    "a@x.org,Delhi,34\nc@x.org,,51\nd@x.org,Dax,61\n"),
        "--mode", "upsert", "--overwrite", "city=never")
    c = contacts(data)
    check_eq((c["a@x.org"][1], c["c@x.org"][1], c["d@x.org"][1]),
             ({"city": "Turin", "age": 34}, {"city": "Lyon", "age": 51},
              {"city": "Metz", "age": 61}),
             "overwrite city=never: cities kept, age overwritten")
    c_names = {e: n for e, (n, _) in c.items()}
    check_eq(c_names["a@x.org"], "Annie",
             "a file without a name column leaves names alone")

    # duplicates inside one file: one contact, later non-empty values win
    d2 = new_data("dups", lists=["news"],
                  fields=[("city", "text", None), ("age", "number", None)])
    imp(d2, write("dups.csv", "email,name,city,age\n"
                  "z@x.org,Zed,Paris,\n"
                  "z@X.ORG,,Rome,20\n"
                  "y@x.org,Yan,,5\n"
                  "z@x.ORG,Zoe,,\n"), "--list", "news")
    c = contacts(d2)
    check_eq(c, {"z@x.org": ("Zoe", {"city": "Rome", "age": 20}),
                 "y@x.org": ("Yan", {"age": 5})},
             "duplicates in one file merged, later non-empty values win")
    check_eq(len(subs(d2, "news")), 2, "duplicates: one subscription each")
    # the local part keeps its case (RFC 5321): another address
    imp(d2, write("dups2.csv", "email,name\nZ@x.org,Big Z\n"))
    check_eq(len(contacts(d2)), 3, "the local part's case is kept")


# ---- unsubscribed, suppressed, consent ----

def consent_case():
    data = new_data("consent", lists=["news"])
    f = write("people.csv", "email,name\nu1@x.org,U1\nu2@x.org,U2\n"
              "u3@x.org,U3\n")
    imp(data, f, "--list", "news")
    check_eq(subs(data, "news"), {"u1@x.org": "subscribed",
                                  "u2@x.org": "subscribed",
                                  "u3@x.org": "subscribed"},
             "consent: all subscribed at first")
    c = sqlite3.connect(os.path.join(data, "herald.db"), timeout=30)
    c.execute("UPDATE subscriptions SET status = 'unsubscribed' WHERE "
              "contact_id = (SELECT id FROM contacts WHERE email = 'u1@x.org')")
    c.commit()
    c.close()
    imp(data, write("supp.csv", "email,reason\nu2@x.org,complaint\n"
                    "new@x.org,manual\n"), "--format", "suppressions")
    check_eq(sorted(q(data, "SELECT email, reason FROM suppressions")),
             [("new@x.org", "manual"), ("u2@x.org", "complaint")],
             "suppressions imported")
    # u2 removed from the list too, as if it never was subscribed
    c = sqlite3.connect(os.path.join(data, "herald.db"), timeout=30)
    c.execute("DELETE FROM subscriptions WHERE contact_id = (SELECT id FROM "
              "contacts WHERE email = 'u2@x.org')")
    c.commit()
    c.close()
    f2 = write("people2.csv", "email,name\nu1@x.org,U1\nu2@x.org,U2\n"
               "u3@x.org,U3\nnew@x.org,New\n")
    imp(data, f2, "--list", "news", "--mode", "upsert")
    s = subs(data, "news")
    check_eq(s.get("u1@x.org"), "unsubscribed",
             "re-import: the unsubscribed stays unsubscribed")
    check(s.get("u2@x.org") != "subscribed" and
          s.get("new@x.org") != "subscribed",
          "re-import: the suppressed are not subscribed", s)
    check_eq(s.get("u3@x.org"), "subscribed", "re-import: u3 subscribed")
    j = last_job(data)
    check(j["skipped"] >= 2, "re-import: the suppressed counted skipped", j)
    imp(data, f, "--list", "news", "--mode", "upsert", "--consent",
        "re-optin form")
    s = subs(data, "news")
    check_eq(s.get("u1@x.org"), "subscribed",
             "--consent: the unsubscribed subscribed again")
    src = q(data, "SELECT s.consent_source FROM subscriptions s JOIN "
            "contacts c ON c.id = s.contact_id WHERE c.email = 'u1@x.org'")
    check_eq(src, [("re-optin form",)], "--consent: the source recorded")


# ---- JSON Lines ----

def jsonl_case():
    data = new_data("jsonl", lists=["a", "b"],
                    fields=[("city", "text", None), ("age", "number", None),
                            ("vip", "boolean", None),
                            ("plan", "one_of", "free,pro")])
    recs = [{"email": "j%d@x.org" % i, "name": "J %d \u00e9\"q\"" % i,
             "attribs": {"city": "C%d" % i, "age": i, "vip": i % 2 == 0,
                         "plan": "pro" if i % 3 else "free"}}
            for i in range(50)]
    recs[7]["attribs"] = {}
    imp(data, write("in.jsonl", "".join(json.dumps(r) + "\n"
                                        for r in recs)),
        "--list", "a", "--format", "jsonl")
    c = contacts(data)
    want = {r["email"]: (r["name"], r["attribs"]) for r in recs}
    check_eq(c, want, "jsonl: contacts, names and attribs as in the file")
    p = herald(data, "export", "--account", "acme", "--list", "a",
               "--format", "jsonl")
    out = [json.loads(x) for x in p.stdout.splitlines() if x.strip()]
    check_eq(len(out), 50, "jsonl: 50 records exported")
    path = write("out.jsonl", p.stdout)
    d2 = new_data("jsonl2", lists=["b"],
                  fields=[("city", "text", None), ("age", "number", None),
                          ("vip", "boolean", None),
                          ("plan", "one_of", "free,pro")])
    imp(d2, path, "--list", "b")
    check_eq(contacts(d2), want,
             "jsonl: exported and imported into another list: the same")
    check_eq(len(subs(d2, "b")), 50, "jsonl: all in the other list")


# ---- encodings ----

def encoding_case():
    data = new_data("enc")
    imp(data, write("latin1.csv", "email,name\r\nr@x.org,Ren\u00e9 "
                    "M\u00fcller\r\ns@x.org,\u0152uvre \u20ac\r\n"
                    .encode("cp1252")))
    c = contacts(data)
    check_eq(c["r@x.org"][0], "Ren\u00e9 M\u00fcller",
             "cp1252 CSV: é and ü read")
    check_eq(c["s@x.org"][0], "\u0152uvre \u20ac",
             "cp1252 CSV: Œ and € (0x8C, 0x80) read as cp1252")
    imp(data, write("semi.csv", b"\xef\xbb\xbfemail;name;x\r\n"
                    + "t@x.org;Tom \u00c5ngstr\u00f6m;1,2\r\n"
                    "v@x.org;\"Vi; Vo\";3\r\n".encode()))
    c = contacts(data)
    check_eq((c["t@x.org"][0], c["v@x.org"][0]),
             ("Tom \u00c5ngstr\u00f6m", "Vi; Vo"),
             "';' CSV with BOM and CRLF: names read")
    check_eq(len(c), 4, "encodings: 4 contacts, no stray ones")


def delimiter_case():
    """--delimiter: each one import.h accepts, on a file that uses it."""
    for i, d in enumerate((",", ";", "\t", "|")):
        data = new_data("delim%d" % i)
        text = "mail{0}who{0}x\nd{1}@x.org{0}D {1}{0}1\n".format(d, i)
        p = imp(data, write("delim%d.txt" % i, text), "--delimiter", d,
                "--map", "mail=email", "--map", "who=name", ok=False)
        check_eq((p.returncode, contacts(data)),
                 (0, {"d%d@x.org" % i: ("D %d" % i, {})}),
                 "--delimiter %r: the file read with it" % d)


# ---- resume, stop, cancel ----

def gen_rows(path, n, bad_every=0):
    with open(path, "w") as f:
        f.write("email,name\n")
        for i in range(n):
            if bad_every and i % bad_every == 0:
                f.write("nope%d,Bad\n" % i)
            else:
                f.write("r%d@resume.example,R %d\n" % (i, i))
    return n - (len(range(0, n, bad_every)) if bad_every else 0)


def start_import(data, path, *args):
    return subprocess.Popen(
        [HERALD, "--data", data, "--set", "import.batch_rows=1000", "import",
         path, "--account", "acme"] + list(args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_progress(data, proc, timeout=60):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            r = q(data, "SELECT id, rows_done FROM import_jobs "
                  "ORDER BY id DESC LIMIT 1")
        except sqlite3.OperationalError:
            r = []
        if r and r[0][1] > 0:
            return r[0][0], r[0][1]
        if proc.poll() is not None:
            raise AssertionError("the import ended before it could be "
                                 "stopped: %r" % (proc.communicate(),))
        time.sleep(0.002)
    raise AssertionError("no progress in %d s" % timeout)


def resume_case():
    n = 200000
    path = os.path.join(TMP, "resume.csv")
    valid = gen_rows(path, n, bad_every=500)
    data = new_data("resume", lists=["news"])
    p = start_import(data, path, "--list", "news")
    jid, done = wait_progress(data, p)
    p.kill()
    p.wait()
    j = job(data, jid)
    check(j["state"] == "running" and 0 < j["rows_done"] < n,
          "kill -9 after %d rows: the job is still running" % done, j)
    check_eq(len(contacts(data)) + len(job_errors(data, jid)),
             j["rows_done"], "kill -9: the committed rows are the rows done")
    r = herald(data, "import", "--resume", str(jid), timeout=240)
    j = job(data, jid)
    check_eq((j["state"], j["rows_done"], j["created"], j["errors"]),
             ("done", n, valid, n - valid),
             "--resume after kill -9: done, every row once")
    check_eq(q(data, "SELECT count(*), count(DISTINCT email) FROM contacts"),
             [(valid, valid)], "--resume: contacts == valid rows, no "
             "duplicates")
    check_eq(q(data, "SELECT count(*) FROM subscriptions")[0][0], valid,
             "--resume: every valid row subscribed once")
    check_eq(len(job_errors(data, jid)), n - valid,
             "--resume: each bad row reported once")
    check("done" in r.stdout, "--resume prints the summary", r.stdout)

    # SIGTERM: graceful stop after the batch, then --resume
    d2 = new_data("sigterm", lists=["news"])
    p = start_import(d2, path, "--list", "news")
    jid, _ = wait_progress(d2, p)
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=60)
    j = job(d2, jid)
    check(p.returncode == 1 and b"--resume %d" % jid in out,
          "SIGTERM: stops, exit 1, says how to resume",
          (p.returncode, out, err))
    check(j["state"] == "running" and j["rows_done"] % 1000 == 0
          and 0 < j["rows_done"] < n,
          "SIGTERM: stopped at a batch boundary, job still running", j)
    check_eq(len(contacts(d2)) + len(job_errors(d2, jid)), j["rows_done"],
             "SIGTERM: the rows done are committed")
    herald(d2, "import", "--resume", str(jid), timeout=240)
    j = job(d2, jid)
    check_eq((j["state"], j["created"], j["errors"]),
             ("done", valid, n - valid), "SIGTERM then --resume: done")
    check_eq(q(d2, "SELECT count(*), count(DISTINCT email) FROM contacts"),
             [(valid, valid)], "SIGTERM then --resume: no duplicates")

    # --cancel of a stopped job
    d3 = new_data("cancel", lists=["news"])
    p = start_import(d3, path, "--list", "news")
    jid, _ = wait_progress(d3, p)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=60)
    r = herald(d3, "import", "--cancel", str(jid))
    check_eq(job(d3, jid)["state"], "cancelled",
             "--cancel on a stopped job: cancelled")
    r = herald(d3, "import", "--resume", str(jid), ok=False)
    check(r.returncode != 0, "--resume of a cancelled job refused",
          r.stdout + r.stderr)


# ---- bounded input ----

def bounded_case():
    data = new_data("bounded", fields=[("city", "text", None)])
    path = os.path.join(TMP, "huge-line.csv")
    with open(path, "wb") as f:
        f.write(b"email\n")
        chunk = b"a" * (1 << 20)
        for _ in range(64):
            f.write(chunk)
        f.write(b"\nok@x.org\n")
    p = imp(data, path, ok=False, timeout=120)
    j = last_job(data)
    errs = job_errors(data, j["id"])
    check(p.returncode in (0, 1) and [ln for ln, _ in errs] == [2],
          "a 64 MiB line: a bad row at line 2, no crash",
          (p.returncode, errs, p.stderr[-500:]))
    check("ok@x.org" in contacts(data), "a 64 MiB line: the next row read",
          j)
    os.unlink(path)

    p = imp(data, write("big-field.csv", "email,name\nb@x.org,"
                        + "n" * (2 << 20) + "\nz@x.org,Z\n"), ok=False)
    j = last_job(data)
    errs = job_errors(data, j["id"])
    check([ln for ln, _ in errs] == [2] and "z@x.org" in contacts(data)
          and "b@x.org" not in contacts(data),
          "a 2 MB field: a bad row at line 2, the next row read",
          (p.returncode, errs, p.stderr[-500:]))

    p = imp(data, write("empty.csv", b""), ok=False)
    check(p.returncode in (0, 1), "an empty file: no crash (exit %d: %s)"
          % (p.returncode, (p.stdout + p.stderr).strip()))
    p = imp(data, write("header.csv", "email,name,city\r\n"), ok=False)
    j = last_job(data)
    check(p.returncode == 0 and (j["state"], j["rows_done"], j["created"])
          == ("done", 0, 0), "a header only: done, no rows",
          (p.returncode, j, p.stderr))
    n0 = len(contacts(data))
    rnd = random.Random(42)
    p = imp(data, write("random.bin", bytes(rnd.randrange(256)
                                            for _ in range(1 << 20))),
            ok=False)
    j = last_job(data)
    check(p.returncode in (0, 1) and len(contacts(data)) == n0,
          "random bytes: no crash, no contact (exit %d, %s, %d errors)"
          % (p.returncode, j["state"], j["errors"]))
    check(j["errors"] > 0 or j["state"] == "failed" or p.returncode == 1,
          "random bytes: reported as errors", (j, p.stderr[-300:]))
    p = imp(data, write("random.vcf", bytes(rnd.randrange(256)
                                            for _ in range(1 << 20))),
            "--format", "vcard", ok=False)
    check(p.returncode in (0, 1), "random bytes as vCard: no crash")
    p = imp(data, write("random.jsonl", bytes(rnd.randrange(256)
                                              for _ in range(1 << 20))),
            "--format", "jsonl", ok=False)
    check(p.returncode in (0, 1), "random bytes as JSON Lines: no crash")
    check_eq(len(contacts(data)), n0, "random bytes: no contact made")


# ---- memory ----

def sanitized():
    """Whether HERALD is an AddressSanitizer build."""
    p = subprocess.run(["ldd", HERALD], stdout=subprocess.PIPE, text=True)
    return "libasan" in p.stdout


def memory_case():
    n = 1000000
    data = new_data("memory", lists=["news"])
    path = os.path.join(TMP, "million.csv")
    with open(path, "w") as f:
        f.write("email,name\n")
        f.writelines("m%d@mem.example,M %d\n" % (i, i) for i in range(n))
    t0 = time.monotonic()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", HERALD, "--data", data,
                        "import", path, "--account", "acme", "--list",
                        "news"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=120)
    t = time.monotonic() - t0
    check_eq(p.returncode, 0, "1,000,000 rows imported")
    kb = int(p.stderr.strip().splitlines()[-1])
    if sanitized():
        # AddressSanitizer's shadow memory and quarantine are not ours
        print("# 1,000,000 rows: peak RSS %.1f MB under AddressSanitizer "
              "(%.1f s), not checked" % (kb / 1024, t))
    else:
        check(kb < 64 * 1024, "1,000,000 rows: peak RSS %.1f MB < 64 MB "
              "(%.1f s)" % (kb / 1024, t))
    check_eq(q(data, "SELECT count(*) FROM contacts")[0][0], n,
             "1,000,000 contacts in the store")
    os.unlink(path)


def main():
    global TMP
    check(HERALD and os.access(HERALD, os.X_OK), "HERALD names the binary",
          HERALD)
    TMP = tempfile.mkdtemp(prefix="herald-import-")
    only = os.environ.get("IMPORT_CASES", "").split(",")
    failed = []
    try:
        data_root = tcf.fetch()
        cases = [("horde", lambda: horde_case(data_root)),
                 ("vcard", lambda: vcard_case(data_root)),
                 ("spectrum", lambda: spectrum_case(data_root)),
                 ("typed", typed_case), ("modes", modes_case),
                 ("consent", consent_case), ("jsonl", jsonl_case),
                 ("encoding", encoding_case),
                 ("delimiter", delimiter_case), ("resume", resume_case),
                 ("bounded", bounded_case), ("memory", memory_case)]
        # Every case runs; the failures are listed at the end.
        for name, fn in cases:
            if only != [""] and name not in only:
                continue
            print("# case %s" % name)
            try:
                fn()
            except Exception:               # noqa: BLE001
                traceback.print_exc()
                print("not ok - case %s" % name)
                failed.append(name)
    finally:
        if os.environ.get("KEEP"):
            print("# kept " + TMP)
        else:
            shutil.rmtree(TMP, ignore_errors=True)
    check(not failed, "every case passed", failed)


if __name__ == "__main__":
    harness.run(main)
