/* control.c: being written */
