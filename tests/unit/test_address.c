/*
 * test_address - table-driven tests of mail/address: RFC 5321 paths,
 * quoting, literals, source routes, IDN and SMTPUTF8, length limits and
 * the exact error for each way a path can be wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mail/address.h"
#include "support/table_check.h"

#define U8 MAIL_ADDR_ALLOW_UTF8
#define NB MAIL_ADDR_ALLOW_NOBRACKETS
#define ND MAIL_ADDR_ALLOW_NODOMAIN

#define QUOTED MAIL_ADDR_QUOTED
#define LITERAL MAIL_ADDR_LITERAL
#define UTF8 MAIL_ADDR_UTF8
#define ROUTE MAIL_ADDR_ROUTE
#define NULLP MAIL_ADDR_NULL

/* A 64-octet local part and 63-octet labels for the limit cases. */
#define L64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define L63 "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
/* 63+1+63+1+63+1+61 = 253 octets */
#define D253                                                                   \
	L63 "." L63 "." L63                                                    \
	    ".ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

struct ok_case {
	const char *in;
	unsigned opts;
	const char *local;
	const char *domain;
	const char *ascii;
	unsigned flags;
	size_t consumed;
	const char *formatted;
};

static const struct ok_case ok_cases[] = {
	{ "<user@example.com>", 0, "user", "example.com", "example.com", 0, 18,
	    "user@example.com" },
	{ "<>", 0, NULL, NULL, NULL, NULLP, 2, "" },
	{ "<> SIZE=10", 0, NULL, NULL, NULL, NULLP, 2, "" },
	{ "<\"john doe\"@example.com>", 0, "john doe", "example.com",
	    "example.com", QUOTED, 24, "\"john doe\"@example.com" },
	{ "<\"a\\\"b\"@x.org>", 0, "a\"b", "x.org", "x.org", QUOTED, 14,
	    "\"a\\\"b\"@x.org" },
	{ "<\"a\\\\b\"@x.org>", 0, "a\\b", "x.org", "x.org", QUOTED, 14,
	    "\"a\\\\b\"@x.org" },
	{ "<\"\\a\"@x.org>", 0, "a", "x.org", "x.org", QUOTED, 12, "a@x.org" },
	{ "<\"abc\"@example.com>", 0, "abc", "example.com", "example.com",
	    QUOTED, 19, "abc@example.com" },
	{ "<\"\"@example.com>", 0, "", "example.com", "example.com", QUOTED, 16,
	    "\"\"@example.com" },
	{ "<\"a..b\"@example.com>", 0, "a..b", "example.com", "example.com",
	    QUOTED, 20, "\"a..b\"@example.com" },
	{ "<\".a\"@example.com>", 0, ".a", "example.com", "example.com", QUOTED,
	    18, "\".a\"@example.com" },
	{ "<\"a@b\"@example.com>", 0, "a@b", "example.com", "example.com",
	    QUOTED, 19, "\"a@b\"@example.com" },
	{ "<user+tag@sub.example.co.uk>", 0, "user+tag", "sub.example.co.uk",
	    "sub.example.co.uk", 0, 28, "user+tag@sub.example.co.uk" },
	{ "<!#$%&'*+-/=?^_`{|}~@example.com>", 0, "!#$%&'*+-/=?^_`{|}~",
	    "example.com", "example.com", 0, 33,
	    "!#$%&'*+-/=?^_`{|}~@example.com" },
	{ "<first.middle.last@example.com>", 0, "first.middle.last",
	    "example.com", "example.com", 0, 31,
	    "first.middle.last@example.com" },
	{ "<user%other@inbound>", 0, "user%other", "inbound", "inbound", 0, 20,
	    "user%other@inbound" },
	{ "<a!b@c>", 0, "a!b", "c", "c", 0, 7, "a!b@c" },
	{ "<User@Example.COM>", 0, "User", "Example.COM", "example.com", 0, 18,
	    "User@Example.COM" },
	{ "<user@1.2.3.4>", 0, "user", "1.2.3.4", "1.2.3.4", 0, 14,
	    "user@1.2.3.4" },
	{ "<x@a-b.c-d9>", 0, "x", "a-b.c-d9", "a-b.c-d9", 0, 12, "x@a-b.c-d9" },
	{ "<user@[192.0.2.1]>", 0, "user", "[192.0.2.1]", "[192.0.2.1]",
	    LITERAL, 18, "user@[192.0.2.1]" },
	{ "<user@[IPv6:2001:DB8::1]>", 0, "user", "[IPv6:2001:DB8::1]",
	    "[ipv6:2001:db8::1]", LITERAL, 25, "user@[IPv6:2001:DB8::1]" },
	{ "<user@[IPv6:::ffff:192.0.2.1]>", 0, "user",
	    "[IPv6:::ffff:192.0.2.1]", "[ipv6:::ffff:192.0.2.1]", LITERAL, 30,
	    "user@[IPv6:::ffff:192.0.2.1]" },
	{ "<@route.example:user@example.com>", 0, "user", "example.com",
	    "example.com", ROUTE, 33, "user@example.com" },
	{ "<@a.example,@b.example:user@c.example>", 0, "user", "c.example",
	    "c.example", ROUTE, 38, "user@c.example" },
	{ "<@[1.2.3.4]:user@c.example>", 0, "user", "c.example", "c.example",
	    ROUTE, 27, "user@c.example" },
	{ "<user@xn--bcher-kva.example>", 0, "user", "xn--bcher-kva.example",
	    "xn--bcher-kva.example", 0, 28, "user@xn--bcher-kva.example" },
	{ "<user@XN--BCHER-KVA.Example>", 0, "user", "XN--BCHER-KVA.Example",
	    "xn--bcher-kva.example", 0, 28, "user@XN--BCHER-KVA.Example" },
	{ "<user@bücher.example>", U8, "user", "bücher.example",
	    "xn--bcher-kva.example", UTF8, 22, "user@bücher.example" },
	{ "<user@BÜCHER.example>", U8, "user", "BÜCHER.example",
	    "xn--bcher-kva.example", UTF8, 22, "user@BÜCHER.example" },
	{ "<δοκιμή@παράδειγμα.δοκιμή>", U8, "δοκιμή", "παράδειγμα.δοκιμή",
	    "xn--hxajbheg2az3al.xn--jxalpdlp", UTF8, 48,
	    "δοκιμή@παράδειγμα.δοκιμή" },
	{ "<我買@屋企.香港>", U8, "我買", "屋企.香港",
	    "xn--hoqu73a.xn--j6w193g", UTF8, 22, "我買@屋企.香港" },
	{ "<\"δ x\"@x.org>", U8, "δ x", "x.org", "x.org", QUOTED | UTF8, 14,
	    "\"δ x\"@x.org" },
	{ "<user@faß.de>", U8, "user", "faß.de", "xn--fa-hia.de", UTF8, 14,
	    "user@faß.de" },
	/* ASCII input is ASCII, whatever the opts say */
	{ "<user@example.com>", U8 | NB | ND, "user", "example.com",
	    "example.com", 0, 18, "user@example.com" },
	/* bare mailboxes (MAIL FROM:user@x) */
	{ "user@example.com", NB, "user", "example.com", "example.com", 0, 16,
	    "user@example.com" },
	{ "user@example.com SIZE=10", NB, "user", "example.com", "example.com",
	    0, 16, "user@example.com" },
	{ "\"john doe\"@example.com BODY=8BITMIME", NB, "john doe",
	    "example.com", "example.com", QUOTED, 22,
	    "\"john doe\"@example.com" },
	{ "<user@example.com> SIZE=100", NB, "user", "example.com",
	    "example.com", 0, 18, "user@example.com" },
	{ "@a.example:user@example.com", NB, "user", "example.com",
	    "example.com", ROUTE, 27, "user@example.com" },
	/* the caller looks at what follows the path */
	{ "<user@example.com>junk", 0, "user", "example.com", "example.com", 0,
	    18, "user@example.com" },
	/* RCPT TO:<Postmaster> */
	{ "<Postmaster>", ND, "Postmaster", NULL, NULL, 0, 12, "Postmaster" },
	{ "postmaster", NB | ND, "postmaster", NULL, NULL, 0, 10,
	    "postmaster" },
	{ "<\"post master\">", ND, "post master", NULL, NULL, QUOTED, 15,
	    "\"post master\"" },
	/* limits */
	{ "<" L64 "@x.org>", 0, L64, "x.org", "x.org", 0, 72, L64 "@x.org" },
	{ "<\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"@"
	  "x."
	  "org>",
	    0, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	    "x.org", "x.org", QUOTED, 72,
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@x."
	    "org" },
	{ "<a@" L63 ".org>", 0, "a", L63 ".org", L63 ".org", 0, 71,
	    "a@" L63 ".org" },
	/* path of exactly 256 octets: "<>" + "a" + "@" + 252 */
	{ "<a@" L63 "." L63 "." L63
	  ".cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc>",
	    0, "a",
	    L63 "." L63 "." L63
		".cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
	    L63 "." L63 "." L63
		".cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc",
	    0, 256,
	    "a@" L63 "." L63 "." L63
	    ".cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc" },
};

