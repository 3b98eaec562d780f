/*
 * test_header - table-driven tests of mail/header: finding and unfolding
 * fields, and the domains of RFC 5322 address lists (RFC 5322 appendix A
 * examples, obs forms, groups, comments, IDN) with their exact errors.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lib/buf.h"
#include "mail/header.h"
#include "support/table_check.h"

static const char block_crlf[] =
    "Received : from x.example by y.example\r\n"
    "\tfor <a@b.example>; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    "From: Alice <alice@example.com>\r\n"
    "To: bob@example.org\r\n"
    "Subject: hello\r\n"
    "  world\r\n"
    "X-Empty:\r\n"
    "X-Folded-Empty:\r\n"
    " \r\n"
    " folded only\r\n"
    "X-Spaced:   spaced out   \r\n"
    "DKIM-Signature: v=1;\r\n"
    "\tb=abc\r\n"
    "Subject: second\r\n"
    " Cc: not a field\r\n"
    "X-Bare-CR: a\rb\r\n"
    "X-Last: no line end";

static const char block_lf[] = "From: a@b.example\n"
			       "Subject: x\n"
			       " y\n"
			       "\tz\n";

struct field_case {
	const char *block; /* NULL: block_crlf */
	const char *name;
	const char *value; /* NULL: absent */
};

static const struct field_case field_cases[] = {
	{ NULL, "From", "Alice <alice@example.com>" },
	{ NULL, "from", "Alice <alice@example.com>" },
	{ NULL, "FROM", "Alice <alice@example.com>" },
	{ NULL, "To", "bob@example.org" },
	{ NULL, "Subject", "hello  world" },
	{ NULL, "X-Empty", "" },
	{ NULL, "X-Folded-Empty", "folded only" },
	{ NULL, "X-Spaced", "spaced out" },
	{ NULL, "DKIM-Signature", "v=1;\tb=abc" },
	{ NULL, "received",
	    "from x.example by y.example\tfor <a@b.example>; "
	    "Mon, 1 Jan 2024 00:00:00 +0000" },
	{ NULL, "X-Bare-CR", "a\rb" },
	{ NULL, "X-Last", "no line end" },
	{ NULL, "Cc", NULL },  /* only on a continuation line */
	{ NULL, "Sub", NULL }, /* a prefix of a name */
	{ NULL, "Subjectx", NULL },
	{ NULL, "world", NULL },
	{ NULL, "Reply-To", NULL },
	{ NULL, "", NULL },
	{ block_lf, "From", "a@b.example" },
	{ block_lf, "subject", "x y\tz" },
	{ "", "From", NULL },
	{ "From", "From", NULL },
	{ "From:", "From", "" },
	{ "From:\r\n", "From", "" },
	{ "From \t: x", "From", "x" },
	{ " From: evil\r\nFrom: good\r\n", "From", "good" },
	{ "From\r\n: x\r\n", "From", NULL },
	{ "X: 1\r\n\r\nFrom: body\r\n", "From", NULL },
	{ "X: 1\n\nFrom: body\n", "From", NULL },
	{ "\r\nFrom: body\r\n", "From", NULL },
};

static void
test_fields(void **state)
{
	for (size_t i = 0; i < sizeof(field_cases) / sizeof(field_cases[0]);
	     i++) {
		const struct field_case *c = &field_cases[i];
		const char *b = c->block != NULL ? c->block : block_crlf;
		size_t len = strlen(b);
		char *v = header_field_value(b, len, c->name);

		CHECK_STR(i, c->name, "value", v, c->value);
		if (header_has_field(b, len, c->name) != (c->value != NULL)) {
			print_error("case %zu \"%s\": has_field disagrees\n", i,
			    c->name);
			fail();
		}
		free(v);
	}
}

