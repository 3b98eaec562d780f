"""test_api_imports - the REST API's database sources, imports, exports and
accounts routes, driven with the real curl against a real `herald serve`,
with a real PostgreSQL cluster for the database source.

Covered: multipart and raw uploads polled to the end (counters, kept bad
rows), cancel, 413 over http.max_upload, streamed CSV and JSONL exports
checked row by row, a JSONL export imported back, the wall between
accounts on every route with an id, the admin /accounts routes and their
scope, a PostgreSQL source whose password never shows (API or database
file), and an import resumed exactly once after a SIGTERM mid-run.
"""
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
import harness                                  # noqa: E402
from harness import check, check_eq             # noqa: E402

API = "/api/v1"
PGBIN = "/usr/lib/postgresql/15/bin"
PG_PASSWORD = "Zq9-s3cr3t-Pw-x7Kd"


class Client:
    """curl with one key (and maybe a Herald-Account header)."""

    def __init__(self, h, key, account=None):
        self.base = "http://127.0.0.1:%d" % h.http_port
        self.key = key
        self.account = account
        self.tmp = h.dir

    def call(self, method, path, json_body=None, extra=()):
        out = os.path.join(self.tmp, "curl.out")
        args = ["curl", "-sS", "--max-time", "120", "-o", out, "-w", "%{http_code}",
                "-X", method, "-H", "Authorization: Bearer " + self.key]
        if self.account is not None:
            args += ["-H", "Herald-Account: %s" % self.account]
        if json_body is not None:
            args += ["-H", "Content-Type: application/json",
                     "--data-binary", json.dumps(json_body)]
        args += list(extra) + [self.base + API + path]
        p = subprocess.run(args, capture_output=True, timeout=150)
        if p.returncode != 0:
            raise RuntimeError("curl %s %s: %s" % (method, path, p.stderr))
        body = open(out, "rb").read()
        status = int(p.stdout.decode())
        try:
            doc = json.loads(body) if body else None
        except ValueError:
            doc = None
        return status, doc, body

    def get(self, path):
        return self.call("GET", path)

    def post(self, path, body=None, extra=()):
        return self.call("POST", path, body, extra)


def write_csv(path, rows, bad=()):
    with open(path, "w") as f:
        f.write("email,name\n")
        for i in range(rows):
            f.write("user%d@example.com,User %d\n" % (i, i))
        for b in bad:
            f.write("%s,Bad\n" % b)


