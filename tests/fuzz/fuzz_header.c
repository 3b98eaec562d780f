/*
 * fuzz_header - header_field_value(), header_has_field() and
 * header_addr_domains() on arbitrary bytes.  Checks that the two field
 * lookups agree and that every domain returned is normalized.  See
 * fuzz_main.c for how to run it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/address.h"
#include "mail/header.h"
#include "fuzz.h"

const char *const fuzz_seeds[] = {
	"From: Alice <alice@example.com>\r\nSubject: hi\r\n there\r\n",
	"From: \"Joe Q. Public\" <john.q.public@example.com>\r\n",
	"From: Mary Smith <mary@x.test>, jdoe@example.org, Who? "
	"<one@y.test>\r\n",
	"From: <boss@nil.test>, \"Giant; \\\"Big\\\" Box\" "
	"<sysservices@example.net>\r\n",
	"From: A Group:Ed Jones <c@a.test>,joe@where.test,John "
	"<jdoe@one.test>;\r\n",
	"From: Undisclosed recipients:;\n",
	"From: Pete(A nice \\) chap) <pete(his account)@silly.test(his "
	"host)>\n",
	"From: (Empty list)(start)Hidden recipients  :(nobody(that I know))  "
	";\n",
	"From: Mary Smith <@node.test,@node2.test:mary@example.net>\n",
	"From: jdoe@machine(comment).  example\n",
	"From: \"δ\" <δοκιμή@παράδειγμα.δοκιμή>\r\n",
	"From: user@bücher.example, u@[192.0.2.1], v@[IPv6:::1]\r\n",
	"From: =?UTF-8?B?w4FsdmFybw==?= <a@example.com>\r\nX: y\r\n\r\nbody",
	"Subject: x\r\nFrom : a..b@docomo.ne.jp\r\n",
};
const size_t fuzz_nseeds = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);

static void
domains(const char *value)
{
	char **d = NULL;
	size_t n = 0;
	const char *error = NULL;

	if (header_addr_domains(value, &d, &n, &error) < 0) {
		CHECK(error != NULL && error[0] != '\0');
		return;
	}
	CHECK(n <= HEADER_ADDR_MAX);
	CHECK((n == 0) == (d == NULL));
	for (size_t i = 0; i < n; i++) {
		char *again;

		CHECK(d[i][0] != '\0');
		CHECK(mail_domain_normalize(d[i], &again, &error) == 0);
		CHECK(strcmp(again, d[i]) == 0);
		free(again);
	}
	header_domains_free(d, n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const names[] = { "From", "subject", "X", "Sender" };
	const char *hdr = (const char *)data;
	char *copy;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		char *v = header_field_value(hdr, size, names[i]);

		CHECK((v != NULL) == header_has_field(hdr, size, names[i]));
		if (v != NULL) {
			CHECK(strlen(v) <= size);
			domains(v);
			free(v);
		}
	}
	copy = malloc(size + 1);
	CHECK(copy != NULL);
	memcpy(copy, data, size);
	copy[size] = '\0';
	domains(copy);
	free(copy);
	return 0;
}