/* Only len bytes are read, and NULs are data. */
static void
test_fields_binary(void **state)
{
	static const char b[] = "X: a\0b\r\nFrom: c\r\nTo: d";
	char *v;

	v = header_field_value(b, sizeof(b) - 1, "X");
	assert_string_equal(v, "a");
	free(v);
	v = header_field_value(b, sizeof(b) - 1, "From");
	assert_string_equal(v, "c");
	free(v);
	assert_true(header_has_field(b, sizeof(b) - 1, "To"));
	v = header_field_value(b, sizeof(b) - 3, "To");
	assert_string_equal(v, "");
	free(v);
	assert_false(header_has_field(b, sizeof(b) - 4, "To"));
	v = header_field_value("Subject: abc", 11, "Subject");
	assert_string_equal(v, "ab");
	free(v);
	assert_false(header_has_field("Subject: abc", 7, "Subject"));
}

struct addr_case {
	const char *value;
	const char *domains; /* comma-joined; NULL: must fail */
	const char *error;   /* when failing; trailing '*' = prefix */
};

static const struct addr_case addr_cases[] = {
	{ "alice@example.com", "example.com", NULL },
	{ "Alice <alice@Example.COM>", "example.com", NULL },
	{ "<alice@example.com>", "example.com", NULL },
	{ "\"Joe Q. Public\" <john.q.public@example.com>", "example.com",
	    NULL },
	{ "Mary Smith <mary@x.test>, jdoe@example.org, Who? <one@y.test>",
	    "x.test,example.org,y.test", NULL },
	{ "<boss@nil.test>, \"Giant; \\\"Big\\\" Box\" "
	  "<sysservices@example.net>",
	    "nil.test,example.net", NULL },
	{ "A Group:Ed Jones <c@a.test>,joe@where.test,John <jdoe@one.test>;",
	    "a.test,where.test,one.test", NULL },
	{ "Undisclosed recipients:;", "", NULL },
	{ "Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>",
	    "silly.test", NULL },
	{ "(Empty list)(start)Hidden recipients  :(nobody(that I know))  ;", "",
	    NULL },
	{ "Joe Q. Public <john.q.public@example.com>", "example.com", NULL },
	{ "Mary Smith <@node.test,@node2.test:mary@example.net>", "example.net",
	    NULL },
	{ "<@node.test,,@node2.test:mary@example.net>", "example.net", NULL },
	{ "jdoe@machine(comment).  example", "machine.example", NULL },
	{ "john . doe @ example . com", "example.com", NULL },
	{ "Foo\r\n Bar <a@b.example>", "b.example", NULL },
	{ "a@b.example, , c@d.example", "b.example,d.example", NULL },
	{ ", a@b.example,", "b.example", NULL },
	{ "G1: a@x.test;, b@y.test", "x.test,y.test", NULL },
	{ "G1: , a@x.test, ,;", "x.test", NULL },
	{ "a@b.example, a@b.example", "b.example,b.example", NULL },
	{ "user@bücher.example", "xn--bcher-kva.example", NULL },
	{ "a@BÜCHER.Example", "xn--bcher-kva.example", NULL },
	{ "\"δ\" <δοκιμή@παράδειγμα.δοκιμή>", "xn--hxajbheg2az3al.xn--jxalpdlp",
	    NULL },
	{ "Ünïcödé Name <a@b.example>", "b.example", NULL },
	{ "=?UTF-8?B?w4FsdmFybw==?= <a@example.com>", "example.com", NULL },
	{ "user@[192.0.2.1]", "[192.0.2.1]", NULL },
	{ "user@[IPv6:2001:DB8::1]", "[ipv6:2001:db8::1]", NULL },
	{ "a..b@docomo.ne.jp", "docomo.ne.jp", NULL },
	{ "a.@docomo.ne.jp", "docomo.ne.jp", NULL },
	{ "\"quoted local\"@example.com", "example.com", NULL },
	{ "\"a\".\"b\"@example.com", "example.com", NULL },
	{ "a@b.example (Alice)", "b.example", NULL },
	{ "((((nested))))a@b.example", "b.example", NULL },
	/* errors */
	{ "", NULL, "empty address list" },
	{ "   ", NULL, "empty address list" },
	{ "(comment only)", NULL, "empty address list" },
	{ ",,", NULL, "empty address list" },
	{ "alice", NULL, "mailbox without domain" },
	{ "Alice <alice>", NULL, "mailbox without domain" },
	{ "alice, bob@b.example", NULL, "mailbox without domain" },
	{ "alice@", NULL, "missing domain at end of list" },
	{ "alice@,b@c.example", NULL, "missing domain before ','" },
	{ "alice@example..com", NULL, "empty label in domain before '.'" },
	{ "alice@example.com.", NULL, "empty label in domain at end of list" },
	{ "Alice <alice@example.com", NULL, "missing '>' at end of list" },
	{ "<>", NULL, "empty address <>" },
	{ "Alice <>", NULL, "empty address <>" },
	{ "Alice alice@example.com", NULL,
	    "local part has words not joined by '.'" },
	{ "<a b@example.com>", NULL, "local part has words not joined by '.'" },
	{ "a@b.example c@d.example", NULL, "expected ',' before 'c'" },
	{ "Alice <a@b.example> trailing", NULL,
	    "expected ',' before 'trailing'" },
	{ "<a@b.example>>", NULL, "expected ',' before '>'" },
	{ "a@b.example;", NULL, "expected ',' before ';'" },
	{ "G1: a@x.test; b@y.test", NULL, "expected ',' before 'b'" },
	{ "\"unterminated <a@b.example>", NULL, "unterminated quoted string" },
	{ "Alice (comment <a@b.example>", NULL, "unterminated comment" },
	{ "a@[1.2.3.4", NULL, "unterminated domain literal" },
	{ "a@[1.2[3.4]", NULL, "'[' inside a domain literal" },
	{ "G: a@b.example", NULL, "missing ';' at end of group" },
	{ "G: a@b.example,", NULL, "missing ';' at end of group" },
	{ "G:", NULL, "missing ';' at end of group" },
	{ "G: a@b.example x;", NULL, "expected ',' or ';' before 'x'" },
	{ "<a,b@c.example>", NULL, "expected '@' before ','" },
	{ "<@bad_route:a@b.example>", NULL, "invalid character '_' in domain" },
	{ "G: H: a@b.example;;", NULL, "group inside a group" },
	{ ": a@b.example;", NULL, "missing address before ':'" },
	{ "G: a@b.example, :;", NULL, "missing address before ':'" },
	{ "a@b_c.example", NULL, "invalid character '_' in domain" },
	{ "a@xn--zz.example", NULL, "invalid internationalized domain: *" },
	{ "a@[300.1.1.1]", NULL, "invalid IPv4 address literal" },
	{ "a@[foo]", NULL, "invalid IPv4 address literal" },
	{ "a@b\xff.example", NULL, "invalid UTF-8 in domain" },
	{ "a\\b@example.com", NULL, "unexpected '\\'" },
	{ "a@b.example)", NULL, "unexpected ')'" },
	{ "a@b.example]", NULL, "unexpected ']'" },
	{ "a\x01@b.example", NULL, "invalid character 0x01" },
	{ "Alice <@route.example>", NULL, "invalid route before '>'" },
	{ "Alice <@route.example:>", NULL, "missing local part before '>'" },
	{ "Alice <.@b.example>", NULL, "missing local part before '@'" },
	{ "<a@b.example", NULL, "missing '>' at end of list" },
	{ "@b.example", NULL, "missing address before '@'" },
};

