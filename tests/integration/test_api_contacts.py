#!/usr/bin/python3
"""The REST API's custom fields, contacts, subscriptions, segments and
suppressions, driven with curl against a real `herald serve`: every
route's success and failure cases, paging, the consent rules, and the
wall between two accounts (every id or address of account A, used with
account B's key, is 404 and leaves A's data as it was)."""

import json
import subprocess
import urllib.parse

from harness import Herald, check, check_eq, free_port, run


class Api:
    def __init__(self, port, key):
        self.base = "http://127.0.0.1:%d/api/v1" % port
        self.key = key

    def call(self, method, path, body=None, raw=None, ctype="application/json"):
        """(status, parsed JSON or None) of a curl request."""
        args = ["curl", "-s", "-X", method, "-w", "\n%{http_code}",
                "-H", "Authorization: Bearer " + self.key]
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        if data is not None:
            args += ["-H", "Content-Type: " + ctype, "--data-binary", "@-"]
        p = subprocess.run(args + [self.base + path], input=data, capture_output=True,
                           text=True, timeout=30)
        out, _, code = p.stdout.rpartition("\n")
        try:
            doc = json.loads(out) if out else None
        except ValueError:
            doc = out
        return int(code), doc

    def ok(self, method, path, body=None, status=200):
        code, doc = self.call(method, path, body)
        check_eq(code, status, "%s %s -> %d (%s)" % (method, path, status, doc))
        return doc

    def err(self, method, path, body=None, status=400, code="invalid", field=None,
            raw=None, ctype="application/json", msg=None):
        got, doc = self.call(method, path, body, raw=raw, ctype=ctype)
        check_eq(got, status, "%s %s %s -> %d" % (method, path, raw or body, status))
        check_eq(doc["error"]["code"], code, "  code %s (%s)" % (code, doc))
        if field is not None:
            check_eq(doc["error"].get("field"), field, "  field %s" % field)
        if msg is not None:
            check(msg in doc["error"]["message"], "  message has %r: %s"
                  % (msg, doc["error"]["message"]))
        return doc


def fields(a, b):
    f_city = a.ok("POST", "/fields", {"name": "city", "type": "text"}, 201)
    check_eq((f_city["name"], f_city["type"], f_city["choices"]),
             ("city", "text", None), "text field")
    f_age = a.ok("POST", "/fields", {"name": "age", "type": "number"}, 201)
    a.ok("POST", "/fields", {"name": "born", "type": "date"}, 201)
    a.ok("POST", "/fields", {"name": "vip", "type": "boolean"}, 201)
    f_plan = a.ok("POST", "/fields", {"name": "plan", "type": "one_of",
                                      "choices": ["free", "pro"]}, 201)
    check_eq(f_plan["choices"], ["free", "pro"], "one_of choices")
    tmp = a.ok("POST", "/fields", {"name": "tmp", "type": "text"}, 201)
    names = [f["name"] for f in a.ok("GET", "/fields")["data"]]
    check_eq(names, ["age", "born", "city", "plan", "tmp", "vip"], "fields by name")
    check_eq(a.ok("GET", "/fields/%d" % f_age["id"])["name"], "age", "GET field")
    a.err("POST", "/fields", {"name": "city", "type": "text"}, 409, "conflict")
    a.err("POST", "/fields", {"type": "text"}, field="name")
    a.err("POST", "/fields", {"name": 3, "type": "text"}, field="name")
    a.err("POST", "/fields", {"name": "Bad Name", "type": "text"}, field="name")
    a.err("POST", "/fields", {"name": "email", "type": "text"}, field="name")
    a.err("POST", "/fields", {"name": "x"}, field="type")
    a.err("POST", "/fields", {"name": "x", "type": "colour"}, field="type")
    a.err("POST", "/fields", {"name": "x", "type": "one_of"}, field="choices")
    a.err("POST", "/fields", {"name": "x", "type": "one_of", "choices": [1]},
          field="choices")
    a.err("POST", "/fields", {"name": "x", "type": "text", "choices": ["a"]},
          field="choices")
    a.err("POST", "/fields", raw="{bad", code="bad_json")
    a.err("GET", "/fields/999999", status=404, code="not_found")
    a.err("GET", "/fields/abc", status=404, code="not_found")
    # the other account
    b.err("GET", "/fields/%d" % f_city["id"], status=404, code="not_found")
    b.err("DELETE", "/fields/%d" % f_city["id"], status=404, code="not_found")
    check_eq(b.ok("GET", "/fields")["data"], [], "B sees no field of A")
    check_eq(a.ok("GET", "/fields/%d" % f_city["id"])["name"], "city", "A's field stays")
    a.ok("DELETE", "/fields/%d" % tmp["id"], status=204)
    a.err("GET", "/fields/%d" % tmp["id"], status=404, code="not_found")
    a.err("DELETE", "/fields/%d" % tmp["id"], status=404, code="not_found")


