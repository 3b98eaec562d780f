"""deliverylib - what the delivery tests share: test messages, taking
Herald's added fields off a delivered message, reading DSNs (RFC 3464)
with Python's email package, reading `herald queue show`, and the
settings every delivery test starts from.
"""
import email
import email.policy
import re
import secrets

import harness
from harness import check, check_eq

SENDER = "a@example.com"       # the harness account's sender domain


def delivery_sets(**more):
    """Settings of a delivery test: the engine on, retries after 1 s then
    every 2 s, short timeouts, no upstream DNS resolver."""
    sets = {
        "mta.enabled": "yes",
        "mta.retry_schedule": "1s,2s",
        "mta.greeting_timeout": "2s",
        "mta.connect_timeout": "2s",
        "mta.command_timeout": "5s",
        "mta.data_timeout": "10s",
        "dns.resolv_conf": "",
    }
    sets.update({k.replace("__", "."): v for k, v in more.items()})
    return sets


def token():
    return secrets.token_hex(8)


def message(tok, to="x@dest.test", subject="delivery", sender=SENDER, extra=b"",
            size=0):
    """A 7-bit test message (CRLF, ends with CRLF) with its own Message-ID
    and Date (so Herald adds only Received:), dots at line starts, a fold,
    blanks and a 998-octet line; size > 0 adds lines up to about size."""
    t = tok.encode() if isinstance(tok, str) else tok
    lines = [b"From: Herald Test <" + sender.encode() + b">",
             b"To: <" + to.encode() + b">",
             b"Subject: " + subject.encode() + b" " + t,
             b"Message-ID: <" + t + b"@example.com>",
             b"Date: Mon, 01 Jan 2024 00:00:00 +0000",
             b"X-Folded: first part", b"\tsecond part",
             b"MIME-Version: 1.0",
             b"Content-Type: text/plain; charset=us-ascii",
             b"",
             b"body of " + t,
             b".leading dot",
             b"..two leading dots",
             b".",
             b"",
             b"trailing blanks   ",
             b"\tindented with a tab",
             b"y" * 998]
    n = 0
    while n < size:
        line = b"%06d " % n + b"z" * 70
        lines.append(line)
        n += len(line) + 2
    lines.append(extra + b"end of " + t)
    return b"\r\n".join(lines) + b"\r\n"


FIELD_START = re.compile(rb"[!-9;-~]+:")


def split_fields(data, name):
    """Take the leading header fields called name (folded lines included)
    off data: (list of the fields, rest)."""
    fields = []
    while data.lower().startswith(name.lower() + b":"):
        end = 0
        while True:
            nl = data.index(b"\r\n", end)
            end = nl + 2
            if data[end:end + 1] not in (b" ", b"\t"):
                break
        fields.append(data[:end])
        data = data[end:]
    return fields, data


def delivered_parts(data):
    """A delivered message as (DKIM-Signature fields, Received fields,
    the rest): Herald prepends DKIM-Signature fields (when it signs) in
    front of its Received: field."""
    dkim, rest = split_fields(data, b"DKIM-Signature")
    rcvd, rest = split_fields(rest, b"Received")
    return dkim, rcvd, rest


def check_same_message(got, sent, what, dkim=0):
    """got (as a sink received it) is sent with Herald's fields in front:
    `dkim` DKIM-Signature fields, then one Received: field by herald.test,
    nothing else added or changed."""
    d, r, rest = delivered_parts(got)
    check_eq(len(d), dkim, "%s: %d DKIM-Signature field(s) in front" % (what, dkim))
    check(len(r) == 1 and b"by herald.test" in r[0],
          "%s: then Herald's Received: field" % what, lambda: got[:600])
    check_eq(rest, sent, "%s: the rest is the submitted message byte for byte" % what)


# ---- DSNs ----

