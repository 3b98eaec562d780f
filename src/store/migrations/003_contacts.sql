-- 003_contacts - an account's mailing lists, contacts, custom fields,
-- subscriptions and suppressions.
--
-- Walls between accounts: lists, contacts, fields and suppressions carry
-- account_id with ON DELETE CASCADE; contact_fields and subscriptions
-- reach it through contacts (and lists, fields), also with ON DELETE
-- CASCADE, so deleting an account deletes all of it.  store.c keeps a
-- subscription's contact and list in the same account (it inserts with a
-- join on account_id).  The columns the segment compiler reads
-- (src/contacts/segment.c) are named as it expects.  Timestamps are unix
-- seconds.

-- optin: 'double' lists take new addresses as 'unconfirmed' until they
-- confirm.
CREATE TABLE lists (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
	description TEXT NOT NULL DEFAULT '',
	optin TEXT NOT NULL CHECK (optin IN ('single', 'double')),
	created_at INTEGER NOT NULL,
	UNIQUE (account_id, name)
) STRICT;

-- email: normalized by the caller (lower-case domain, A-labels), one
-- contact per address and account.
CREATE TABLE contacts (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	email TEXT NOT NULL CHECK (length(email) BETWEEN 3 AND 254),
	name TEXT NOT NULL DEFAULT '',
	status TEXT NOT NULL DEFAULT 'enabled'
		CHECK (status IN ('enabled', 'blocklisted')),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	UNIQUE (account_id, email)
) STRICT;
-- segments: "created within 30 days" and the like
CREATE INDEX contacts_account_created ON contacts (account_id, created_at);

-- choices: for 'one_of', the allowed values (the caller's encoding,
-- e.g. a JSON array); NULL otherwise.
CREATE TABLE fields (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
	type TEXT NOT NULL
		CHECK (type IN ('text', 'number', 'date', 'boolean', 'one_of')),
	choices TEXT,
	UNIQUE (account_id, name)
) STRICT;

-- One value per contact and field: text and one_of in value_text;
-- number, date (unix seconds) and boolean (0/1) in value_num.
CREATE TABLE contact_fields (
	contact_id INTEGER NOT NULL
		REFERENCES contacts(id) ON DELETE CASCADE,
	field_id INTEGER NOT NULL REFERENCES fields(id) ON DELETE CASCADE,
	value_text TEXT,
	value_num REAL,
	PRIMARY KEY (contact_id, field_id)
) STRICT;
-- segments: "field.city = ..." and "field.age > ..." from the field side
CREATE INDEX contact_fields_text ON contact_fields (field_id, value_text);
CREATE INDEX contact_fields_num ON contact_fields (field_id, value_num);

-- consent_*: where and when the address agreed (form, import, API),
-- kept as the proof of consent; NULL when nobody recorded any.
CREATE TABLE subscriptions (
	contact_id INTEGER NOT NULL
		REFERENCES contacts(id) ON DELETE CASCADE,
	list_id INTEGER NOT NULL REFERENCES lists(id) ON DELETE CASCADE,
	status TEXT NOT NULL CHECK (status IN
		('subscribed', 'unconfirmed', 'unsubscribed', 'bounced')),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	consent_source TEXT,
	consent_ip TEXT,
	consent_at INTEGER,
	PRIMARY KEY (contact_id, list_id)
) STRICT;
-- a list's members, and "list = ..." in segments
CREATE INDEX subscriptions_list ON subscriptions (list_id, status);

-- Addresses the account must not mail, whether or not a contact exists.
CREATE TABLE suppressions (
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	email TEXT NOT NULL,
	reason TEXT NOT NULL CHECK (reason IN
		('unsubscribed', 'hard_bounce', 'complaint', 'manual')),
	created_at INTEGER NOT NULL,
	PRIMARY KEY (account_id, email)
) STRICT;
