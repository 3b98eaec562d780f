/*
 * fuzz - what every fuzz target (fuzz_<name>.c) defines and what
 * fuzz_main.c, the bounded driver, calls.
 */
#ifndef HERALD_TESTS_FUZZ_H
#define HERALD_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* The libFuzzer entry point: one input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Inputs to start from (and to mutate in the bounded driver). */
extern const char *const fuzz_seeds[];
extern const size_t fuzz_nseeds;

/* CHECK - an invariant of the code under test; abort so both drivers see it */
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

#endif
