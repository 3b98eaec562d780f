/* dkim.c: being written */
