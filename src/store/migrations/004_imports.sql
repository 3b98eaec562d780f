-- 004_imports - custom field values on the contact, list tags, saved
-- segments, import and export jobs, database sources and API keys.
--
-- Custom field values move from one row per value (contact_fields) to
-- one JSON object per contact (contacts.attrs, like listmonk's attribs):
-- an import writes one row per contact instead of one per value, and a
-- segment reads json_extract(c.attrs, '$.name').  The fields table still
-- types them: text and one_of are JSON strings, number a JSON number,
-- date unix seconds (a JSON integer), boolean true/false.  Nothing wrote
-- contact_fields before this migration.
DROP TABLE contact_fields;
-- (no json_valid() CHECK: the database runs with trusted_schema off, and
-- store.c writes only what it built or checked)
ALTER TABLE contacts ADD COLUMN attrs TEXT NOT NULL DEFAULT '{}';
-- the import job that created the contact: a duplicate later in the same
-- file is merged into it whatever the job's mode
ALTER TABLE contacts ADD COLUMN import_job INTEGER;
-- listing contacts by address prefix ("search") uses the UNIQUE index

-- tags: a JSON array of strings
ALTER TABLE lists ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';

CREATE TABLE segments (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
	query TEXT NOT NULL CHECK (length(query) BETWEEN 1 AND 4096),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	UNIQUE (account_id, name)
) STRICT;

-- A PostgreSQL database an account imports from.  conninfo has no
-- password; password_box is the password sealed with the node's secret
-- key (libsodium secretbox: nonce || box, hex), NULL when there is none.
CREATE TABLE db_sources (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
	conninfo TEXT NOT NULL,
	password_box TEXT,
	created_at INTEGER NOT NULL,
	UNIQUE (account_id, name)
) STRICT;

-- An import: where from (a file under the data directory, or a database
-- source and query), how (options: JSON), and how far it got.  rows_done
-- counts records of the source consumed and is committed in the same
-- transaction as their contacts, so a resumed job skips exactly those.
-- runner: 'server' jobs are resumed by the server at start; 'cli' jobs by
-- `herald import --resume ID`.
CREATE TABLE import_jobs (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	list_id INTEGER REFERENCES lists(id) ON DELETE SET NULL,
	state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'cancelling',
		'cancelled', 'done', 'failed')),
	runner TEXT NOT NULL CHECK (runner IN ('server', 'cli')),
	format TEXT NOT NULL CHECK (format IN ('csv', 'tsv', 'vcard', 'jsonl',
		'postgresql', 'suppressions')),
	source TEXT NOT NULL,
	source_id INTEGER REFERENCES db_sources(id) ON DELETE SET NULL,
	options TEXT NOT NULL DEFAULT '{}',
	rows_done INTEGER NOT NULL DEFAULT 0,
	created INTEGER NOT NULL DEFAULT 0,
	updated INTEGER NOT NULL DEFAULT 0,
	skipped INTEGER NOT NULL DEFAULT 0,
	errors INTEGER NOT NULL DEFAULT 0,
	bytes_done INTEGER NOT NULL DEFAULT 0,
	bytes_total INTEGER NOT NULL DEFAULT 0,
	error TEXT,
	created_at INTEGER NOT NULL,
	started_at INTEGER,
	updated_at INTEGER NOT NULL,
	finished_at INTEGER
) STRICT;
CREATE INDEX import_jobs_account ON import_jobs (account_id, id);
CREATE INDEX import_jobs_state ON import_jobs (state);

-- The first bad rows of a job (line and reason), at most
-- import.max_errors_kept of them; the count is import_jobs.errors.
CREATE TABLE import_errors (
	job_id INTEGER NOT NULL REFERENCES import_jobs(id) ON DELETE CASCADE,
	line INTEGER NOT NULL,
	reason TEXT NOT NULL,
	PRIMARY KEY (job_id, line, reason)
) STRICT, WITHOUT ROWID;

-- API keys: the key is "hk_" || prefix || "_" || secret; only the
-- keyed hash of the whole key is kept.  account_id NULL: an operator's
-- key (scope admin) for the whole node.
CREATE TABLE api_keys (
	id INTEGER PRIMARY KEY,
	account_id INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
	name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 128),
	prefix TEXT NOT NULL UNIQUE CHECK (length(prefix) = 12),
	secret_hash TEXT NOT NULL CHECK (length(secret_hash) = 64),
	scopes TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	last_used_at INTEGER,
	revoked_at INTEGER
) STRICT;
CREATE INDEX api_keys_account ON api_keys (account_id);

-- subscriptions without a rowid: the primary key is the table, so a new
-- subscription writes two b-trees (table, list index) instead of three
CREATE TABLE subscriptions_new (
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
) STRICT, WITHOUT ROWID;
INSERT INTO subscriptions_new SELECT contact_id, list_id, status,
	created_at, updated_at, consent_source, consent_ip, consent_at
	FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_new RENAME TO subscriptions;
CREATE INDEX subscriptions_list ON subscriptions (list_id, status);

-- Segments on "created" scan the account's contacts through the
-- (account_id, email) index like every other condition on a contact's
-- own columns; a second index on every contact cost an import a fifth
-- of its time.
DROP INDEX contacts_account_created;
