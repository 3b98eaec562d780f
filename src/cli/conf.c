/*
 * conf.c - the configuration table (see conf.h).
 *
 * Every setting Herald has is one row below: name, type, where it goes,
 * default, bounds, help.  Adding a setting means adding a row and a
 * field; nothing else parses configuration.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/conf.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/fsutil.h"
#include "lib/util.h"

#define OFF(f) offsetof(struct herald_conf, f)
#define KB 1024LL
#define MB (1024LL * 1024)
#define SEC 1000LL

/* Ports: the standard ones for root, unprivileged ones otherwise. */
#define LISTEN_DEFAULTS_ROOT "127.0.0.1:587", "127.0.0.1:465", "127.0.0.1:25"
#define LISTEN_DEFAULTS_USER                                                   \
	"127.0.0.1:2587", "127.0.0.1:2465", "127.0.0.1:2525"

static struct config_def defs[] = {
	{ "log.level", CONFIG_ENUM, OFF(log_level), "info", 0, 0,
	    "debug|info|warn|error", "least important log lines written" },
	{ "server.user", CONFIG_STRING, OFF(server_user), "", 0, 0, NULL,
	    "user to switch to after binding ports when started as root "
	    "(must own the data directory); empty: stay" },
	{ "store.url", CONFIG_STRING, OFF(store_url), "", 0, 0, NULL,
	    "database: a SQLite file path; empty: <data>/herald.db" },
	{ "smtpd.hostname", CONFIG_STRING, OFF(smtpd.hostname), "", 0, 0, NULL,
	    "name in the greeting, EHLO reply and Received:; empty: this "
	    "machine's name" },
	{ "smtpd.threads", CONFIG_INT, OFF(smtpd.threads), "2", 1, 64, NULL,
	    "event-loop threads serving SMTP" },
	{ "smtpd.submission_listen", CONFIG_STRING,
	    OFF(smtpd.submission_listen), NULL, 0, 0, NULL,
	    "submission with STARTTLS (RFC 6409): "
	    "host:port list; empty: off" },
	{ "smtpd.submissions_listen", CONFIG_STRING,
	    OFF(smtpd.submissions_listen), NULL, 0, 0, NULL,
	    "submission over implicit TLS (RFC 8314): host:port list; empty: "
	    "off" },
	{ "smtpd.mx_listen", CONFIG_STRING, OFF(smtpd.mx_listen), NULL, 0, 0,
	    NULL,
	    "MX: mail for the inbound domains only: host:port list; "
	    "empty: off" },
	{ "smtpd.inbound_domains", CONFIG_STRING, OFF(smtpd.inbound_domains),
	    "", 0, 0, NULL,
	    "Herald's own domains (bounces, replies), comma "
	    "separated; anyone may send to them" },
	{ "smtpd.tls_cert", CONFIG_STRING, OFF(smtpd.tls_cert), "", 0, 0, NULL,
	    "PEM certificate chain; empty: <data>/tls/cert.pem" },
	{ "smtpd.tls_key", CONFIG_STRING, OFF(smtpd.tls_key), "", 0, 0, NULL,
	    "PEM private key; empty: <data>/tls/key.pem" },
	{ "smtpd.max_message_size", CONFIG_SIZE, OFF(smtpd.max_message_size),
	    "50M", 1 * KB, 2048 * MB, NULL, "largest message accepted (SIZE)" },
	{ "smtpd.max_recipients", CONFIG_INT, OFF(smtpd.max_recipients), "1000",
	    1, 1000000, NULL, "recipients per message" },
	{ "smtpd.max_connections", CONFIG_INT, OFF(smtpd.max_connections),
	    "4000", 1, 1000000, NULL, "SMTP connections at once, in total" },
	{ "smtpd.max_connections_per_ip", CONFIG_INT,
	    OFF(smtpd.max_connections_per_ip), "50", 1, 1000000, NULL,
	    "SMTP connections at once from one client address" },
	{ "smtpd.command_line_max", CONFIG_SIZE, OFF(smtpd.command_line_max),
	    "2048", 512, 64 * KB, NULL,
	    "longest command line, without CRLF "
	    "(RFC 5321 4.5.3.1.4 minimum: 512)" },
	{ "smtpd.data_line_max", CONFIG_SIZE, OFF(smtpd.data_line_max), "1000",
	    1000, 1 * MB, NULL,
	    "longest message line, with CRLF "
	    "(RFC 5321 4.5.3.1.6: 1000)" },
	{ "smtpd.max_header_size", CONFIG_SIZE, OFF(smtpd.max_header_size),
	    "256k", 4 * KB, 64 * MB, NULL,
	    "largest header section (held in memory while a message arrives)" },
	{ "smtpd.command_timeout", CONFIG_DURATION, OFF(smtpd.command_timeout),
	    "5m", 1 * SEC, 3600 * SEC, NULL,
	    "idle time allowed between commands "
	    "(RFC 5321 4.5.3.2.7: 5 minutes)" },
	{ "smtpd.data_timeout", CONFIG_DURATION, OFF(smtpd.data_timeout), "3m",
	    1 * SEC, 3600 * SEC, NULL,
	    "idle time allowed inside DATA or BDAT "
	    "(RFC 5321 4.5.3.2.6: 3 minutes)" },
	{ "smtpd.tls_handshake_timeout", CONFIG_DURATION,
	    OFF(smtpd.tls_handshake_timeout), "30s", 1 * SEC, 600 * SEC, NULL,
	    "time allowed for a TLS handshake" },
	{ "smtpd.max_errors", CONFIG_INT, OFF(smtpd.max_errors), "10", 1, 1000,
	    NULL, "error replies before the session is closed" },
	{ "smtpd.auth_over_plaintext", CONFIG_BOOL,
	    OFF(smtpd.auth_over_plaintext), "no", 0, 0, NULL,
	    "offer AUTH before STARTTLS (never do this off loopback)" },
	{ "smtpd.auth_max_failures", CONFIG_INT, OFF(smtpd.auth_max_failures),
	    "5", 1, 1000, NULL,
	    "AUTH failures of one address or user before "
	    "a lockout" },
	{ "smtpd.auth_lockout", CONFIG_DURATION, OFF(smtpd.auth_lockout), "5m",
	    1 * SEC, 86400 * SEC, NULL,
	    "lockout after too many AUTH failures" },
	{ "smtpd.auth_fail_delay", CONFIG_DURATION, OFF(smtpd.auth_fail_delay),
	    "500ms", 0, 60 * SEC, NULL,
	    "delay before a failed AUTH reply, "
	    "doubled per failure up to 8 times" },
	{ "smtpd.greet_pause", CONFIG_DURATION, OFF(smtpd.greet_pause), "0", 0,
	    60 * SEC, NULL,
	    "wait before the greeting; clients that talk "
	    "first are refused" },
	{ "smtpd.sender_policy", CONFIG_ENUM, OFF(smtpd.sender_policy),
	    "strict", 0, 0, "strict|envelope|none",
	    "what senders an account may "
	    "use: strict = envelope sender and From: in its domains" },
	{ "smtpd.require_8bitmime", CONFIG_BOOL, OFF(smtpd.require_8bitmime),
	    "yes", 0, 0, NULL,
	    "refuse 8-bit data sent without BODY=8BITMIME "
	    "or SMTPUTF8" },
	{ "smtpd.policy_refresh", CONFIG_DURATION, OFF(smtpd.policy_refresh),
	    "250ms", 50, 3600 * SEC, NULL,
	    "how often the server checks the store "
	    "for new or revoked credentials, domains and relay addresses" },
	{ "spool.sync", CONFIG_ENUM, OFF(spool.sync), "syncfs", 0, 0,
	    "fdatasync|syncfs",
	    "how a batch of messages is made durable: "
	    "syncfs = one sync of the spool's file system per batch (fastest; "
	    "also flushes other files there), fdatasync = one per message" },
	{ "spool.commit_max_batch", CONFIG_INT, OFF(spool.commit_max_batch),
	    "1024", 1, 100000, NULL,
	    "messages made durable by one sync at most" },
	{ "spool.write_buffer", CONFIG_SIZE, OFF(spool.write_buffer), "64k",
	    4 * KB, 16 * MB, NULL,
	    "bytes buffered per incoming message before "
	    "a write" },
	{ "mta.enabled", CONFIG_BOOL, OFF(mta.enabled), "yes", 0, 0, NULL,
	    "deliver queued mail (no: only accept it)" },
	{ "mta.helo_name", CONFIG_STRING, OFF(mta.helo_name), "", 0, 0, NULL,
	    "name sent in EHLO; empty: smtpd.hostname" },
	{ "mta.smtp_port", CONFIG_INT, OFF(mta.smtp_port), "25", 1, 65535, NULL,
	    "port of MX hosts" },
	{ "mta.relayhost", CONFIG_STRING, OFF(mta.relayhost), "", 0, 0, NULL,
	    "send all mail through this host (host:port); empty: to each "
	    "domain's MX hosts" },
	{ "mta.relayhost_user", CONFIG_STRING, OFF(mta.relayhost_user), "", 0,
	    0, NULL, "AUTH user name at the relay host; empty: no AUTH" },
	{ "mta.relayhost_password", CONFIG_STRING, OFF(mta.relayhost_password),
	    "", 0, 0, NULL, "AUTH password at the relay host" },
	{ "mta.destinations", CONFIG_STRING, OFF(mta.destinations), "", 0, 0,
	    NULL,
	    "per-destination settings file (\"DOMAIN key=value ...\" "
	    "lines); empty: <data>/destinations when it exists" },
	{ "mta.tls", CONFIG_ENUM, OFF(mta.tls), "may", 0, 0,
	    "none|may|encrypt|verify",
	    "STARTTLS policy: may = when offered, encrypt = required, verify "
	    "= required with a valid certificate for the host name" },
	{ "mta.tls_ca_file", CONFIG_STRING, OFF(mta.tls_ca_file), "", 0, 0,
	    NULL, "CA certificates for tls = verify; empty: the system's" },
	{ "mta.concurrency", CONFIG_INT, OFF(mta.concurrency), "20", 1, 1000,
	    NULL, "connections to one destination at most" },
	{ "mta.initial_concurrency", CONFIG_INT, OFF(mta.initial_concurrency),
	    "5", 1, 1000, NULL,
	    "connections to a destination at first; grows by one per "
	    "delivery up to mta.concurrency, shrinks on failures" },
	{ "mta.rate", CONFIG_STRING, OFF(mta.rate), "", 0, 0, NULL,
	    "messages per destination per time (N/s, N/m, N/h); empty: no "
	    "limit" },
	{ "mta.messages_per_connection", CONFIG_INT,
	    OFF(mta.messages_per_connection), "100", 1, 100000, NULL,
	    "messages sent over one connection before it is closed" },
	{ "mta.recipients_per_message", CONFIG_INT,
	    OFF(mta.recipients_per_message), "50", 1, 1000, NULL,
	    "recipients in one transaction at most" },
	{ "mta.max_connections", CONFIG_INT, OFF(mta.max_connections), "1000",
	    1, 100000, NULL, "outbound connections at once, all destinations" },
	{ "mta.account_concurrency", CONFIG_INT, OFF(mta.account_concurrency),
	    "200", 1, 100000, NULL,
	    "deliveries of one account in progress at once" },
	{ "mta.retry_schedule", CONFIG_STRING, OFF(mta.retry_schedule),
	    "5m,10m,20m,40m,80m,160m,240m", 0, 0, NULL,
	    "waits before each new attempt after a temporary failure; the "
	    "last one repeats" },
	{ "mta.max_queue_lifetime", CONFIG_DURATION,
	    OFF(mta.max_queue_lifetime), "5d", 1 * SEC, 365 * 86400 * SEC, NULL,
	    "time after which an undelivered recipient expires" },
	{ "mta.delay_warning", CONFIG_DURATION, OFF(mta.delay_warning), "0", 0,
	    365 * 86400 * SEC, NULL,
	    "send one delay DSN after this time in the queue; 0: never" },
	{ "mta.connect_timeout", CONFIG_DURATION, OFF(mta.connect_timeout),
	    "30s", 100, 3600 * SEC, NULL, "time allowed for a TCP connect" },
	{ "mta.greeting_timeout", CONFIG_DURATION, OFF(mta.greeting_timeout),
	    "5m", 100, 3600 * SEC, NULL,
	    "time allowed for the greeting, EHLO, STARTTLS and AUTH" },
	{ "mta.command_timeout", CONFIG_DURATION, OFF(mta.command_timeout),
	    "5m", 100, 3600 * SEC, NULL,
	    "time allowed for a reply to MAIL, RCPT, DATA, RSET" },
	{ "mta.data_timeout", CONFIG_DURATION, OFF(mta.data_timeout), "10m",
	    100, 3600 * SEC, NULL,
	    "time allowed to send a message and get the final reply" },
	{ "mta.connection_cache_time", CONFIG_DURATION,
	    OFF(mta.connection_cache_time), "2s", 0, 300 * SEC, NULL,
	    "how long a connection with nothing to send is kept for more "
	    "mail to its destination; 0: close at once" },
	{ "mta.workers", CONFIG_INT, OFF(mta.workers), "2", 1, 64, NULL,
	    "threads reading, signing and bouncing messages" },
	{ "mta.dsn_max_return", CONFIG_SIZE, OFF(mta.dsn_max_return), "1M", 0,
	    1024 * MB, NULL,
	    "largest original returned whole in a DSN (RET=FULL)" },
	{ "mta.log_retention", CONFIG_DURATION, OFF(mta.log_retention), "30d",
	    0, 3650 * 86400 * SEC, NULL,
	    "how long delivery events are kept in the message log; 0: "
	    "forever" },
	{ "dns.local_data", CONFIG_STRING, OFF(mta.dns_local_data), "", 0, 0,
	    NULL,
	    "file of unbound local-zone:/local-data: lines answered "
	    "before any query" },
	{ "dns.resolv_conf", CONFIG_STRING, OFF(mta.dns_resolv_conf),
	    "/etc/resolv.conf", 0, 0, NULL,
	    "resolver to forward queries to; empty: resolve from the root" },
	{ "http.listen", CONFIG_STRING, OFF(api.listen), "127.0.0.1:8025", 0, 0,
	    NULL, "the REST API (/api/v1): host:port; empty: off" },
	{ "http.max_body", CONFIG_SIZE, OFF(api.max_body), "1M", 1 * KB,
	    1024 * MB, NULL, "largest JSON request body" },
	{ "http.max_upload", CONFIG_SIZE, OFF(api.max_upload), "256M", 1 * KB,
	    16384 * MB, NULL,
	    "largest file uploaded to POST /api/v1/imports (held in memory "
	    "while it arrives, then written to <data>/imports)" },
	{ "http.timeout", CONFIG_DURATION, OFF(api.timeout), "30s", 1 * SEC,
	    3600 * SEC, NULL,
	    "time a client may take to send a request or to read the reply; "
	    "also how long an idle keep-alive connection stays" },
	{ "http.max_connections", CONFIG_INT, OFF(api.max_connections), "256",
	    1, 100000, NULL, "open HTTP connections; more are closed" },
	{ "import.batch_rows", CONFIG_INT, OFF(api.import_batch), "50000", 1,
	    1000000, NULL,
	    "rows an import writes per transaction, sorted by address (more: "
	    "faster on large lists, more memory: about 200 bytes a row, four "
	    "batches in flight); a resumed job goes on after the last one" },
	{ "import.cache", CONFIG_SIZE, OFF(api.import_cache), "4M", 128 * KB,
	    4096 * MB, NULL, "database page cache of an import" },
	{ "import.wal", CONFIG_SIZE, OFF(api.import_wal), "200M", 1 * MB,
	    65536 * MB, NULL,
	    "write-ahead log an import lets grow before copying it into the "
	    "database (disk space, briefly; fewer copies)" },
	{ "import.errors_kept", CONFIG_INT, OFF(api.import_errors), "1000", 0,
	    1000000, NULL, "bad rows kept (line and reason) per import" },
	{ "dns.ipv6", CONFIG_BOOL, OFF(mta.dns_ipv6), "yes", 0, 0, NULL,
	    "deliver over IPv6 too (AAAA records)" },
};

