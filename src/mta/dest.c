/* dest.c: being written */