def contacts(a, b, list1, list2, blist):
    r = a.ok("POST", "/contacts", {"email": "Ann@Example.COM", "name": "Ann",
             "attribs": {"city": "Paris", "age": 31, "born": "1990-02-03",
                         "vip": True, "plan": "pro"}, "lists": [list1]}, 201)
    check_eq(r["result"], "created", "contact created")
    ann = r["contact"]
    check_eq(ann["email"], "Ann@example.com", "address normalized (domain only)")
    check_eq(ann["attribs"], {"city": "Paris", "age": 31, "born": 634003200,
                              "vip": True, "plan": "pro"}, "attribs stored, date in seconds")
    check(ann["created_at"].endswith("Z"), "created_at ISO")
    r = a.ok("POST", "/contacts", {"email": "Ann@EXAMPLE.com"})
    check_eq((r["result"], r["contact"]["id"]), ("skipped", ann["id"]), "add again: skipped")
    r = a.ok("POST", "/contacts", {"email": "Ann@example.com", "name": "Ann B",
                                   "mode": "upsert"})
    check_eq((r["result"], r["contact"]["name"]), ("updated", "Ann B"), "upsert")
    r = a.ok("POST", "/contacts", {"email": "nobody@example.com", "mode": "update"})
    check_eq((r["result"], r["contact"]), ("skipped", None), "update of nobody")
    # checks of values
    for attribs, field in (({"age": "x"}, "attribs.age"), ({"age": True}, "attribs.age"),
                           ({"born": "yesterday"}, "attribs.born"),
                           ({"vip": "yes"}, "attribs.vip"), ({"plan": "gold"}, "attribs.plan"),
                           ({"city": 5}, "attribs.city"), ({"nosuch": 1}, "attribs.nosuch")):
        a.err("POST", "/contacts", {"email": "v@example.com", "attribs": attribs}, field=field)
    a.err("POST", "/contacts", {"email": "v@example.com", "attribs": [1]}, field="attribs")
    a.err("POST", "/contacts", {"name": "x"}, field="email")
    a.err("POST", "/contacts", {"email": 7}, field="email")
    a.err("POST", "/contacts", {"email": "not an address"}, field="email")
    a.err("POST", "/contacts", {"email": "v@example.com", "mode": "merge"}, field="mode")
    a.err("POST", "/contacts", {"email": "v@example.com", "lists": "1"}, field="lists")
    a.err("POST", "/contacts", {"email": "v@example.com", "lists": [999999]}, 404,
          "not_found", field="lists")
    a.err("POST", "/contacts", {"email": "v@example.com", "lists": [blist]}, 404,
          "not_found", field="lists")
    a.err("POST", "/contacts", {"email": "v@example.com", "consent": {"ip": "1.2.3.4"}},
          field="consent")
    a.err("POST", "/contacts", raw="[1,", code="bad_json")
    a.err("POST", "/contacts", raw="{}", ctype="text/plain", status=415,
          code="unsupported_media_type")
    check_eq(a.call("GET", "/contacts?email=v@")[1]["data"], [], "nothing written by bad POSTs")

    # one contact, PATCH, subscriptions
    got = a.ok("GET", "/contacts/%d" % ann["id"])
    check_eq([(s["list_id"], s["status"]) for s in got["subscriptions"]],
             [(list1, "subscribed")], "GET contact with subscriptions")
    p = a.ok("PATCH", "/contacts/%d" % ann["id"], {"attribs": {"city": None, "age": 32.5},
                                                 "status": "blocklisted"})
    check_eq((p["status"], p["attribs"].get("city"), p["attribs"]["age"]),
             ("blocklisted", None, 32.5), "PATCH: null removes, status set")
    a.err("PATCH", "/contacts/%d" % ann["id"], {"status": "gone"}, field="status")
    a.err("PATCH", "/contacts/%d" % ann["id"], {"attribs": {"vip": 1}}, field="attribs.vip")
    a.err("PATCH", "/contacts/%d" % ann["id"], {"name": 1}, field="name")
    a.err("PATCH", "/contacts/999999", {"name": "x"}, 404, "not_found")
    a.ok("PATCH", "/contacts/%d" % ann["id"], {"status": "enabled", "name": "Ann"})
    subs = a.ok("GET", "/contacts/%d/subscriptions" % ann["id"])["data"]
    check_eq(subs[0]["list_name"], "news", "subscription list_name")
    s = a.ok("PUT", "/contacts/%d/subscriptions/%d" % (ann["id"], list2),
             {"status": "subscribed", "consent": {"source": "api", "ip": "192.0.2.1"}})
    check_eq((s["list_id"], s["status"], s["consent"]["source"], s["consent"]["ip"]),
             (list2, "subscribed", "api", "192.0.2.1"), "PUT subscription with consent")
    a.ok("PUT", "/contacts/%d/subscriptions/%d" % (ann["id"], list2), {"status": "unsubscribed"})
    a.err("PUT", "/contacts/%d/subscriptions/%d" % (ann["id"], list2),
          {"status": "subscribed"}, 409, "consent_required")
    a.err("PUT", "/contacts/%d/subscriptions/%d" % (ann["id"], list2), {}, field="status")
    a.err("PUT", "/contacts/%d/subscriptions/%d" % (ann["id"], list2), {"status": "maybe"},
          field="status")
    a.err("PUT", "/contacts/%d/subscriptions/999999" % ann["id"], {"status": "subscribed"},
          404, "not_found")
    a.ok("DELETE", "/contacts/%d/subscriptions/%d" % (ann["id"], list2), status=204)
    a.err("DELETE", "/contacts/%d/subscriptions/%d" % (ann["id"], list2), status=404,
          code="not_found")

    # consent rules on POST
    r = a.ok("POST", "/contacts", {"email": "bob@example.org", "lists": [list1]}, 201)
    bob = r["contact"]["id"]
    a.ok("PUT", "/contacts/%d/subscriptions/%d" % (bob, list1), {"status": "unsubscribed"})
    r = a.ok("POST", "/contacts", {"email": "bob@example.org", "lists": [list1]})
    check_eq(r["result"], "refused", "unsubscribed, no consent: refused")
    st = a.ok("GET", "/contacts/%d" % bob)["subscriptions"][0]["status"]
    check_eq(st, "unsubscribed", "still unsubscribed")
    r = a.ok("POST", "/contacts", {"email": "bob@example.org", "lists": [list1],
                                   "consent": {"source": "form"}})
    check_eq(r["result"], "updated", "with consent: updated")
    st = a.ok("GET", "/contacts/%d" % bob)["subscriptions"][0]
    check_eq((st["status"], st["consent"]["source"]), ("subscribed", "form"),
             "with consent: subscribed again")
    a.ok("POST", "/suppressions", {"email": "sup@example.org", "reason": "complaint"}, 201)
    r = a.ok("POST", "/contacts", {"email": "sup@example.org", "lists": [list1]})
    check_eq((r["result"], r["contact"]), ("suppressed", None), "suppressed address")
    return ann["id"], bob