class Dsn:
    """A DSN (multipart/report; report-type=delivery-status) parsed with
    the email package: msg (the whole message), text (the human-readable
    part), per_message (fields), recipients (list of field dicts, names
    lower case, whitespace folded), returned (the third part)."""

    def __init__(self, data):
        self.raw = data
        self.msg = email.message_from_bytes(data, policy=email.policy.compat32)
        self.ok = (self.msg.get_content_type() == "multipart/report" and
                   self.msg.get_param("report-type") == "delivery-status")
        parts = self.msg.get_payload() if self.msg.is_multipart() else []
        self.parts = parts
        self.text = ""
        self.per_message = {}
        self.recipients = []
        self.returned = None
        for p in parts:
            ct = p.get_content_type()
            if ct == "text/plain" and not self.text:
                self.text = p.get_payload(decode=True).decode("utf-8", "replace")
            elif ct == "message/delivery-status":
                blocks = p.get_payload()
                if blocks:
                    self.per_message = self._fields(blocks[0])
                    self.recipients = [self._fields(b) for b in blocks[1:]]
            elif ct in ("message/rfc822", "text/rfc822-headers", "message/global"):
                self.returned = p

    @staticmethod
    def _fields(block):
        return {k.lower(): " ".join(str(v).split()) for k, v in block.items()}

    def recipient(self, addr):
        """The per-recipient fields whose Final-Recipient is addr (type
        rfc822, or utf-8 with RFC 6533's \\x{HEX} escapes decoded)."""
        for r in self.recipients:
            v = r.get("final-recipient", "").replace(" ", "")
            v = re.sub(r"\\x\{([0-9A-Fa-f]{1,6})\}", lambda m: chr(int(m.group(1), 16)), v)
            if v.lower().endswith(";" + addr.lower()):
                return r
        return None

    def returned_bytes(self):
        if self.returned is None:
            return b""
        if self.returned.get_content_type() == "text/rfc822-headers":
            return self.returned.get_payload(decode=True) or b""
        return self.returned.as_bytes()


def dsns(sink):
    """Every DSN a sink received: [(Received, Dsn)] of the messages from the
    null sender."""
    return [(m, Dsn(m.data)) for m in sink.received() if m.mail_from == ""]


def dsns_for(sink, rcpt):
    """The DSNs that report on recipient rcpt."""
    return [(m, d) for m, d in dsns(sink) if d.recipient(rcpt) is not None]


def check_failed_dsn(m, d, rcpt, status_rx, diag_rx, what, sender=SENDER,
                     tok=None):
    """A failure DSN about rcpt, sent from <> to sender, well formed."""
    check_eq((m.mail_from, m.rcpt_tos), ("", [sender]),
             "%s: DSN from <> to <%s>" % (what, sender))
    check(d.ok, "%s: DSN is multipart/report; report-type=delivery-status" % what,
          lambda: d.raw[:800])
    if any(b > 127 for b in m.data):
        check("BODY=8BITMIME" in [o.upper() for o in m.mail_options],
              "%s: the DSN has 8-bit octets: sent with BODY=8BITMIME" % what,
              m.mail_options)
    r = d.recipient(rcpt)
    check(r is not None, "%s: delivery-status has Final-Recipient rfc822;%s"
          % (what, rcpt), lambda: d.recipients)
    check_eq(r.get("action"), "failed", "%s: Action: failed" % what)
    check(re.fullmatch(status_rx, r.get("status", "")) is not None,
          "%s: Status %s matches %s" % (what, r.get("status"), status_rx))
    if diag_rx is not None:
        check(re.search(diag_rx, r.get("diagnostic-code", "")) is not None,
              "%s: Diagnostic-Code %r matches %r" % (
                  what, r.get("diagnostic-code"), diag_rx))
    check("reporting-mta" in d.per_message, "%s: Reporting-MTA given" % what,
          d.per_message)
    frm = d.msg.get("From", "")
    check("MAILER-DAEMON@" in frm.upper() and d.msg.get("Auto-Submitted", "")
          .startswith("auto-replied"),
          "%s: From: MAILER-DAEMON, Auto-Submitted: auto-replied" % what,
          lambda: (frm, d.msg.get("Auto-Submitted")))
    if tok is not None:
        check(tok.encode() in d.returned_bytes(),
              "%s: returned part holds the original header (its token)" % what)


# ---- herald queue show ----

SHOW_EVENT = re.compile(
    r"^(\S+)\s+(queued|deferred|delivered|bounced|expired|held|released|deleted)"
    r"\s+(\S+)(.*)$")


def show_events(text):
    """The history lines of `herald queue show`: [(state, recipient,
    fields dict, line)]."""
    out = []
    for line in text.splitlines():
        m = SHOW_EVENT.match(line.strip())
        if m:
            f = {k: (q if q or v.startswith('"') else v)
                 for k, v, q in harness.LOG_FIELD.findall(m.group(4))}
            out.append((m.group(2), m.group(3).strip("<>"), f, line))
    return out


def states_of(text, rcpt):
    """The states `herald queue show` lists for rcpt, in order."""
    return [s for s, r, _, _ in show_events(text) if r == rcpt]


def wait_states(h, qid, rcpt, want, timeout=5.0, last_only=False):
    """Poll `herald queue show qid` (the message log is written in
    batches) until rcpt's states are want (or, with last_only, end with
    want); return (states, the output)."""
    import time
    deadline = time.monotonic() + timeout
    while True:
        try:
            out = h.queue_show(qid)
        except RuntimeError as e:
            out = str(e)
        st = states_of(out, rcpt)
        if (st[-len(want):] == want) if last_only else (st == want):
            return st, out
        if time.monotonic() > deadline:
            return st, out
        time.sleep(0.1)