static void
test_parse_ok(void **state)
{
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		const struct ok_case *c = &ok_cases[i];
		struct mail_addr a;
		const char *error = NULL;
		size_t used = 0;
		char *f;
		int rc;

		rc = mail_addr_parse_path(
		    c->in, strlen(c->in), c->opts, &a, &used, &error);
		if (rc != 0) {
			print_error(
			    "case %zu \"%s\": failed: %s\n", i, c->in, error);
			fail();
		}
		CHECK_STR(i, c->in, "local", a.local, c->local);
		CHECK_STR(i, c->in, "domain", a.domain, c->domain);
		CHECK_STR(i, c->in, "domain_ascii", a.domain_ascii, c->ascii);
		CHECK_INT(i, c->in, "flags", a.flags, c->flags);
		CHECK_INT(i, c->in, "consumed", used, c->consumed);
		f = mail_addr_format(&a);
		CHECK_STR(i, c->in, "format", f, c->formatted);
		free(f);
		mail_addr_clear(&a);
		assert_null(a.local);
		assert_int_equal(a.flags, 0);
	}
}

struct bad_case {
	const char *in;
	unsigned opts;
	const char *error; /* exact; a trailing '*' makes it a prefix */
};

static const struct bad_case bad_cases[] = {
	{ "", 0, "empty address" },
	{ "", NB, "empty address" },
	{ " user@x.org", NB, "empty address" },
	{ "user@example.com", 0, "missing '<'" },
	{ "<", 0, "empty local part" },
	{ "<user@example.com", 0, "missing '>'" },
	{ "<user", 0, "missing '>'" },
	{ "<user>", 0, "missing '@' and domain" },
	{ "user", NB, "missing '@' and domain" },
	{ "<user@>", 0, "missing domain" },
	{ "<@>", 0, "missing domain" },
	{ "<@example.com>", 0, "invalid source route" },
	{ "<@a.example user@x.org>", 0,
	    "invalid character space in source route" },
	{ "<@a.example,user@x.org>", 0, "invalid source route" },
	{ "<@bad_route:user@x.org>", 0,
	    "invalid character '_' in source route" },
	{ "<@[1.2.3.4:user@x.org>", 0, "unterminated address literal" },
	{ "<@a.example:>", 0, "empty local part" },
	{ "<@example.com>", ND, "invalid source route" },
	{ "<.user@x.org>", 0, "local part starts with '.'" },
	{ "<user.@x.org>", 0, "local part ends with '.'" },
	{ "<us..er@x.org>", 0, "consecutive dots in local part" },
	{ "<us er@x.org>", 0, "invalid character space in local part" },
	{ "<us(er)@x.org>", 0, "invalid character '(' in local part" },
	{ "<us,er@x.org>", 0, "invalid character ',' in local part" },
	{ "<(a)@x.org>", 0, "invalid character '(' in local part" },
	{ "<a.(b)@x.org>", 0, "invalid character '(' in local part" },
	{ "<a.\x01@x.org>", 0, "invalid character 0x01 in local part" },
	{ "<user@x.org", ND, "missing '>'" },
	{ "<user@ex ample.com>", 0, "invalid character space in domain" },
	{ "<user@example.com >", 0, "invalid character space in domain" },
	{ "<user@example.com;>", 0, "invalid character ';' in domain" },
	{ "user@example.com>", NB, "invalid character '>' in domain" },
	{ "<user@example..com>", 0, "empty label in domain" },
	{ "<user@.example.com>", 0, "empty label in domain" },
	{ "<user@example.com.>", 0, "empty label in domain" },
	{ "<user@-example.com>", 0, "domain label starts or ends with '-'" },
	{ "<user@example-.com>", 0, "domain label starts or ends with '-'" },
	{ "<user@exa_mple.com>", 0, "invalid character '_' in domain" },
	{ "<user@xn--zz.example>", 0, "invalid internationalized domain: *" },
	{ "<user@b\xc3\xbc"
	  "cher.example>",
	    0, "non-ASCII address requires SMTPUTF8" },
	{ "<\xc3\xbc@x.org>", 0, "non-ASCII address requires SMTPUTF8" },
	{ "<\"\xc3\xbc\"@x.org>", 0, "non-ASCII address requires SMTPUTF8" },
	{ "<@b\xc3\xbc.example:u@x.org>", 0,
	    "non-ASCII address requires SMTPUTF8" },
	{ "<user@b\xff"
	  "cher.example>",
	    U8, "invalid UTF-8 in address" },
	{ "<\xc0\xafuser@x.org>", U8, "invalid UTF-8 in address" },
	{ "<\xed\xa0\x80@x.org>", U8, "invalid UTF-8 in address" },
	{ "<\xf4\x90\x80\x80@x.org>", U8, "invalid UTF-8 in address" },
	{ "<\xe2\x82@x.org>", U8, "invalid UTF-8 in address" },
	{ "<user@\xe2\x9d\xa4.com>", U8,
	    "invalid internationalized domain: *" },
	{ "<user@[192.0.2.256]>", 0, "invalid IPv4 address literal" },
	{ "<user@[1.2.3]>", 0, "invalid IPv4 address literal" },
	{ "<user@[IPv6:2001:db8::g]>", 0, "invalid IPv6 address literal" },
	{ "<user@[IPv6:1.2.3.4]>", 0, "invalid IPv6 address literal" },
	{ "<user@[foo:bar]>", 0, "unsupported address literal tag" },
	{ "<user@[]>", 0, "empty address literal" },
	{ "<user@[1.2.3.4>", 0, "unterminated address literal" },
	{ "<user@[1.2 .3.4]>", 0, "invalid character in address literal" },
	{ "<user@[1.2.3.4]x>", 0, "invalid character 'x' in domain" },
	{ "<\"abc@x.org>", 0, "unterminated quoted local part" },
	{ "<\"a\\\x01\"@x.org>", 0, "invalid quoted-pair in local part" },
	{ "<\"a\x01\"@x.org>", 0,
	    "invalid character 0x01 in quoted local part" },
	{ "<\"a\"b@x.org>", 0, "invalid character 'b' in local part" },
	{ "<a\"b\"@x.org>", 0, "invalid character '\"' in local part" },
	{ "<" L64 "a@x.org>", 0, "local part longer than 64 octets" },
	/* 63 characters quoted are 65 octets on the wire */
	{ "<\"" L63 "\"@x.org>", 0, "local part longer than 64 octets" },
	{ "<a@" L63 "b.org>", 0, "domain label longer than 63 octets" },
	{ "<a@" D253 ".com>", 0, "domain longer than 255 octets" },
	/* domain of 253, path of 258 */
	{ "<aa@" D253 ">", 0, "path longer than 256 octets" },
	{ "aa@" D253, NB, "path longer than 256 octets" },
};