def paging(a, list2):
    codes = set()
    for i in range(250):
        codes.add(a.call("POST", "/contacts", {"email": "p%03d@page.test" % i,
                                               "lists": [list2], "attribs": {"age": i}})[0])
    check_eq(codes, {201}, "250 contacts created")
    seen, after, pages = [], None, 0
    while True:
        q = "/contacts?email=p&limit=100" + ("&after=" + after if after else "")
        doc = a.ok("GET", q)
        seen += [c["email"] for c in doc["data"]]
        pages += 1
        after = doc["next"]
        if after is None:
            break
    check_eq((pages, len(seen), len(set(seen))), (3, 250, 250), "paging: all seen once")
    doc = a.ok("GET", "/contacts?list=%d&status=subscribed&limit=1000" % list2)
    check_eq((len(doc["data"]), doc["next"]), (250, None), "list filter")
    for q, field in (("limit=0", "limit"), ("limit=1001", "limit"), ("limit=x", "limit"),
                     ("after=x", "after"), ("list=x", "list"),
                     ("list=%d&status=gone" % list2, "status")):
        a.err("GET", "/contacts?" + q, field=field,
              code="bad_query" if field in ("after", "list", "status") else "invalid")
    a.err("GET", "/contacts?list=999999", status=404, code="not_found")
    a.err("GET", "/contacts?segment=" + urllib.parse.quote("field.nosuch = 1"),
          field="segment", msg="column")


