/*
 * table_check - comparisons for table-driven cmocka tests that name the
 * case at fault: "case 12 "<input>": domain = "x", want "y"".
 * Include after <cmocka.h>.
 */
#ifndef HERALD_TESTS_TABLE_CHECK_H
#define HERALD_TESTS_TABLE_CHECK_H

#include <stdbool.h>
#include <string.h>

/* str_eq - equal strings, or both NULL */
static inline bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

#define CHECK_STR(i, in, what, got, want)                                      \
	do {                                                                   \
		if (!str_eq((got), (want))) {                                  \
			print_error(                                           \
			    "case %zu \"%s\": %s = \"%s\", want \"%s\"\n",     \
			    (size_t)(i), (in), (what),                         \
			    (got) ? (got) : "(null)",                          \
			    (want) ? (want) : "(null)");                       \
			fail();                                                \
		}                                                              \
	} while (0)

/* Compared as 64-bit two's complement: signed and unsigned alike. */
#define CHECK_INT(i, in, what, got, want)                                      \
	do {                                                                   \
		if ((unsigned long long)(got) != (unsigned long long)(want)) { \
			print_error("case %zu \"%s\": %s = %lld, want %lld\n", \
			    (size_t)(i), (in), (what), (long long)(got),       \
			    (long long)(want));                                \
			fail();                                                \
		}                                                              \
	} while (0)

#endif