static void
test_parse_bad(void **state)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		size_t wl = strlen(c->error);
		struct mail_addr a;
		const char *error = NULL;
		size_t used = 12345;
		int rc;

		rc = mail_addr_parse_path(
		    c->in, strlen(c->in), c->opts, &a, &used, &error);
		CHECK_INT(i, c->in, "rc", rc, -1);
		CHECK_INT(i, c->in, "consumed untouched", used, 12345);
		if (wl > 0 && c->error[wl - 1] == '*') {
			if (error == NULL ||
			    strncmp(error, c->error, wl - 1) != 0)
				CHECK_STR(i, c->in, "error", error, c->error);
		} else
			CHECK_STR(i, c->in, "error", error, c->error);
		assert_null(a.local);
		assert_null(a.domain);
		assert_null(a.domain_ascii);
		assert_int_equal(a.flags, 0);
	}
}

/* The UTF-8 error is a known pointer, so callers can pick 553 5.6.7. */
static void
test_utf8_error_pointer(void **state)
{
	struct mail_addr a;
	const char *error = NULL;
	size_t used;

	assert_int_equal(
	    mail_addr_parse_path("<ü@x.org>", 10, 0, &a, &used, &error), -1);
	assert_ptr_equal(error, mail_addr_error_utf8);
	assert_int_equal(
	    mail_addr_parse_path("<ü@x.org>", 10, U8, &a, &used, &error), 0);
	assert_string_equal(a.local, "ü");
	mail_addr_clear(&a);
}

