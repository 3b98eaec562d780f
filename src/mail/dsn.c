/* dsn.c: being written */