def wait_import(c, jid, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, doc, _ = c.get("/imports/%d" % jid)
        assert st == 200, (st, doc)
        if doc["state"] in ("done", "failed", "cancelled"):
            return doc
        time.sleep(0.1)
    raise AssertionError("import %d did not end: %r" % (jid, doc))


def export_rows(c, query):
    st, _, body = c.get("/exports/contacts?" + query)
    assert st == 200, (st, body[:300])
    return body


def csv_emails(body):
    rows = list(csv.reader(io.StringIO(body.decode())))
    return rows[0], [r[0] for r in rows[1:]]


def error_of(doc):
    return (doc or {}).get("error", {})


# ---------------------------------------------------------------- accounts

def test_accounts(h, op, acme):
    st, doc, _ = op.get("/accounts")
    check_eq(st, 200, "GET /accounts with an operator key: 200")
    names = [a["name"] for a in doc["data"]]
    check("acme" in names and "other" in names, "GET /accounts lists acme and other")
    st, doc, _ = op.post("/accounts", {"name": "temp"})
    check_eq(st, 201, "POST /accounts: 201")
    tid = doc["id"]
    check(doc["name"] == "temp" and doc["disabled"] is False and doc["created_at"],
          "POST /accounts: the Account", doc)
    st, doc, _ = op.post("/accounts", {"name": "temp"})
    check_eq((st, error_of(doc).get("code")), (409, "conflict"),
             "POST /accounts with a taken name: 409 conflict")
    st, doc, _ = op.post("/accounts", {"name": "bad name!"})
    check_eq((st, error_of(doc).get("code")), (400, "invalid"),
             "POST /accounts with a bad name: 400 invalid")
    st, doc, _ = op.get("/accounts/%d" % tid)
    check_eq((st, doc["name"]), (200, "temp"), "GET /accounts/{id}")
    st, doc, _ = op.call("PATCH", "/accounts/%d" % tid, {"disabled": True})
    check_eq((st, doc["disabled"]), (200, True), "PATCH /accounts/{id} disabled=true")
    st, doc, _ = op.call("PATCH", "/accounts/%d" % tid, {"disabled": "yes"})
    check_eq((st, error_of(doc).get("field")), (400, "disabled"),
             "PATCH with a non-boolean disabled: 400 field disabled")
    st, doc, _ = op.call("PATCH", "/accounts/%d" % tid, {"disabled": False})
    check_eq((st, doc["disabled"]), (200, False), "PATCH /accounts/{id} disabled=false")
    st, doc, _ = op.post("/accounts/%d/users" % tid,
                         {"email": "ann@example.com", "password": "pw-123456", "role": "owner"})
    check_eq(st, 201, "POST /accounts/{id}/users: 201")
    check(doc["email"] == "ann@example.com" and doc["role"] == "owner" and doc["id"] > 0,
          "POST users: {id, email, role}", doc)
    st, doc, _ = op.post("/accounts/%d/users" % tid,
                         {"email": "ann@example.com", "password": "x", "role": "owner"})
    check_eq(st, 409, "POST users with a taken email: 409")
    st, doc, _ = op.post("/accounts/%d/users" % tid,
                         {"email": "bob@example.com", "password": "pw-654321", "role": "member"})
    check_eq(st, 201, "POST a second user: 201")
    bob = doc["id"]
    st, doc, body = op.get("/accounts/%d/users" % tid)
    check_eq(st, 200, "GET /accounts/{id}/users: 200")
    check_eq([(u["email"], u["role"]) for u in doc["data"]],
             [("ann@example.com", "owner"), ("bob@example.com", "member")],
             "GET users: both, by email")
    ann = doc["data"][0]["id"]
    check(all(sorted(u) == ["created_at", "email", "id", "role"] and u["created_at"]
              for u in doc["data"]), "GET users: {id, email, role, created_at}", doc)
    check(b"argon2" not in body and b"pw-123456" not in body and b"password" not in body,
          "GET users: no password or hash in the reply", body)
    # the wall: a user of another account is not found through this one
    oid = {a["name"]: a["id"] for a in op.get("/accounts")[1]["data"]}["other"]
    st, doc, _ = op.post("/accounts/%d/users" % oid,
                         {"email": "oli@example.com", "password": "pw-999999", "role": "owner"})
    check_eq(st, 201, "POST a user of another account: 201")
    oli = doc["id"]
    st, doc, _ = op.call("DELETE", "/accounts/%d/users/%d" % (tid, oli))
    check_eq((st, error_of(doc).get("code")), (404, "not_found"),
             "DELETE another account's user through this one: 404")
    st, doc, _ = op.get("/accounts/%d/users" % oid)
    check_eq([u["id"] for u in doc["data"]], [oli], "... and the user is still there")
    st, _, body = op.call("DELETE", "/accounts/%d/users/%d" % (tid, ann))
    check_eq((st, body), (204, b""), "DELETE /accounts/{id}/users/{user_id}: 204")
    st, doc, _ = op.call("DELETE", "/accounts/%d/users/%d" % (tid, ann))
    check_eq((st, error_of(doc).get("code")), (404, "not_found"),
             "DELETE the same user again: 404")
    st, doc, _ = op.get("/accounts/%d/users" % tid)
    check_eq([u["id"] for u in doc["data"]], [bob], "GET users after the delete: bob only")
    st, doc, _ = op.call("DELETE", "/accounts/%d/users/x" % tid)
    check_eq(st, 404, "DELETE users/x (not an id): 404")
    st, doc, _ = op.call("DELETE", "/accounts/%d/users/%d" % (oid, oli))
    check_eq(st, 204, "DELETE the other account's user through its own account: 204")
    st, doc, _ = op.post("/accounts/%d/keys" % tid, {"name": "k1", "scopes": ["read"]})
    check_eq(st, 201, "POST /accounts/{id}/keys: 201")
    check(doc["key"].startswith("hk_") and doc["scopes"] == ["read"] and doc["id"] > 0,
          "POST keys: {id, key, scopes}", doc)
    tkey = doc["key"]
    st, doc, _ = op.post("/accounts/%d/keys" % tid, {"scopes": ["admin"]})
    check_eq(st, 400, "POST keys with the admin scope for an account: 400")
    tc = Client(h, tkey)
    st, doc, _ = tc.get("/lists")
    check_eq((st, doc), (200, {"data": []}), "the new account's read key reads its lists")
    st, doc, _ = tc.post("/lists", {"name": "x"})
    check_eq(st, 403, "the read key cannot write: 403")
    st, doc, _ = op.post("/accounts/999999/users",
                         {"email": "b@example.com", "password": "pw", "role": "owner"})
    check_eq(st, 404, "POST users of no account: 404")
    st, doc, _ = op.post("/accounts/999999/keys", {})
    check_eq(st, 404, "POST keys of no account: 404")
    st, doc, _ = op.get("/accounts/999999/users")
    check_eq((st, error_of(doc).get("code")), (404, "not_found"), "GET users of no account: 404")
    st, doc, _ = op.call("DELETE", "/accounts/999999/users/%d" % bob)
    check_eq((st, error_of(doc).get("code")), (404, "not_found"),
             "DELETE a user of no account: 404")
    st, _, _ = op.call("DELETE", "/accounts/%d" % tid)
    check_eq(st, 204, "DELETE /accounts/{id}: 204")
    st, _, _ = op.get("/accounts/%d" % tid)
    check_eq(st, 404, "GET a deleted account: 404")
    st, _, _ = tc.get("/lists")
    check_eq(st, 401, "the deleted account's key is gone: 401")
    st, _, _ = op.call("PATCH", "/accounts/%d" % tid, {"disabled": True})
    check_eq(st, 404, "PATCH a deleted account: 404")
    st, _, _ = op.call("DELETE", "/accounts/%d" % tid)
    check_eq(st, 404, "DELETE a deleted account: 404")
    # scopes and the operator's account header
    for method, path in (("GET", "/accounts"), ("POST", "/accounts"),
                         ("GET", "/accounts/1"), ("PATCH", "/accounts/1"),
                         ("DELETE", "/accounts/1"), ("GET", "/accounts/1/users"),
                         ("POST", "/accounts/1/users"), ("DELETE", "/accounts/1/users/1"),
                         ("POST", "/accounts/1/keys")):
        st, doc, _ = acme.call(method, path, {} if method != "GET" else None)
        check_eq((st, error_of(doc).get("code")), (403, "forbidden"),
                 "an account key on %s %s: 403" % (method, path))
    st, doc, _ = op.get("/lists")
    check_eq((st, error_of(doc).get("code")), (400, "account_required"),
             "operator key without Herald-Account on /lists: 400 account_required")
    st, doc, _ = op.get("/imports")
    check_eq((st, error_of(doc).get("code")), (400, "account_required"),
             "operator key without Herald-Account on /imports: 400 account_required")


# ---------------------------------------------------------------- imports

def test_uploads(h, acme, lists):
    tmp = h.dir
    # multipart, with bad rows
    path = os.path.join(tmp, "x.csv")
    bad = ["not-an-address", "two@@example.com", "@example.com"]
    write_csv(path, 5000, bad)
    st, doc, _ = acme.post("/imports", extra=[
        "-F", "file=@%s" % path, "-F", "list=%d" % lists["main"],
        "-F", 'options={"mode":"upsert"}'])
    check_eq(st, 202, "multipart POST /imports: 202")
    check(doc["state"] in ("queued", "running", "done") and doc["format"] == "csv"
          and doc["list_id"] == lists["main"] and doc["bytes_total"] == os.path.getsize(path),
          "the 202 reply is the Import", doc)
    for k in ("id", "state", "format", "list_id", "rows_done", "created", "updated",
              "skipped", "errors", "bytes_done", "bytes_total", "rows_per_second",
              "error", "created_at", "started_at", "finished_at"):
        check(k in doc, "Import has %s" % k)
    job = wait_import(acme, doc["id"])
    check_eq((job["state"], job["rows_done"], job["created"], job["errors"]),
             ("done", 5003, 5000, 3), "multipart import done: 5003 rows, 5000 created, 3 errors")
    check(job["rows_per_second"] > 0 and job["bytes_done"] == job["bytes_total"]
          and job["finished_at"] and job["error"] is None,
          "done import: rate, bytes, finished_at", job)
    st, doc, _ = acme.get("/imports/%d/errors" % job["id"])
    check_eq(st, 200, "GET /imports/{id}/errors: 200")
    check_eq([e["line"] for e in doc["data"]], [5002, 5003, 5004],
             "the bad rows are listed with their lines")
    check(all(e["reason"] for e in doc["data"]), "each bad row has a reason", doc)
    st, doc, _ = acme.get("/imports/%d/errors?limit=2" % job["id"])
    check_eq(len(doc["data"]), 2, "errors ?limit=2 gives 2")
    left = [f for f in os.listdir(os.path.join(h.data, "imports"))]
    check_eq(left, [], "the uploaded file is deleted when the job ends")
    out = h.cli("export", "--account", "acme", "--list", "main")
    check_eq(len(out.strip().split("\n")) - 1, 5000, "herald export (CLI): 5000 contacts in main")
    jobs = {"multipart": job["id"]}

    # raw body, options in the query
    raw = os.path.join(tmp, "raw.csv")
    with open(raw, "w") as f:
        f.write("email,name\n")
        for i in range(100):
            f.write("raw%d@example.org,Raw %d\n" % (i, i))
    st, doc, _ = acme.post("/imports?list=%d&mode=upsert" % lists["copy"], extra=[
        "--data-binary", "@" + raw, "-H", "Content-Type: text/csv"])
    check_eq(st, 202, "raw text/csv POST /imports: 202")
    job = wait_import(acme, doc["id"])
    check_eq((job["state"], job["created"], job["list_id"]), ("done", 100, lists["copy"]),
             "raw import done: 100 created into copy")
    jobs["raw"] = job["id"]
    # octet-stream with ?format=
    st, doc, _ = acme.post("/imports?format=csv&list=%d" % lists["copy"], extra=[
        "--data-binary", "@" + raw, "-H", "Content-Type: application/octet-stream"])
    check_eq(st, 202, "application/octet-stream with ?format=csv: 202")
    job = wait_import(acme, doc["id"])
    check_eq((job["state"], job["created"], job["skipped"] + job["updated"]),
             ("done", 0, 100), "the same rows again (mode add): none created")

    # bad requests
    st, doc, _ = acme.post("/imports", extra=[
        "--data-binary", "@" + raw, "-H", "Content-Type: application/octet-stream"])
    check_eq((st, error_of(doc).get("field")), (400, "format"),
             "octet-stream without format: 400 field format")
    st, doc, _ = acme.post("/imports?format=xls", extra=[
        "--data-binary", "@" + raw, "-H", "Content-Type: application/octet-stream"])
    check_eq((st, error_of(doc).get("field")), (400, "format"), "format=xls: 400")
    st, doc, _ = acme.post("/imports", extra=[
        "-F", "file=@%s" % raw, "-F", 'options={"mode":"sideways"}'])
    check_eq((st, error_of(doc).get("code"), error_of(doc).get("field")),
             (400, "invalid", "options"), "a bad mode in options: 400 field options")
    check("mode" in error_of(doc).get("message", ""), "the message names the key", doc)
    st, doc, _ = acme.post("/imports", extra=["-F", "file=@%s" % raw, "-F", "options={x"])
    check_eq((st, error_of(doc).get("field")), (400, "options"), "options not JSON: 400")
    st, doc, _ = acme.post("/imports", extra=["-F", "list=%d" % lists["main"]])
    check_eq((st, error_of(doc).get("field")), (400, "file"), "no file part: 400 field file")
    st, doc, _ = acme.post("/imports", extra=["-F", "file=@%s" % raw, "-F", "list=999999"])
    check_eq((st, error_of(doc).get("code")), (404, "not_found"), "an unknown list: 404")
    st, doc, _ = acme.post("/imports", {"query": "SELECT 1"})
    check_eq(st, 400, "a database import without source_id: 400")
    st, doc, _ = acme.post("/imports", {"source_id": 999999, "query": "SELECT 1"})
    check_eq(st, 404, "a database import of an unknown source: 404")
    check_eq(os.listdir(os.path.join(h.data, "imports")), [],
             "refused uploads leave no file")
    return jobs


def test_list_and_get(acme, jobs):
    st, doc, _ = acme.get("/imports")
    check_eq(st, 200, "GET /imports: 200")
    ids = [j["id"] for j in doc["data"]]
    check(ids == sorted(ids, reverse=True), "GET /imports: newest first", ids)
    check(jobs["multipart"] in ids and jobs["raw"] in ids, "GET /imports lists the jobs")
    st, doc, _ = acme.get("/imports?limit=1")
    check_eq(len(doc["data"]), 1, "GET /imports?limit=1")
    st, doc, _ = acme.get("/imports?limit=0")
    check_eq(st, 400, "GET /imports?limit=0: 400")
    st, doc, _ = acme.get("/imports/999999")
    check_eq((st, error_of(doc).get("code")), (404, "not_found"), "GET /imports/999999: 404")


def test_exports(h, acme, lists):
    body = export_rows(acme, "format=csv")
    header, emails = csv_emails(body)
    check_eq(header[:5], ["email", "name", "status", "created", "updated"],
             "CSV export header")
    want = ["user%d@example.com" % i for i in range(5000)] + \
        ["raw%d@example.org" % i for i in range(100)]
    check_eq(sorted(emails), sorted(want), "CSV export: every contact once, row by row")
    rows = list(csv.reader(io.StringIO(body.decode())))[1:]
    names = {r[0]: r[1] for r in rows}
    check(all(names["user%d@example.com" % i] == "User %d" % i for i in range(5000)),
          "CSV export: every name right")
    body = export_rows(acme, "format=jsonl")
    objs = [json.loads(line) for line in body.decode().splitlines()]
    check_eq(sorted(o["email"] for o in objs), sorted(want),
             "JSONL export: every contact once, line by line")
    check(all(set(("email", "name", "status", "created", "updated", "attribs")) <= set(o)
              for o in objs), "JSONL export: every member")
    _, emails = csv_emails(export_rows(acme, "list=%d" % lists["main"]))
    check_eq(len(emails), 5000, "export ?list=main: 5000")
    _, emails = csv_emails(export_rows(acme, "list=%d&status=subscribed" % lists["main"]))
    check_eq(len(emails), 5000, "export ?list=main&status=subscribed: 5000")
    _, emails = csv_emails(export_rows(
        acme, "segment=" + "email%20ends_with%20%22%40example.org%22"))
    check_eq(sorted(emails), sorted("raw%d@example.org" % i for i in range(100)),
             "export ?segment=: the matches")
    st, doc, _ = acme.get("/exports/contacts?segment=email%20bogus")
    check_eq((st, error_of(doc).get("field")), (400, "segment"), "a bad segment: 400")
    st, doc, _ = acme.get("/exports/contacts?format=xml")
    check_eq(st, 400, "format=xml: 400")
    st, doc, _ = acme.get("/exports/contacts?list=999999")
    check_eq(st, 404, "export of an unknown list: 404")
    st, _, body = acme.get("/exports/suppressions?format=csv")
    check_eq((st, body.decode().splitlines()[0]), (200, "email,reason,created"),
             "suppressions CSV export")
    st, _, body = acme.get("/exports/suppressions?format=jsonl")
    check_eq((st, body), (200, b""), "suppressions JSONL export (none)")

    # the JSONL export, imported back into another list
    path = os.path.join(h.dir, "all.jsonl")
    with open(path, "wb") as f:
        f.write(export_rows(acme, "format=jsonl"))
    st, doc, _ = acme.post("/imports?list=%d" % lists["copy2"], extra=[
        "--data-binary", "@" + path, "-H", "Content-Type: application/x-ndjson"])
    check_eq(st, 202, "JSONL export re-imported: 202")
    job = wait_import(acme, doc["id"])
    check_eq((job["state"], job["format"], job["rows_done"], job["errors"], job["created"]),
             ("done", "jsonl", 5100, 0, 5100),
             "JSONL re-import: 5100 rows, no error, 5100 new subscriptions")
    a = sorted(o["email"] for o in objs)
    b = sorted(json.loads(x)["email"] for x in
               export_rows(acme, "format=jsonl&list=%d" % lists["copy2"]).decode().splitlines())
    check_eq(b, a, "the other list has the same contacts")
    again = [json.loads(x) for x in export_rows(acme, "format=jsonl").decode().splitlines()]
    key = lambda o: o["email"]                          # noqa: E731
    check_eq(len(again), 5100, "no new contact: still 5100")
    check_eq([(o["email"], o["name"], o["attribs"]) for o in sorted(again, key=key)],
             [(o["email"], o["name"], o["attribs"]) for o in sorted(objs, key=key)],
             "the contacts are unchanged by the round trip")


def test_cancel(h, acme, lists):
    path = os.path.join(h.dir, "big.csv")
    write_csv(path, 150000)
    st, doc, _ = acme.post("/imports?list=%d" % lists["cancel"], extra=[
        "--data-binary", "@" + path, "-H", "Content-Type: text/csv"])
    check_eq(st, 202, "a big import queued")
    jid = doc["id"]
    st, doc, _ = acme.post("/imports/%d/cancel" % jid)
    check_eq(st, 200, "POST /imports/{id}/cancel: 200")
    check(doc["state"] in ("cancelled", "cancelling"), "cancel: cancelling or cancelled", doc)
    job = wait_import(acme, jid)
    check_eq(job["state"], "cancelled", "the cancelled import ends cancelled")
    check(job["rows_done"] < 150000, "it stopped before the end", job)
    st, doc, _ = acme.post("/imports/%d/cancel" % jid)
    check_eq((st, error_of(doc).get("code")), (409, "conflict"),
             "cancel an ended import: 409 conflict")
    st, doc, _ = acme.post("/imports/999999/cancel")
    check_eq(st, 404, "cancel an unknown import: 404")
    time.sleep(0.3)
    check_eq(os.listdir(os.path.join(h.data, "imports")), [],
             "the cancelled import's file is removed")
    return jid


def test_isolation(h, acme, other, lists, jobs, source_id):
    before = acme.get("/imports/%d" % jobs["multipart"])[1]
    for method, path, body in (
            ("GET", "/imports/%d" % jobs["multipart"], None),
            ("GET", "/imports/%d/errors" % jobs["multipart"], None),
            ("POST", "/imports/%d/cancel" % jobs["multipart"], None),
            ("POST", "/imports/%d/cancel" % jobs["cancel"], None),
            ("GET", "/sources/%d" % source_id, None),
            ("DELETE", "/sources/%d" % source_id, None),
            ("POST", "/imports", {"source_id": source_id, "query": "SELECT 1"}),
            ("POST", "/imports", {"source_id": source_id, "query": "SELECT 1",
                                  "list": lists["main"]}),
            ("GET", "/exports/contacts?list=%d" % lists["main"], None)):
        st, doc, _ = other.call(method, path, body)
        check_eq((st, error_of(doc).get("code")), (404, "not_found"),
                 "other account's key on %s %s: 404" % (method, path))
    raw = os.path.join(h.dir, "raw.csv")
    st, doc, _ = other.post("/imports?list=%d" % lists["main"], extra=[
        "--data-binary", "@" + raw, "-H", "Content-Type: text/csv"])
    check_eq(st, 404, "other account's upload into acme's list: 404")
    st, doc, _ = other.post("/imports", extra=[
        "-F", "file=@" + raw, "-F", "list=%d" % lists["main"]])
    check_eq(st, 404, "other account's multipart into acme's list: 404")
    st, doc, _ = other.get("/imports")
    check_eq((st, doc["data"]), (200, []), "other account sees no import")
    st, doc, _ = other.get("/sources")
    check_eq((st, doc["data"]), (200, []), "other account sees no source")
    st, _, body = other.get("/exports/contacts")
    check_eq((st, body.decode().splitlines()[1:]), (200, []), "other account exports nothing")
    check_eq(acme.get("/imports/%d" % jobs["multipart"])[1], before,
             "acme's import unchanged")
    check_eq(acme.get("/sources/%d" % source_id)[0], 200, "acme's source still there")
    check_eq(os.listdir(os.path.join(h.data, "imports")), [], "no upload left behind")


# ---------------------------------------------------------------- PostgreSQL

class Cluster:
    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="herald-pg-")
        os.chmod(self.base, 0o755)
        self.started = False
        self.port = harness.free_port()

    def sh(self, cmd):
        full = ["runuser", "-u", "postgres", "--", "sh", "-c", cmd] \
            if os.getuid() == 0 else ["sh", "-c", cmd]
        p = subprocess.run(full, capture_output=True, text=True, timeout=120)
        if p.returncode != 0:
            raise RuntimeError("%s: %s%s" % (cmd, p.stdout, p.stderr))
        return p.stdout

    def start(self):
        if os.getuid() == 0:
            shutil.chown(self.base, "postgres", "postgres")
        self.sh("%s/initdb -N -A trust --auth-host=scram-sha-256 -U postgres -D %s/data"
                % (PGBIN, self.base))
        with open(os.path.join(self.base, "data", "postgresql.conf"), "a") as f:
            f.write("listen_addresses = '127.0.0.1'\nport = %d\n"
                    "unix_socket_directories = '%s'\nfsync = off\n" % (self.port, self.base))
        self.sh("%s/pg_ctl -D %s/data -l %s/pg.log -w start" % (PGBIN, self.base, self.base))
        self.started = True

    def sql(self, db, text):
        return self.sh("psql -X -q -v ON_ERROR_STOP=1 -h %s -p %d -U postgres -d %s -At -c \"%s\""
                       % (self.base, self.port, db, text.replace('"', '\\"')))

    def stop(self):
        if self.started:
            try:
                self.sh("%s/pg_ctl -D %s/data -m immediate -w stop" % (PGBIN, self.base))
            except RuntimeError:
                pass
            self.started = False
        shutil.rmtree(self.base, ignore_errors=True)


