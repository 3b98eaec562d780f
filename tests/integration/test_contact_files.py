#!/usr/bin/python3
"""test_contact_files - the contact import readers (src/contacts/csvin.c,
vcard.c) against files other people wrote, fetched by
tests/data/fetch-contacts and never kept in the repository:

  - npm's csv-spectrum: each CSV edge case, read by csvin, turned into
    objects (header -> value) and compared with the package's JSON;
  - the address book exports shipped as examples in Debian's
    php-horde-data (Gmail, KMail, Outlook, Palm, Thunderbird, Windows
    Address Book, Yahoo): the e-mail and name columns csvin_map_guess
    finds, the addresses read, and every record compared with Python's
    csv module;
  - the vCards of Debian's php-horde-turba (docs) and
    evolution-data-server-tests: each card's FN, N and EMAIL compared with
    a small independent reader written here, and the number of EMAIL
    lines after unfolding.

Every file is also read fed one byte at a time, which must give the same
output.  When fetching fails the test fails: it is never skipped.

Run: CONTACTS_DUMP=build/tests/tools/contacts-dump \\
       /usr/bin/python3 tests/integration/test_contact_files.py
(HERALD_TEST_DATA names the cache directory; fetch-contacts' default
otherwise.)
"""
import csv
import glob
import io
import json
import os
import quopri
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
FETCH = os.path.join(HERE, "..", "data", "fetch-contacts")
DUMP = os.environ.get("CONTACTS_DUMP", "")

ADDRESS = re.compile(r"^[^@\s\"<>,;]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")

# csv-spectrum errata: cases whose expected JSON does not say what the CSV
# says.  location_coordinates.json has "1234567890" for the phone number
# the CSV holds as "2095257564" (upstream max-mapper/csv-spectrum issue
# #20), and it is a bare object instead of a list of one.  The correction
# is applied only while the JSON still holds the wrong value, so a fixed
# package makes this entry fail as stale rather than pass silently.
SPECTRUM_ERRATA = {
    ("location_coordinates", 0, "Contact Phone Number"):
        ("1234567890", "2095257564"),
}

# Horde's example exports: the header csvin_map_guess should pick for the
# e-mail, first, last and full name columns.  None for a file without a
# header line (Palm and old Thunderbird exports have none): the guess must
# then find nothing, and the address column is located by content.
HORDE_EXPECTED = {
    "Gmail.csv": ("E-mail", None, None, "Name"),
    "KMail.csv": ("Email Address", "Given Name", "Family Name", "Formatted Name"),
    "Outlook.csv": ("E-mail Address", "First Name", "Last Name", None),
    "Palm.csv": None,
    "Thunderbird.csv": None,
    "WAB-selectable.csv": ("E-mail Address", "First Name", "Last Name",
                           "Name"),
    "WAB.csv": ("E-mail Address", "First Name", "Last Name", "Name"),
    "Yahoo.csv": ("Email", "First", "Last", None),
}
MAP_KEYS = ("email", "first_name", "last_name", "full_name")


def fetch():
    """Run fetch-contacts; its output is the data directory."""
    args = [FETCH]
    if os.environ.get("HERALD_TEST_DATA"):
        args.append(os.environ["HERALD_TEST_DATA"])
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=240, check=False)
    sys.stdout.write(p.stderr)
    check(p.returncode == 0, "fetch-contacts fetched the test data",
          lambda: "exit %d: %s" % (p.returncode, p.stderr.strip()))
    d = p.stdout.strip().splitlines()[-1]
    check(os.path.isdir(d), "fetch-contacts printed its directory " + d)
    return d


def dump(mode, path, chunk=None):
    """contacts-dump's records for path, as a list of dicts; checks its
    exit status (0, or 1 when allow_error) and that the last is "end"."""
    args = [DUMP]
    if chunk:
        args += ["-c", str(chunk)]
    args += [mode, path]
    p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, check=False)
    if p.returncode not in (0, 1):
        raise AssertionError("contacts-dump %s %s: exit %d (%s)"
                             % (mode, path, p.returncode,
                                p.stderr.decode(errors="replace")))
    out = [json.loads(line) for line in p.stdout.decode().splitlines()]
    if not out or not out[-1].get("end"):
        raise AssertionError("contacts-dump %s %s: no end record" % (mode, path))
    return out, p.returncode