static void
listen_defaults(void)
{
	static const char *const root[] = { LISTEN_DEFAULTS_ROOT };
	static const char *const user[] = { LISTEN_DEFAULTS_USER };
	const char *const *d = geteuid() == 0 ? root : user;

	for (size_t i = 0; i < NELEM(defs); i++) {
		if (strcmp(defs[i].name, "smtpd.submission_listen") == 0)
			defs[i].def = d[0];
		else if (strcmp(defs[i].name, "smtpd.submissions_listen") == 0)
			defs[i].def = d[1];
		else if (strcmp(defs[i].name, "smtpd.mx_listen") == 0)
			defs[i].def = d[2];
	}
}

int
conf_load(struct herald_conf *c, const char *data_dir, char **sets,
    size_t nsets, char *err, size_t errlen)
{
	char *path;
	int r;

	memset(c, 0, sizeof(*c));
	listen_defaults();
	config_defaults(defs, NELEM(defs), c);
	c->data_dir = xstrdup(data_dir);
	path = fs_path_join(data_dir, "herald.conf");
	r = config_load_file(defs, NELEM(defs), c, path, err, errlen);
	if (r < 0) {
		free(path);
		return -1;
	}
	c->conf_file = r == 0 ? path : (free(path), xstrdup(""));
	for (size_t i = 0; i < nsets; i++) {
		char *eq = strchr(sets[i], '='), *name;

		if (eq == NULL) {
			snprintf(err, errlen, "--set %s: expected name=value",
			    sets[i]);
			return -1;
		}
		name = xstrndup(sets[i], (size_t)(eq - sets[i]));
		r = config_set(
		    defs, NELEM(defs), c, name, eq + 1, "--set ", err, errlen);
		free(name);
		if (r < 0)
			return -1;
	}
	if (*c->store_url == '\0') {
		free(c->store_url);
		c->store_url = fs_path_join(data_dir, "herald.db");
	}
	if (*c->smtpd.tls_cert == '\0') {
		free(c->smtpd.tls_cert);
		c->smtpd.tls_cert = fs_path_join(data_dir, "tls/cert.pem");
	}
	if (*c->smtpd.tls_key == '\0') {
		free(c->smtpd.tls_key);
		c->smtpd.tls_key = fs_path_join(data_dir, "tls/key.pem");
	}
	if (*c->smtpd.hostname == '\0') {
		char host[256] = "localhost";

		gethostname(host, sizeof(host) - 1);
		free(c->smtpd.hostname);
		c->smtpd.hostname = xstrdup(host);
	}
	return 0;
}

void
conf_dump(const struct herald_conf *c, FILE *out)
{
	fprintf(out, "# data directory: %s\n# configuration file: %s\n",
	    c->data_dir, *c->conf_file ? c->conf_file : "(none)");
	config_dump(defs, NELEM(defs), c, out);
}

void
conf_free(struct herald_conf *c)
{
	config_free(defs, NELEM(defs), c);
	free(c->data_dir);
	free(c->conf_file);
}
