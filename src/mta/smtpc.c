/* smtpc.c: being written */