def segments(a, b):
    q = 'email ends_with "@page.test" and field.age >= 200'
    seg = a.ok("POST", "/segments", {"name": "old", "query": q}, 201)
    check_eq((seg["name"], seg["query"]), ("old", q), "segment created")
    got = a.ok("GET", "/segments/%d" % seg["id"])
    check_eq(got["count"], 50, "segment count")
    prev = a.ok("GET", "/segments/%d/contacts?limit=30" % seg["id"])
    check(prev["next"] is not None and len(prev["data"]) == 30, "preview page 1")
    prev2 = a.ok("GET", "/segments/%d/contacts?limit=30&after=%s" % (seg["id"], prev["next"]))
    emails = sorted(c["email"] for c in prev["data"] + prev2["data"])
    check_eq((emails, prev2["next"]), (["p%03d@page.test" % i for i in range(200, 250)], None),
             "preview matches what was inserted")
    seg_q = a.ok("GET", "/contacts?segment=" + urllib.parse.quote(q) + "&limit=1000")
    check_eq(len(seg_q["data"]), 50, "contacts?segment=")
    chk = a.ok("POST", "/segments/check", {"query": "field.age < 10", "limit": 3})
    check_eq((chk["count"], len(chk["data"])), (10, 3), "segments/check")
    a.err("POST", "/segments/check", {"query": "field.age <", "limit": 3}, field="query",
          msg="column")
    a.err("POST", "/segments/check", {"query": "field.age < 3", "limit": 0}, field="limit")
    a.err("POST", "/segments", {"name": "bad", "query": "field.nosuch = 1"}, field="query",
          msg="column")
    a.err("POST", "/segments", {"name": "bad", "query": 'email = "x" and ('}, field="query",
          msg="column")
    a.err("POST", "/segments", {"query": "field.age < 3"}, field="name")
    a.err("POST", "/segments", {"name": "x"}, field="query")
    a.err("POST", "/segments", {"name": "old", "query": "field.age < 3"}, 409, "conflict")
    a.err("POST", "/segments", raw="nope", code="bad_json")
    p = a.ok("PATCH", "/segments/%d" % seg["id"], {"query": "field.age >= 240"})
    check_eq(p["query"], "field.age >= 240", "PATCH segment")
    check_eq(a.ok("GET", "/segments/%d" % seg["id"])["count"], 10, "count follows PATCH")
    a.err("PATCH", "/segments/%d" % seg["id"], {"query": "field.zzz = 1"}, field="query",
          msg="column")
    a.err("PATCH", "/segments/%d" % seg["id"], {"name": 1}, field="name")
    tmp = a.ok("POST", "/segments", {"name": "tmp", "query": "field.age < 1"}, 201)
    check_eq([s["name"] for s in a.ok("GET", "/segments")["data"]], ["old", "tmp"],
             "segments listed")
    a.ok("DELETE", "/segments/%d" % tmp["id"], status=204)
    a.err("GET", "/segments/%d" % tmp["id"], status=404, code="not_found")
    a.err("DELETE", "/segments/%d" % tmp["id"], status=404, code="not_found")
    a.err("GET", "/segments/%d/contacts" % tmp["id"], status=404, code="not_found")
    a.err("GET", "/segments/%d/contacts?limit=5000" % seg["id"], field="limit")
    # the other account
    sid = seg["id"]
    b.err("GET", "/segments/%d" % sid, status=404, code="not_found")
    b.err("PATCH", "/segments/%d" % sid, {"name": "stolen"}, status=404, code="not_found")
    b.err("GET", "/segments/%d/contacts" % sid, status=404, code="not_found")
    b.err("DELETE", "/segments/%d" % sid, status=404, code="not_found")
    check_eq(b.ok("GET", "/segments")["data"], [], "B sees no segment of A")
    chk = b.ok("POST", "/segments/check", {"query": 'email ends_with "@page.test"'})
    check_eq(chk["count"], 0, "B's check sees none of A's contacts")
    got = a.ok("GET", "/segments/%d" % sid)
    check_eq((got["name"], got["query"], got["count"]), ("old", "field.age >= 240", 10),
             "A's segment unchanged")


