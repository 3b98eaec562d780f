-- 001_init - accounts and what the SMTP relay needs to decide who may send.
--
-- SQLite dialect.  store_migrate() runs this inside one transaction and
-- records it in schema_migrations.  Every row of account data carries
-- account_id, with ON DELETE CASCADE, so deleting an account deletes all
-- that belongs to it.  Timestamps are unix seconds.  Tables are STRICT so
-- a value of the wrong type is an error, not a silent conversion.

CREATE TABLE meta (
	key TEXT PRIMARY KEY NOT NULL,
	value TEXT NOT NULL
) STRICT;

CREATE TABLE accounts (
	id INTEGER PRIMARY KEY,
	name TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 64),
	created_at INTEGER NOT NULL,
	disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1))
) STRICT;

-- password_hash: an argon2id string from libsodium's crypto_pwhash_str.
CREATE TABLE users (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	email TEXT NOT NULL,
	password_hash TEXT NOT NULL CHECK (password_hash LIKE '$argon2id$%'),
	role TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (account_id, email)
) STRICT;

-- username is unique across all accounts (SMTP AUTH names no account);
-- a revoked credential keeps its name so that it is never reused.
-- secret_hash: hex keyed BLAKE2b-256 of the secret (store_secret_hash).
CREATE TABLE smtp_credentials (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	username TEXT NOT NULL UNIQUE,
	secret_hash TEXT NOT NULL CHECK (length(secret_hash) = 64),
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
) STRICT;
CREATE INDEX smtp_credentials_account ON smtp_credentials (account_id);

-- A domain belongs to at most one account.
CREATE TABLE sender_domains (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	domain TEXT NOT NULL UNIQUE CHECK (domain = lower(domain)),
	created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX sender_domains_account ON sender_domains (account_id);

-- cidr: canonical "address/prefix" (store_relay_ip_add).
CREATE TABLE relay_ips (
	id INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	cidr TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	UNIQUE (account_id, cidr)
) STRICT;