/* NUL bytes and a len shorter than the string */
static void
test_parse_binary(void **state)
{
	static const char nul[] = "<us\0er@x.org>";
	static const char nul_dom[] = "<user@x\0.org>";
	struct mail_addr a;
	const char *error = NULL;
	size_t used;

	assert_int_equal(
	    mail_addr_parse_path(nul, sizeof(nul) - 1, 0, &a, &used, &error),
	    -1);
	assert_string_equal(error, "invalid character 0x00 in local part");
	assert_int_equal(mail_addr_parse_path(nul_dom, sizeof(nul_dom) - 1, 0,
			     &a, &used, &error),
	    -1);
	assert_string_equal(error, "invalid character 0x00 in domain");
	/* only len bytes are read */
	assert_int_equal(
	    mail_addr_parse_path("<a@b.org>", 8, 0, &a, &used, &error), -1);
	assert_string_equal(error, "missing '>'");
	assert_int_equal(
	    mail_addr_parse_path("a@b.orgXYZ", 7, NB, &a, &used, &error), 0);
	assert_string_equal(a.domain, "b.org");
	assert_int_equal(used, 7);
	mail_addr_clear(&a);
	assert_int_equal(
	    mail_addr_parse_path("<", 1, 0, &a, &used, &error), -1);
}

