/* mta.c: being written */