/* join - the domains as one comma-separated string (malloc'd) */
static char *
join(char **domains, size_t n)
{
	struct buf b = BUF_INIT;

	for (size_t i = 0; i < n; i++) {
		if (i > 0)
			buf_puts(&b, ",");
		buf_puts(&b, domains[i]);
	}
	return b.data != NULL ? b.data : strdup("");
}

static void
test_addr_domains(void **state)
{
	for (size_t i = 0; i < sizeof(addr_cases) / sizeof(addr_cases[0]);
	     i++) {
		const struct addr_case *c = &addr_cases[i];
		char **domains = (char **)1;
		size_t n = 12345;
		const char *error = NULL;
		int rc = header_addr_domains(c->value, &domains, &n, &error);

		if (c->domains != NULL) {
			if (rc != 0) {
				print_error("case %zu \"%s\": failed: %s\n", i,
				    c->value, error);
				fail();
			}
			char *j = join(domains, n);
			CHECK_STR(i, c->value, "domains", j, c->domains);
			if (n == 0)
				assert_null(domains);
			free(j);
			header_domains_free(domains, n);
			continue;
		}
		if (rc != -1) {
			print_error(
			    "case %zu \"%s\": succeeded\n", i, c->value);
			fail();
		}
		assert_ptr_equal(domains, (char **)1);
		assert_int_equal(n, 12345);
		size_t wl = strlen(c->error);
		if (c->error[wl - 1] == '*') {
			if (error == NULL ||
			    strncmp(error, c->error, wl - 1) != 0)
				CHECK_STR(
				    i, c->value, "error", error, c->error);
		} else
			CHECK_STR(i, c->value, "error", error, c->error);
	}
}

