/*
 * cmd_misc.c - `herald config dump` and `herald version`.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "herald_version.h"

int
cmd_config_dump(struct cli *c, int argc, char **argv)
{
	if (argc != 1)
		return cli_usage_error(c, "unexpected argument '%s'", argv[1]);
	conf_dump(&c->conf, stdout);
	return 0;
}

int
cmd_version(struct cli *c, int argc, char **argv)
{
	(void)c;
	(void)argv;
	(void)argc;
	printf("herald %s\n", HERALD_VERSION);
	return 0;
}