struct norm_case {
	const char *in;
	const char *out;   /* NULL: must fail */
	const char *error; /* when failing; trailing '*' = prefix */
};

static const struct norm_case norm_cases[] = {
	{ "example.com", "example.com", NULL },
	{ "Example.COM", "example.com", NULL },
	{ "a", "a", NULL },
	{ "123.example", "123.example", NULL },
	{ "bücher.example", "xn--bcher-kva.example", NULL },
	{ "BÜCHER.EXAMPLE", "xn--bcher-kva.example", NULL },
	{ "xn--bcher-kva.example", "xn--bcher-kva.example", NULL },
	{ "faß.de", "xn--fa-hia.de", NULL },
	{ "παράδειγμα.δοκιμή", "xn--hxajbheg2az3al.xn--jxalpdlp", NULL },
	{ "日本.jp", "xn--wgv71a.jp", NULL },
	{ "[1.2.3.4]", "[1.2.3.4]", NULL },
	{ "[IPv6:2001:DB8::A]", "[ipv6:2001:db8::a]", NULL },
	{ L63 ".com", L63 ".com", NULL },
	{ D253, D253, NULL },
	{ "", NULL, "empty domain" },
	{ ".", NULL, "empty label in domain" },
	{ "a..b", NULL, "empty label in domain" },
	{ "example.com.", NULL, "empty label in domain" },
	{ "a_b.com", NULL, "invalid character '_' in domain" },
	{ "a b.com", NULL, "invalid character space in domain" },
	{ "-a.com", NULL, "domain label starts or ends with '-'" },
	{ L63 "b.com", NULL, "domain label longer than 63 octets" },
	{ D253 ".com", NULL, "domain longer than 255 octets" },
	{ "xn--zz.example", NULL, "invalid internationalized domain: *" },
	{ "b\xff.com", NULL, "invalid UTF-8 in domain" },
	{ "a\xe2\x80\x8d"
	  "b.com",
	    NULL, "invalid internationalized domain: *" },
	{ "[1.2.3.4", NULL, "unterminated address literal" },
	{ "[300.1.1.1]", NULL, "invalid IPv4 address literal" },
	{ "[IPv6:zz]", NULL, "invalid IPv6 address literal" },
	{ "[x:y]", NULL, "unsupported address literal tag" },
	{ "[]", NULL, "empty address literal" },
	{ "[1111111111111111111111111111111111111111111111111111111111111111]",
	    NULL, "invalid IPv4 address literal" },
	{ "[IPv6:1111:1111:1111:1111:1111:1111:1111:1111:1111:1111:1111:1111:"
	  "1111]",
	    NULL, "invalid IPv6 address literal" },
	/* what UTS #46 mapping makes of the input is checked too */
	{ "a\xe3\x80\x82\xe3\x80\x82"
	  "b",
	    NULL, "empty label in domain" },
	{ "\xef\xbc\x8e"
	  "a",
	    NULL, "empty label in domain" },
	{ "a\xe3\x80\x82"
	  "b",
	    "a.b", NULL },
	{ "b\xc3\xbc_cher.example", NULL, "invalid character '_' in domain" },
};