def suppressions(a, b):
    s = a.ok("POST", "/suppressions", {"email": "Bounce@Example.NET",
                                       "reason": "hard_bounce"}, 201)
    check_eq((s["email"], s["reason"]), ("Bounce@example.net", "hard_bounce"), "suppression")
    s = a.ok("POST", "/suppressions", {"email": "m@example.net"}, 201)
    check_eq(s["reason"], "manual", "default reason manual")
    got = a.ok("GET", "/suppressions/" + urllib.parse.quote("Bounce@EXAMPLE.net"))
    check_eq(got["reason"], "hard_bounce", "GET by address (normalized)")
    a.err("POST", "/suppressions", {"email": "x@example.net", "reason": "spite"}, field="reason")
    a.err("POST", "/suppressions", {"reason": "manual"}, field="email")
    a.err("POST", "/suppressions", {"email": "x"}, field="email")
    a.err("POST", "/suppressions", {"email": ["x@y.z"]}, field="email")
    a.err("POST", "/suppressions", raw="{", code="bad_json")
    a.err("GET", "/suppressions/none@example.net", status=404, code="not_found")
    for i in range(25):
        a.call("POST", "/suppressions", {"email": "s%02d@sup.test" % i})
    seen, after = [], ""
    while after is not None:
        doc = a.ok("GET", "/suppressions?limit=10&after=" + urllib.parse.quote(after))
        seen += [x["email"] for x in doc["data"]]
        after = doc["next"]
    check_eq((len(seen), len(set(seen)), seen == sorted(seen)), (28, 28, True),
             "suppressions paged")
    a.err("GET", "/suppressions?limit=0", field="limit")
    # the other account
    b.err("GET", "/suppressions/bounce@example.net", status=404, code="not_found")
    b.err("GET", "/suppressions/Bounce@example.net", status=404, code="not_found")
    b.err("DELETE", "/suppressions/Bounce@example.net", status=404, code="not_found")
    check_eq(b.ok("GET", "/suppressions")["data"], [], "B sees no suppression of A")
    check_eq(a.ok("GET", "/suppressions/Bounce@example.net")["reason"], "hard_bounce",
             "A's suppression stays")
    a.ok("DELETE", "/suppressions/m@example.net", status=204)
    a.err("DELETE", "/suppressions/m@example.net", status=404, code="not_found")
    a.err("GET", "/suppressions/m@example.net", status=404, code="not_found")


def walls(a, b, ann, list1):
    before = a.ok("GET", "/contacts/%d" % ann)
    b.err("GET", "/contacts/%d" % ann, status=404, code="not_found")
    b.err("PATCH", "/contacts/%d" % ann, {"name": "stolen", "status": "blocklisted"},
          status=404, code="not_found")
    b.err("GET", "/contacts/%d/subscriptions" % ann, status=404, code="not_found")
    b.err("PUT", "/contacts/%d/subscriptions/%d" % (ann, list1), {"status": "unsubscribed"},
          status=404, code="not_found")
    b.err("DELETE", "/contacts/%d/subscriptions/%d" % (ann, list1), status=404,
          code="not_found")
    b.err("DELETE", "/contacts/%d" % ann, status=404, code="not_found")
    b.err("GET", "/contacts?list=%d" % list1, status=404, code="not_found")
    check_eq(b.ok("GET", "/contacts")["data"], [], "B sees no contact of A")
    r = b.ok("POST", "/contacts", {"email": before["email"]}, 201)
    check(r["contact"]["id"] != ann, "B's own contact of the same address is another")
    check_eq(a.ok("GET", "/contacts/%d" % ann), before, "A's contact unchanged")


def main():
    port = free_port()
    with Herald(sets={"http.listen": "127.0.0.1:%d" % port, "http.max_body": "4096"},
                start=False) as h:
        h.cli("account", "create", "other")
        ka = h.cli("apikey", "create", "--account", "acme").split()[0]
        kb = h.cli("apikey", "create", "--account", "other").split()[0]
        h.start()
        a, b = Api(port, ka), Api(port, kb)
        list1 = a.ok("POST", "/lists", {"name": "news"}, 201)["id"]
        list2 = a.ok("POST", "/lists", {"name": "promo"}, 201)["id"]
        blist = b.ok("POST", "/lists", {"name": "theirs"}, 201)["id"]
        a.err("POST", "/contacts", raw=json.dumps({"email": "big@example.com",
              "name": "x" * 5000}), status=413, code="too_large")
        a.err("POST", "/segments", raw=json.dumps({"name": "big", "query": "x" * 5000}),
              status=413, code="too_large")
        a.err("POST", "/suppressions", raw=json.dumps({"email": "x" * 5000}),
              status=413, code="too_large")
        a.err("POST", "/fields", raw=json.dumps({"name": "x" * 5000}),
              status=413, code="too_large")
        fields(a, b)
        ann, bob = contacts(a, b, list1, list2, blist)
        paging(a, list2)
        segments(a, b)
        suppressions(a, b)
        walls(a, b, ann, list1)
        a.ok("DELETE", "/contacts/%d" % bob, status=204)
        a.err("GET", "/contacts/%d" % bob, status=404, code="not_found")
        a.err("DELETE", "/contacts/%d" % bob, status=404, code="not_found")
        code, _ = Api(port, "hk_wrong").call("GET", "/contacts")
        check_eq(code, 401, "a wrong key: 401")
        h.stop()


run(main)