/* The limits: comment nesting and the number of mailboxes. */
static void
test_addr_limits(void **state)
{
	struct buf b = BUF_INIT;
	char **domains;
	size_t n;
	const char *error;

	for (int i = 0; i < HEADER_COMMENT_DEPTH_MAX; i++)
		buf_puts(&b, "(");
	for (int i = 0; i < HEADER_COMMENT_DEPTH_MAX; i++)
		buf_puts(&b, ")");
	buf_puts(&b, "a@b.example");
	assert_int_equal(header_addr_domains(b.data, &domains, &n, &error), 0);
	assert_int_equal(n, 1);
	header_domains_free(domains, n);
	buf_reset(&b);
	for (int i = 0; i <= HEADER_COMMENT_DEPTH_MAX; i++)
		buf_puts(&b, "(");
	buf_puts(&b, "a@b.example");
	assert_int_equal(header_addr_domains(b.data, &domains, &n, &error), -1);
	assert_string_equal(error, "comments nested too deeply");

	buf_reset(&b);
	for (int i = 0; i < HEADER_ADDR_MAX; i++)
		buf_printf(&b, "%sa%d@d%d.example", i ? "," : "", i, i);
	assert_int_equal(header_addr_domains(b.data, &domains, &n, &error), 0);
	assert_int_equal(n, HEADER_ADDR_MAX);
	assert_string_equal(domains[0], "d0.example");
	assert_string_equal(domains[HEADER_ADDR_MAX - 1], "d999.example");
	header_domains_free(domains, n);
	buf_puts(&b, ",x@y.example");
	assert_int_equal(header_addr_domains(b.data, &domains, &n, &error), -1);
	assert_string_equal(error, "more than 1000 mailboxes");
	buf_free(&b);
}

/* header_field_value feeds header_addr_domains. */
static void
test_field_then_domains(void **state)
{
	static const char b[] =
	    "Subject: x\r\n"
	    "From: \"Alice\r\n Example\" <alice@EXAMPLE.com>,\r\n"
	    "\tBob <bob@bücher.example>\r\n"
	    "\r\n";
	char *v = header_field_value(b, sizeof(b) - 1, "from");
	char **domains;
	size_t n;
	const char *error;

	assert_non_null(v);
	assert_int_equal(header_addr_domains(v, &domains, &n, &error), 0);
	assert_int_equal(n, 2);
	assert_string_equal(domains[0], "example.com");
	assert_string_equal(domains[1], "xn--bcher-kva.example");
	header_domains_free(domains, n);
	free(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_fields_binary),
		cmocka_unit_test(test_addr_domains),
		cmocka_unit_test(test_addr_limits),
		cmocka_unit_test(test_field_then_domains),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