def test_database(h, acme, lists):
    pg = Cluster()
    try:
        pg.start()
        pg.sql("postgres", "CREATE ROLE herald_u LOGIN PASSWORD '%s'" % PG_PASSWORD)
        pg.sql("postgres", "CREATE DATABASE crm OWNER herald_u")
        pg.sql("crm", "SET ROLE herald_u; CREATE TABLE people (id serial PRIMARY KEY, "
                      "email text NOT NULL, full_name text); INSERT INTO people (email, full_name) "
                      "SELECT 'pg' || i || '@example.net', 'Pg ' || i FROM generate_series(1, 1000) i")
        check_eq(pg.sql("crm", "SELECT count(*) FROM people").strip(), "1000",
                 "PostgreSQL cluster with 1,000 contacts")
        uri = "postgresql://herald_u:%s@127.0.0.1:%d/crm?sslmode=disable" % (PG_PASSWORD, pg.port)
        st, doc, body = acme.post("/sources", {"name": "crm", "conninfo": uri})
        check_eq(st, 201, "POST /sources: 201")
        sid = doc["id"]
        check(doc["has_password"] is True and doc["name"] == "crm" and doc["created_at"],
              "the Source", doc)
        check(PG_PASSWORD.encode() not in body, "POST /sources reply has no password")
        check("password" not in doc["conninfo"] and "127.0.0.1" in doc["conninfo"],
              "conninfo without the password", doc)
        st, doc, _ = acme.post("/sources", {"name": "crm", "conninfo": uri})
        check_eq(st, 409, "POST /sources with a taken name: 409")
        st, doc, _ = acme.post("/sources", {"name": "bad", "conninfo": "host=/tmp dbname=x"})
        check_eq((st, error_of(doc).get("field")), (400, "conninfo"),
                 "a socket directory host is refused: 400 field conninfo")
        st, doc, _ = acme.post("/sources", {"name": "bad", "conninfo": "nonsense=="})
        check_eq((st, error_of(doc).get("field")), (400, "conninfo"), "a bad conninfo: 400")
        st, doc, body = acme.get("/sources")
        check(st == 200 and [s["id"] for s in doc["data"]] == [sid], "GET /sources", doc)
        check(PG_PASSWORD.encode() not in body, "GET /sources never shows the password")
        st, doc, body = acme.get("/sources/%d" % sid)
        check(st == 200 and PG_PASSWORD.encode() not in body and doc["has_password"],
              "GET /sources/{id} never shows the password")
        key = os.path.join(h.data, "secrets", "master.key")
        check(os.path.exists(key) and os.stat(key).st_mode & 0o077 == 0,
              "the master key (the password's key derives from it) is 0600")
        check(not os.path.exists(os.path.join(h.data, "secret.key")),
              "no other key file")
        found = []
        for root, _, files in os.walk(h.data):
            for name in files:
                if PG_PASSWORD.encode() in open(os.path.join(root, name), "rb").read():
                    found.append(name)
        check_eq(found, [], "no file of the data directory holds the password (sqlite, WAL)")

        st, doc, _ = acme.post("/imports", {"source_id": sid, "list": lists["pg"],
                                            "query": "SELECT email, full_name AS name "
                                                     "FROM people ORDER BY id",
                                            "options": {"mode": "upsert"}})
        check_eq(st, 202, "POST /imports {source_id, query}: 202")
        check_eq(doc["format"], "postgresql", "format postgresql")
        job = wait_import(acme, doc["id"])
        check_eq((job["state"], job["rows_done"], job["created"], job["errors"]),
                 ("done", 1000, 1000, 0), "database import done: 1000 created", )
        _, emails = csv_emails(export_rows(acme, "list=%d" % lists["pg"]))
        check_eq(sorted(emails), sorted("pg%d@example.net" % i for i in range(1, 1001)),
                 "the list holds the 1,000 database contacts")
        st, doc, _ = acme.post("/imports", {"source_id": sid, "query": "SELECT 1",
                                            "options": {"bogus": 1}})
        check_eq((st, error_of(doc).get("field")), (400, "options"), "database import bad options")
        st, doc, _ = acme.post("/imports", {"source_id": sid, "query": "SELECT email FROM nope"})
        check_eq(st, 202, "a failing query is queued")
        job = wait_import(acme, doc["id"])
        check(job["state"] == "failed" and "nope" in (job["error"] or ""),
              "it fails with PostgreSQL's error", job)
        check(PG_PASSWORD not in json.dumps(job), "the failure does not show the password")
        return sid
    finally:
        pg.stop()


