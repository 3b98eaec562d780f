-- 002_delivery - the message log: every state change of every recipient.
--
-- One row per event (deferred, delivered, bounced, expired, held,
-- released, deleted, dsn), written by the delivery engine in batches.
-- The spool holds what is still to be done; this table holds what
-- happened, and survives the spool file.  account_id has no foreign key:
-- mail received on the MX listener belongs to no account (0), and the
-- history of a deleted account's mail is removed with it by the account
-- deletion itself.  at is unix milliseconds, next_at unix seconds.
CREATE TABLE delivery_events (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL,
	queue_id TEXT NOT NULL,
	rcpt_idx INTEGER NOT NULL,
	recipient TEXT NOT NULL,
	state TEXT NOT NULL,
	at INTEGER NOT NULL,
	attempt INTEGER NOT NULL,
	next_at INTEGER NOT NULL DEFAULT 0,
	relay TEXT NOT NULL DEFAULT '',
	reply TEXT NOT NULL DEFAULT '',
	tls TEXT NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX delivery_events_queue ON delivery_events (queue_id, id);
CREATE INDEX delivery_events_account ON delivery_events (account_id, at);
