/* queue.c: being written */