# ---------------------------------------------------------------- resume, 413

def test_resume(h, acme, lists):
    path = os.path.join(h.dir, "huge.csv")
    total = 300000
    write_csv(path, total)
    st, doc, _ = acme.post("/imports?list=%d" % lists["resume"], extra=[
        "--data-binary", "@" + path, "-H", "Content-Type: text/csv"])
    check_eq(st, 202, "a 300,000-row import queued")
    jid = doc["id"]
    deadline = time.time() + 60
    while time.time() < deadline:
        doc = acme.get("/imports/%d" % jid)[1]
        if doc["rows_done"] > 0:
            break
        time.sleep(0.02)
    h.stop()
    h.start()
    doc = acme.get("/imports/%d" % jid)[1]
    done_at_stop = doc["rows_done"]
    check(0 < done_at_stop < total, "stopped mid-run (rows_done %d)" % done_at_stop, doc)
    job = wait_import(acme, jid, timeout=240)
    check_eq((job["state"], job["rows_done"], job["created"], job["errors"]),
             ("done", total, total, 0), "resumed after restart: every row once")
    _, emails = csv_emails(export_rows(acme, "list=%d" % lists["resume"]))
    check_eq(len(emails), total, "the list has 300,000 contacts")
    check_eq(len(set(emails)), total, "each exactly once")


