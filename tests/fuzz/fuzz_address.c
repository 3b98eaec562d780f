/*
 * fuzz_address - mail_addr_parse_path() with every combination of opts,
 * and mail_domain_normalize(), on arbitrary bytes.  Checks that what
 * parses formats back into a path that parses to the same address, that
 * normalizing is idempotent, and that *consumed stays inside the input.
 * See fuzz_main.c for how to run it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/address.h"
#include "fuzz.h"

const char *const fuzz_seeds[] = {
	"<user@example.com>",
	"<>",
	"<\"john doe\"@example.com>",
	"<\"a\\\"b\"@x.org>",
	"<!#$%&'*+-/=?^_`{|}~@example.com>",
	"<user@[192.0.2.1]>",
	"<user@[IPv6:2001:db8::1]>",
	"<@route.example,@b.example:user@example.com>",
	"<user%other@inbound>",
	"<δοκιμή@παράδειγμα.δοκιμή>",
	"<user@bücher.example>",
	"<user@xn--bcher-kva.example>",
	"<Postmaster>",
	"user@example.com SIZE=10",
	"<\"\"@x.org>",
	"bücher.example",
	"[IPv6:::ffff:1.2.3.4]",
};
const size_t fuzz_nseeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* check_domain - a normalized domain is ASCII lower case and a fixpoint */
static void
check_domain(const char *ascii)
{
	const char *error;
	char *again;

	for (const char *p = ascii; *p; p++)
		CHECK((unsigned char)*p > 32 && (unsigned char)*p < 127 &&
		    !(*p >= 'A' && *p <= 'Z'));
	CHECK(strlen(ascii) <= MAIL_DOMAIN_MAX);
	CHECK(mail_domain_normalize(ascii, &again, &error) == 0);
	CHECK(strcmp(again, ascii) == 0);
	free(again);
}

/* check_roundtrip - format a, wrap in <>, parse again: same address */
static void
check_roundtrip(const struct mail_addr *a, unsigned opts)
{
	struct mail_addr b;
	const char *error;
	char *f = mail_addr_format(a), *path;
	size_t used, n = strlen(f);

	path = malloc(n + 3);
	CHECK(path != NULL);
	path[0] = '<';
	memcpy(path + 1, f, n);
	path[n + 1] = '>';
	path[n + 2] = '\0';
	CHECK(mail_addr_parse_path(path, n + 2,
		  (opts & MAIL_ADDR_ALLOW_UTF8) | MAIL_ADDR_ALLOW_NODOMAIN, &b,
		  &used, &error) == 0);
	CHECK(used == n + 2);
	CHECK(str_eq(a->local, b.local));
	CHECK(str_eq(a->domain, b.domain));
	CHECK(str_eq(a->domain_ascii, b.domain_ascii));
	CHECK((a->flags &
		  (MAIL_ADDR_UTF8 | MAIL_ADDR_LITERAL | MAIL_ADDR_NULL)) ==
	    (b.flags & (MAIL_ADDR_UTF8 | MAIL_ADDR_LITERAL | MAIL_ADDR_NULL)));
	mail_addr_clear(&b);
	free(path);
	free(f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	const char *error;
	char *copy, *ascii;

	for (unsigned opts = 0; opts < 8; opts++) {
		struct mail_addr a;
		size_t used = 0;

		if (mail_addr_parse_path(s, size, opts, &a, &used, &error) <
		    0) {
			CHECK(error != NULL && error[0] != '\0');
			CHECK(a.local == NULL && a.domain == NULL);
			continue;
		}
		CHECK(used > 0 && used <= size);
		if (a.flags & MAIL_ADDR_UTF8)
			CHECK(opts & MAIL_ADDR_ALLOW_UTF8);
		if (a.local != NULL)
			CHECK(mail_utf8_valid(a.local, strlen(a.local)));
		if (a.domain == NULL)
			CHECK(a.flags & MAIL_ADDR_NULL ||
			    opts & MAIL_ADDR_ALLOW_NODOMAIN);
		if (a.domain_ascii != NULL)
			check_domain(a.domain_ascii);
		check_roundtrip(&a, opts);
		mail_addr_clear(&a);
	}
	copy = malloc(size + 1);
	CHECK(copy != NULL);
	memcpy(copy, data, size);
	copy[size] = '\0';
	if (mail_domain_normalize(copy, &ascii, &error) == 0) {
		check_domain(ascii);
		free(ascii);
	}
	free(copy);
	return 0;
}
