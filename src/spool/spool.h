/*
 * spool - the durable message store of one node.
 *
 * A message is one file, <spool>/queue/<queue id>:
 *
 *   HERALD-SPOOL 1 00000000000000005120\n     magic, state, message size
 *   id 0mb1f3k9z2q4x7c8\n                    envelope lines (envelope.h)
 *   ...
 *   \n                                        end of the envelope
 *   <message octets, CRLF lines, dot-unstuffed, with Herald's added
 *    header fields first>
 *
 * The state is 0 while the message is written and 1 once committed.
 * Writing: spool_msg_new() creates the file in queue/ and writes, in
 * state 0 with a size of zero, the first line and the envelope;
 * spool_msg_write() appends message bytes through a write buffer;
 * spool_msg_commit() writes "1 <size>" over "0 <zeros>" in one pwrite
 * and hands the file to the committer thread.  The committer makes whole
 * batches durable at once (group commit: one syncfs(2), or one
 * fdatasync(2) per file and one fsync(2) of the directory) and then
 * calls each message's callback.  Only then may the caller say 250.
 * Writing in place, with no rename, keeps the queue directory's lock
 * out of the hot path (one directory operation per message, not two).
 *
 * Recovery (spool_open): a file still in state 0 was never committed,
 * so never acknowledged: it is removed.  A file in state 1 whose size
 * field does not match its length, or whose envelope does not parse, was
 * committed but not yet synced when the machine stopped, so it was never
 * acknowledged either: it is moved to corrupt/ and logged.
 *
 * Invariant: a commit callback with error 0 means the bytes, the envelope
 * and the directory entry are on stable storage.
 */
#ifndef HERALD_SPOOL_SPOOL_H
#define HERALD_SPOOL_SPOOL_H

#include <stdint.h>
#include <sys/types.h>

#include "mail/envelope.h"

enum spool_sync { SPOOL_SYNC_FDATASYNC, SPOOL_SYNC_SYNCFS };

struct spool_config {
	int sync;		  /* enum spool_sync */
	int64_t commit_max_batch; /* messages per sync at most */
	uint64_t write_buffer; /* bytes buffered per message before write(2) */
};

struct spool;
struct spool_msg;

/*
 * spool_commit_cb - called once per committed message, from the
 * committer thread (never from the caller's thread, never before
 * spool_msg_commit returns).  error is 0 when the message is durable,
 * otherwise an errno value; on error the message has been removed.
 */
typedef void spool_commit_cb(void *arg, int error);

/*
 * spool_open - open (creating if needed) the spool at dir, recover it as
 * described above and start the committer thread.  Returns NULL with
 * *error_r on failure.  recover: 0 to skip recovery (read-only users
 * such as `herald queue list` while the server runs).
 */
struct spool *spool_open(const char *dir, const struct spool_config *cfg,
    int recover, const char **error_r);
/* spool_close - stop the committer after it has finished its queue */
void spool_close(struct spool **sp);

/*
 * spool_msg_new - start a message with envelope env (env->id must be
 * set).  Returns NULL with *error_r when the file cannot be created.
 */
struct spool_msg *spool_msg_new(
    struct spool *sp, const struct envelope *env, const char **error_r);
/* spool_msg_write - append n message bytes; 0, or -1 (errno kept) */
int spool_msg_write(struct spool_msg *m, const void *p, size_t n);
/* spool_msg_size - message bytes written so far */
uint64_t spool_msg_size(const struct spool_msg *m);
/* spool_msg_abort - discard the message and its file; *mp becomes NULL */
void spool_msg_abort(struct spool_msg **mp);
/*
 * spool_msg_commit - finish the message and queue it for group commit;
 * takes ownership of *mp (set to NULL).  cb runs later on the committer
 * thread.  Returns 0, or -1 when the message could not be finished (the
 * file is removed and cb is not called).
 */
int spool_msg_commit(struct spool_msg **mp, spool_commit_cb *cb, void *arg);

/*
 * spool_read - read the envelope of the queue file at path into env
 * (initialized by the caller) and the offset where the message starts.
 * Returns 0, or -1 with *error_r when the file is not a complete spool
 * file.
 */
int spool_read(const char *path, struct envelope *env, off_t *body_off_r,
    const char **error_r);

/*
 * spool_foreach - call cb for each complete message in <dir>/queue, in
 * queue id order; stops when cb returns non-zero and returns that value.
 */
int spool_foreach(const char *dir,
    int (*cb)(void *arg, const char *path, const struct envelope *env),
    void *arg, const char **error_r);

/*
 * spool_hook - told, on the committer thread, of each message made
 * durable (before its commit callback).  The delivery engine uses it to
 * learn of new mail; it must only hand the id over, not block.
 */
typedef void spool_hook(void *arg, const char *id);
/* spool_set_hook - install hook (NULL to remove) */
void spool_set_hook(struct spool *sp, spool_hook *hook, void *arg);
/* spool_path - the queue file of id (malloc'd) */
char *spool_path(const struct spool *sp, const char *id);
/*
 * spool_remove - remove the queue file of a finished message (not
 * durable: a file that comes back after a crash is delivered again,
 * which at-least-once delivery allows).  0, or -1 (logged).
 */
int spool_remove(struct spool *sp, const char *id);
/* spool_dir - the directory given to spool_open */
const char *spool_dir(const struct spool *sp);

#endif