def test_too_large(h, acme, lists):
    h.stop()
    h.sets["http.max_upload"] = "64k"
    h.start()
    path = os.path.join(h.dir, "over.csv")
    write_csv(path, 4000)
    check(os.path.getsize(path) > 64 * 1024, "a file over 64 KiB")
    st, doc, _ = acme.post("/imports?list=%d" % lists["main"], extra=[
        "--data-binary", "@" + path, "-H", "Content-Type: text/csv"])
    check_eq((st, error_of(doc).get("code")), (413, "too_large"),
             "raw upload over http.max_upload: 413 too_large")
    st, doc, _ = acme.post("/imports", extra=["-F", "file=@" + path])
    check_eq((st, error_of(doc).get("code")), (413, "too_large"),
             "multipart upload over http.max_upload: 413 too_large")
    small = os.path.join(h.dir, "raw.csv")
    st, doc, _ = acme.post("/imports", extra=["-F", "file=@" + small])
    check_eq(st, 202, "a small upload still goes")
    wait_import(acme, doc["id"])
    check_eq(os.listdir(os.path.join(h.data, "imports")), [], "no file left")


def main():
    port = harness.free_port()
    with harness.Herald(sets={"http.listen": "127.0.0.1:%d" % port,
                              "import.batch_rows": "1000"}) as h:
        h.http_port = port
        h.cli("account", "create", "other")
        acme = Client(h, h.cli("apikey", "create", "--account", "acme").strip())
        other = Client(h, h.cli("apikey", "create", "--account", "other").strip())
        op = Client(h, h.cli("apikey", "create", "--operator").strip())
        accs = {a["name"]: a["id"] for a in op.get("/accounts")[1]["data"]}
        check_eq(Client(h, op.key, accs["acme"]).get("/imports")[0], 200,
                 "operator key with Herald-Account reaches /imports")
        lists = {}
        for name in ("main", "copy", "copy2", "cancel", "pg", "resume"):
            st, doc, _ = acme.post("/lists", {"name": name})
            assert st == 201, (st, doc)
            lists[name] = doc["id"]
        test_accounts(h, op, acme)
        jobs = test_uploads(h, acme, lists)
        test_list_and_get(acme, jobs)
        test_exports(h, acme, lists)
        jobs["cancel"] = test_cancel(h, acme, lists)
        sid = test_database(h, acme, lists)
        test_isolation(h, acme, other, lists, jobs, sid)
        st, _, _ = acme.call("DELETE", "/sources/%d" % sid)
        check_eq(st, 204, "DELETE /sources/{id}: 204")
        st, _, _ = acme.get("/sources/%d" % sid)
        check_eq(st, 404, "GET a deleted source: 404")
        test_resume(h, acme, lists)
        test_too_large(h, acme, lists)


if __name__ == "__main__":
    harness.run(main)