def dump_checked(mode, path, name):
    """dump() twice, in 4 KiB chunks and byte by byte: same output."""
    out, rc = dump(mode, path)
    out1, rc1 = dump(mode, path, chunk=1)
    check_eq((out1, rc1), (out, rc), "%s: same result fed byte by byte" % name)
    return out, rc


# ---- csv-spectrum ----

def spectrum(data):
    d = os.path.join(data, "csv-spectrum", "package")
    csvs = sorted(glob.glob(os.path.join(d, "csvs", "*.csv")))
    check(len(csvs) >= 10, "csv-spectrum has its cases (%d)" % len(csvs))
    used_errata = set()
    failures = []
    for path in csvs:
        name = os.path.basename(path)[:-4]
        with open(os.path.join(d, "json", name + ".json"), encoding="utf-8") as f:
            want = json.load(f)
        if isinstance(want, dict):
            want = [want]
        for (case, i, key), (wrong, right) in SPECTRUM_ERRATA.items():
            if case == name:
                check_eq(want[i][key], wrong,
                         "csv-spectrum erratum %s[%d][%r] still present"
                         % (case, i, key))
                want[i][key] = right
                used_errata.add(case)
        out, rc = dump_checked("csv", path, "csv-spectrum " + name)
        check_eq((rc, out[-1]["error"]), (0, None),
                 "csv-spectrum %s: read without error" % name)
        auto, _ = dump("auto", path)
        check_eq(auto, out, "csv-spectrum %s: the same with the delimiter "
                 "detected" % name)
        recs = [r for r in out if "fields" in r or "skipped" in r]
        skipped = [r for r in recs if "skipped" in r]
        if skipped:
            failures.append("%s: skipped %r" % (name, skipped))
            continue
        header, rows = recs[0]["fields"], recs[1:]
        got = []
        for r in rows:
            if len(r["fields"]) != len(header):
                failures.append("%s line %d: %d fields for %d columns"
                                % (name, r["line"], len(r["fields"]),
                                   len(header)))
            got.append(dict(zip(header, r["fields"])))
        if got != want:
            failures.append("%s:\n  got:  %r\n  want: %r" % (name, got, want))
        else:
            print("ok - csv-spectrum %s: %d records as expected"
                  % (name, len(got)))
    check_eq(used_errata, {k[0] for k in SPECTRUM_ERRATA},
             "csv-spectrum: every erratum applied to its case")
    check(not failures, "csv-spectrum: all %d cases as expected" % len(csvs),
          lambda: "\n".join(failures))


# ---- Horde's exports ----

def python_csv(path):
    """The records of path by Python's csv module, fields trimmed of spaces
    as csvin trims unquoted ones (none of these files quotes any)."""
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp1252")
    return [[x.strip(" \t") for x in row]
            for row in csv.reader(io.StringIO(text, newline="")) if row]