static void
test_domain_normalize(void **state)
{
	for (size_t i = 0; i < sizeof(norm_cases) / sizeof(norm_cases[0]);
	     i++) {
		const struct norm_case *c = &norm_cases[i];
		char *out = NULL;
		const char *error = NULL;
		int rc = mail_domain_normalize(c->in, &out, &error);

		if (c->out != NULL) {
			if (rc != 0)
				print_error(
				    "case %zu \"%s\": %s\n", i, c->in, error);
			CHECK_INT(i, c->in, "rc", rc, 0);
			CHECK_STR(i, c->in, "ascii", out, c->out);
			free(out);
			continue;
		}
		CHECK_INT(i, c->in, "rc", rc, -1);
		assert_null(out);
		size_t wl = strlen(c->error);
		if (c->error[wl - 1] == '*') {
			if (error == NULL ||
			    strncmp(error, c->error, wl - 1) != 0)
				CHECK_STR(i, c->in, "error", error, c->error);
		} else
			CHECK_STR(i, c->in, "error", error, c->error);
	}
}

static void
test_utf8_valid(void **state)
{
	assert_true(mail_utf8_valid("", 0));
	assert_true(mail_utf8_valid("abc", 3));
	assert_true(mail_utf8_valid("δοκιμή", strlen("δοκιμή")));
	assert_true(mail_utf8_valid("\xf0\x9f\x98\x80", 4));  /* U+1F600 */
	assert_true(mail_utf8_valid("\xf4\x8f\xbf\xbf", 4));  /* U+10FFFF */
	assert_true(mail_utf8_valid("\xef\xbf\xbf", 3));      /* U+FFFF */
	assert_false(mail_utf8_valid("\x80", 1));	      /* lone cont. */
	assert_false(mail_utf8_valid("\xc3", 1));	      /* truncated */
	assert_false(mail_utf8_valid("\xc1\xbf", 2));	      /* overlong */
	assert_false(mail_utf8_valid("\xe0\x9f\xbf", 3));     /* overlong */
	assert_false(mail_utf8_valid("\xf0\x8f\xbf\xbf", 4)); /* overlong */
	assert_false(mail_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	assert_false(mail_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
	assert_false(mail_utf8_valid("\xf5\x80\x80\x80", 4));
	assert_false(mail_utf8_valid("\xfe", 1));
	assert_false(mail_utf8_valid("\xc3\x28", 2));
}

/* A hand-built address is quoted only when it must be. */
static void
test_format(void **state)
{
	static const struct {
		const char *local, *domain, *want;
	} cases[] = {
		{ "plain", "x.org", "plain@x.org" },
		{ "a.b", "x.org", "a.b@x.org" },
		{ "a b", "x.org", "\"a b\"@x.org" },
		{ "a\"b\\c", "x.org", "\"a\\\"b\\\\c\"@x.org" },
		{ "a.", "x.org", "\"a.\"@x.org" },
		{ "", "x.org", "\"\"@x.org" },
		{ "δ", "x.org", "δ@x.org" },
		{ "Postmaster", NULL, "Postmaster" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mail_addr a = { (char *)cases[i].local,
			(char *)cases[i].domain, NULL, 0 };
		char *f = mail_addr_format(&a);

		CHECK_STR(i, cases[i].local, "format", f, cases[i].want);
		free(f);
	}
	struct mail_addr null = { 0 };
	char *f = mail_addr_format(&null);
	assert_string_equal(f, "");
	free(f);
}

/* Whatever parses formats back into something that parses the same. */
static void
test_roundtrip(void **state)
{
	for (size_t i = 0; i < sizeof(ok_cases) / sizeof(ok_cases[0]); i++) {
		const struct ok_case *c = &ok_cases[i];
		struct mail_addr a, b;
		const char *error;
		size_t used;
		char *f, *path;

		assert_int_equal(mail_addr_parse_path(c->in, strlen(c->in),
				     c->opts, &a, &used, &error),
		    0);
		f = mail_addr_format(&a);
		path = malloc(strlen(f) + 3);
		if (path == NULL)
			abort();
		sprintf(path, "<%s>", f);
		if (mail_addr_parse_path(path, strlen(path), c->opts | ND, &b,
			&used, &error) != 0) {
			print_error("case %zu \"%s\": reparse failed: %s\n", i,
			    path, error);
			fail();
		}
		CHECK_STR(i, path, "local", b.local, a.local);
		CHECK_STR(
		    i, path, "domain_ascii", b.domain_ascii, a.domain_ascii);
		free(f);
		free(path);
		mail_addr_clear(&a);
		mail_addr_clear(&b);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_ok),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_utf8_error_pointer),
		cmocka_unit_test(test_parse_binary),
		cmocka_unit_test(test_domain_normalize),
		cmocka_unit_test(test_utf8_valid),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