def horde(data):
    d = os.path.join(data, "php-horde-data")
    paths = sorted(glob.glob(os.path.join(d, "**", "*.csv"), recursive=True))
    names = [os.path.basename(p) for p in paths]
    print("# Horde CSV files: " + ", ".join(
        os.path.relpath(p, d) for p in paths))
    check(len(paths) > 0, "php-horde-data holds CSV exports (%d)" % len(paths))
    for n in HORDE_EXPECTED:
        check(n in names, "php-horde-data has %s" % n)
    table = []
    for path in paths:
        name = os.path.basename(path)
        out, rc = dump_checked("auto", path, name)
        check_eq((rc, out[-1]["error"], out[-1]["delim"]), (0, None, ","),
                 "%s: read without error, delimiter ','" % name)
        head = [r for r in out if "header" in r]
        check_eq(len(head), 1, "%s: one header record" % name)
        head = head[0]
        recs = [r["fields"] for r in out if "fields" in r]
        check(not any("skipped" in r for r in out),
              "%s: no record skipped" % name)
        check_eq(recs, python_csv(path),
                 "%s: every record as Python's csv module reads it" % name)
        m = head["map"]
        cols = {k: (head["header"][m[k]] if m[k] is not None else None)
                for k in MAP_KEYS}
        want = HORDE_EXPECTED.get(name, "unknown")
        if want is None:
            # No header line: nothing to guess from; the first record is data.
            check_eq((head["guessed"], m["email"]), (False, None),
                     "%s: no header line, so no e-mail column guessed" % name)
            rows = recs
            ecol = [i for i in range(len(rows[0]))
                    if all(i < len(r) and ADDRESS.match(r[i]) for r in rows)]
            check(len(ecol) >= 1, "%s: an address column found by content"
                  % name, rows)
            ecol = ecol[0]
            how = "column %d (no header)" % ecol
        else:
            check(head["guessed"], "%s: the e-mail column guessed" % name,
                  head["header"])
            if want != "unknown":
                check_eq(tuple(cols[k] for k in MAP_KEYS), want,
                         "%s: e-mail, first, last, full name columns" % name)
            check(any(cols[k] for k in MAP_KEYS[1:]),
                  "%s: a name column mapped" % name, cols)
            rows = recs[1:]
            ecol = m["email"]
            how = "%r (column %d)" % (cols["email"], ecol)
        emails = [r[ecol] for r in rows if ecol < len(r) and r[ecol]]
        check(len(emails) > 0 and all(ADDRESS.match(e) for e in emails),
              "%s: %d plausible addresses read" % (name, len(emails)), emails)

        def val(r, k):
            return r[m[k]] if m[k] is not None and m[k] < len(r) else ""
        names_read = [" ".join(x for x in (val(r, "first_name"),
                                           val(r, "last_name")) if x)
                      or val(r, "full_name") for r in rows]
        if want is not None:
            check(all(names_read), "%s: every record has a name" % name,
                  names_read)
        table.append((name, len(rows), how,
                      ", ".join("%s=%r" % (k, cols[k]) for k in MAP_KEYS[1:]
                                if cols[k]) or "-",
                      "; ".join("%s <%s>" % (n, e) if n else e
                                for n, e in zip(names_read, emails))))
    print("# %-19s %4s  %-28s %-62s %s" % ("file", "recs", "e-mail column",
                                           "name columns", "read"))
    for row in table:
        print("# %-19s %4d  %-28s %-62s %s" % row)


# ---- vCards ----

def vcard_text(raw):
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def split_prop(line):
    """(group-less upper-case name, [params], value) of an unfolded line,
    or None.  The value starts after the first ':' outside quotes."""
    q = False
    for i, c in enumerate(line):
        if c == '"':
            q = not q
        elif c == ":" and not q:
            head, value = line[:i], line[i + 1:]
            parts = head.split(";")
            name = parts[0].strip().split(".")[-1].upper()
            return name, [p.strip() for p in parts[1:]], value
    return None


def is_qp(params):
    return any(p.upper() in ("QUOTED-PRINTABLE", "ENCODING=QUOTED-PRINTABLE")
               for p in params)


def unfold(text):
    """[(line number, unfolded line)]: a line starting with a space or tab
    continues the previous one; in a quoted-printable property a "=" at
    the end of a line does too."""
    out = []
    qp_open = False
    for n, line in enumerate(text.split("\n"), 1):
        line = line.replace("\r", "")
        if out and (line[:1] in (" ", "\t") or qp_open):
            ln, prev = out[-1]
            out[-1] = (ln, (prev[:-1] + line) if qp_open else prev + line[1:])
        else:
            out.append((n, line))
        p = split_prop(out[-1][1])
        qp_open = bool(p and is_qp(p[1]) and out[-1][1].endswith("="))
    return out


def unescape(s):
    return re.sub(r"\\([nN,;:\\])",
                  lambda m: "\n" if m.group(1) in "nN" else m.group(1), s)


def decode(params, value):
    if not is_qp(params):
        return value
    raw = quopri.decodestring(value.encode("latin-1", errors="replace"))
    charset = "utf-8"
    for p in params:
        if p.upper().startswith("CHARSET="):
            charset = p.split("=", 1)[1]
    try:
        return raw.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return raw.decode("latin-1")


def py_vcards(raw):
    """The cards of a file by this independent reader: [{line, fn, family,
    given, emails}] and the number of EMAIL lines after unfolding."""
    cards, card, nemail = [], None, 0
    for n, line in unfold(vcard_text(raw)):
        p = split_prop(line)
        if p is None:
            continue
        name, params, value = p
        value = value.strip()
        if name == "EMAIL":
            nemail += 1
        if name == "BEGIN" and value.upper() == "VCARD":
            card = {"line": n, "fn": None, "family": None, "given": None,
                    "emails": []}
        elif card is None:
            continue
        elif name == "END" and value.upper() == "VCARD":
            cards.append(card)
            card = None
        elif name == "FN" and card["fn"] is None:
            card["fn"] = unescape(decode(params, value)).strip() or None
        elif name == "N" and card["family"] is None and card["given"] is None:
            # An empty component is no component (vcard.h gives NULL).
            comps = re.split(r"(?<!\\);", decode(params, value))
            card["family"] = unescape(comps[0]).strip() or None
            card["given"] = (unescape(comps[1]).strip() or None
                             if len(comps) > 1 else None)
        elif name == "EMAIL":
            card["emails"].append(unescape(decode(params, value)).strip())
    return cards, nemail


def vcards(data):
    files = []
    for pkg in ("php-horde-turba", "evolution-data-server-tests"):
        d = os.path.join(data, pkg)
        found = sorted(glob.glob(os.path.join(d, "**", "*.vcf"),
                                 recursive=True))
        dirs = sorted({os.path.relpath(os.path.dirname(p), d) for p in found})
        print("# %s: %d .vcf files in %s" % (pkg, len(found), ", ".join(dirs)))
        check(len(found) > 0, "%s holds .vcf files" % pkg)
        files += [(pkg, p) for p in found]
    total = {"cards": 0, "emails": 0, "errors": 0}
    for pkg, path in files:
        name = "%s %s" % (pkg, os.path.basename(path))
        with open(path, "rb") as f:
            raw = f.read()
        out, rc = dump_checked("vcard", path, name)
        check_eq(rc, 0, "%s: read to the end" % name)
        got = [r for r in out if "end" not in r]
        errors = [r for r in got if "error" in r]
        for e in errors:
            print("# %s: card at line %d skipped: %s"
                  % (name, e["line"], e["error"]))
            check(re.match(r"^line \d+: ", e["error"]) is not None,
                  "%s: the error names its line" % name, e)
        want, nemail = py_vcards(raw)
        ok = [r for r in got if "error" not in r]
        check_eq(out[-1]["cards"], len(ok), "%s: cards counted" % name)
        err_lines = {e["line"] for e in errors}
        want_ok = [c for c in want if c["line"] not in err_lines]
        check_eq([{k: r[k] for k in ("line", "fn", "family", "given",
                                     "emails")} for r in ok], want_ok,
                 "%s: %d cards, FN, N and EMAIL as read independently"
                 % (name, len(ok)))
        if not errors:
            check_eq(sum(len(r["emails"]) for r in ok), nemail,
                     "%s: as many addresses as EMAIL lines (%d)"
                     % (name, nemail))
        for r in ok:
            for e in r["emails"]:
                check(ADDRESS.match(e) is not None,
                      "%s line %d: %r is an address" % (name, r["line"], e))
        total["cards"] += len(ok)
        total["emails"] += sum(len(r["emails"]) for r in ok)
        total["errors"] += len(errors)
    print("# vCards: %d files, %d cards, %d addresses, %d cards skipped"
          % (len(files), total["cards"], total["emails"], total["errors"]))
    check(total["emails"] > 0, "vCards: addresses read")


def main():
    check(DUMP and os.access(DUMP, os.X_OK),
          "CONTACTS_DUMP names the contacts-dump tool", DUMP)
    data = fetch()
    spectrum(data)
    horde(data)
    vcards(data)


if __name__ == "__main__":
    harness.run(main)
