/*
 * ngx_http_maintenance_state_file.c: the files worker 0 reads and writes:
 * the override file (break glass) and the state file, merged and renamed.
 */

#include "ngx_http_maintenance_module.h"

#include <sys/file.h>

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif


#define NGX_HTTP_MAINTENANCE_STATE_FILE_HEAD                                 \
    "# migctl maintenance state (nginx worker 0): "                          \
    "scope mode epoch retry_after since\n"


/* a configured scope, as the writer knows it */
typedef struct {
    ngx_http_maintenance_state_line_t  ours;      /* when have */
    ngx_http_maintenance_state_line_t  file;      /* merge: the file's */
    uint64_t                           last;      /* ours, last written */
    unsigned                           have:1;
    unsigned                           have_last:1;
    unsigned                           seen:1;    /* merge: in the file */
    unsigned                           keep:1;    /* merge: file's wins */
} ngx_http_maintenance_state_scope_t;


/*
 * One state file write at a time, worker 0's (cycle->pool).  The event
 * loop fills scopes and buf and starts it; while busy only the writer
 * touches the job.
 */
struct ngx_http_maintenance_state_job_s {
    ngx_http_maintenance_sync_t       *sync;
    ngx_http_maintenance_state_scope_t  *scopes;  /* sync->nscopes */
    u_char                            *buf;       /* our text */
    size_t                             size;
    size_t                             len;
    u_char                            *file;      /* the file, as read */
    u_char                            *out;       /* the merged text */
    size_t                             out_size;
    size_t                             out_len;
    u_char                            *tmp;       /* "<file>.tmp.<pid>" */
    u_char                            *dir;       /* the file's directory */
    ngx_uint_t                         busy;

    /* the writer's result */
    ngx_err_t                          err;
    const char                        *op;
    u_char                            *target;
    ngx_uint_t                         not_owner;
    ngx_uint_t                         damaged;   /* replaced, unparsable */

#if (NGX_THREADS)
    ngx_thread_pool_t                 *pool;
    ngx_thread_task_t                 *task;
#endif
};


static void ngx_http_maintenance_state_file_fill(
    ngx_http_maintenance_state_job_t *job);
static u_char *ngx_http_maintenance_state_file_print(u_char *p, u_char *last,
    ngx_http_maintenance_state_line_t *l);
static ngx_uint_t ngx_http_maintenance_state_file_merge(
    ngx_http_maintenance_state_job_t *job, u_char *file, size_t n);
static void ngx_http_maintenance_state_file_run(void *data, ngx_log_t *log);
static ngx_int_t ngx_http_maintenance_state_file_put(
    ngx_http_maintenance_state_job_t *job, u_char *text, size_t len);
#if (NGX_THREADS)
static void ngx_http_maintenance_state_file_done(ngx_event_t *ev);
#endif
static void ngx_http_maintenance_state_file_result(
    ngx_http_maintenance_state_job_t *job);
static ngx_fd_t ngx_http_maintenance_state_file_lock(u_char *dir);
static void ngx_http_maintenance_state_file_sweep(
    ngx_http_maintenance_state_job_t *job, ngx_log_t *log);


/*
 * The break-glass switch: a file that exists.  A stat error other than
 * "not there" (permissions on the directory) counts as present: someone
 * tried to pull the switch, and failing closed is what they asked for.
 */

void
ngx_http_maintenance_check_override(ngx_http_maintenance_sync_t *sync)
{
    ngx_err_t                          err;
    ngx_uint_t                         present;
    ngx_file_info_t                    fi;
    ngx_http_maintenance_main_conf_t  *mmcf;

    mmcf = sync->mmcf;

    if (mmcf->override_file.len == 0) {
        return;
    }

    present = 1;

    if (ngx_file_info(mmcf->override_file.data, &fi) == NGX_FILE_ERROR) {
        err = ngx_errno;

        if (err == NGX_ENOENT || err == NGX_ENOTDIR) {
            present = 0;
            sync->override_err = 0;

        } else if (!sync->override_err) {
            ngx_log_error(NGX_LOG_ERR, sync->log, err,
                          "maintenance: cannot stat override file \"%V\", "
                          "treating it as present", &mmcf->override_file);
            sync->override_err = 1;
        }
    }

    if (present == sync->override) {
        return;
    }

    ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                  present ? "maintenance: override file \"%V\" present: "
                            "every scope in maintenance"
                          : "maintenance: override file \"%V\" removed",
                  &mmcf->override_file);

    sync->override = present;
    sync->sh->override = present;
}


/*
 * The state file: one line per scope with a known state,
 * "scope mode epoch retry_after since".  Only the zone's owner writes it,
 * as soon as a state changes: to a temporary file, synced, renamed over
 * the old one, the directory synced: a crash leaves the old or the new
 * file, never half of one.  The write runs on a thread of nginx's default
 * pool (fsync must not stall worker 0's requests); one at a time, a change
 * meanwhile is written when it ends.
 */

ngx_int_t
ngx_http_maintenance_state_file_write(ngx_http_maintenance_sync_t *sync)
{
    ngx_http_maintenance_state_job_t  *job;

    job = sync->state_job;

    if (job == NULL) {
        sync->state_dirty = 0;
        return NGX_OK;
    }

    if (!sync->state_dirty || job->busy) {
        /* busy: the end of the running write starts the next one */
        return NGX_OK;
    }

    sync->state_dirty = 0;

    if (sync->sh->owner_pid != ngx_pid) {
        /* an old worker 0: the file is the new owner's */
        return NGX_OK;
    }

    ngx_http_maintenance_state_file_fill(job);
    job->busy = 1;

#if (NGX_THREADS)

    if (job->task) {
        if (ngx_thread_task_post(job->pool, job->task) == NGX_OK) {
            return NGX_OK;
        }

        /* the pool's queue is full: write here */
    }

#endif

    ngx_http_maintenance_state_file_run(job, sync->log);
    ngx_http_maintenance_state_file_result(job);

    return job->err ? NGX_ERROR : NGX_OK;
}


/*
 * A new owner (a start, a reload, a respawn): the file it inherits may be
 * stale (a write lost to a kill, an old worker 0's): merge it with the zone
 * and rewrite it when that changes it.  A blocking read of a small file,
 * before this worker serves anything.
 */

ngx_int_t
ngx_http_maintenance_state_file_init(ngx_http_maintenance_sync_t *sync,
    ngx_cycle_t *cycle)
{
    size_t                               len;
    ssize_t                              n;
    ngx_fd_t                             fd, lock;
    ngx_err_t                            err;
    ngx_uint_t                           i, known, damaged;
    ngx_http_maintenance_main_conf_t    *mmcf;
    ngx_http_maintenance_state_job_t    *job;
    ngx_http_maintenance_state_scope_t  *js;

    mmcf = sync->mmcf;

    if (mmcf->state_file.len == 0) {
        return NGX_OK;
    }

    job = ngx_pcalloc(cycle->pool, sizeof(ngx_http_maintenance_state_job_t));
    if (job == NULL) {
        return NGX_ERROR;
    }

    job->sync = sync;
    job->size = 128 + sync->nscopes * (MIG_NAME_MAX + 4 * NGX_INT64_LEN + 8);

    job->buf = ngx_pnalloc(cycle->pool, job->size);
    if (job->buf == NULL) {
        return NGX_ERROR;
    }

    job->scopes = ngx_pcalloc(cycle->pool, sync->nscopes
                              * sizeof(ngx_http_maintenance_state_scope_t));
    if (job->scopes == NULL && sync->nscopes) {
        return NGX_ERROR;
    }

    /* one byte more than the largest file read: a larger one is damaged */

    job->file = ngx_pnalloc(cycle->pool, NGX_HTTP_MAINTENANCE_STATE_FILE_MAX
                                         + 1);
    if (job->file == NULL) {
        return NGX_ERROR;
    }

    /* ours, and the file's lines kept, a newline added to its last one */

    job->out_size = job->size + NGX_HTTP_MAINTENANCE_STATE_FILE_MAX + 2;

    job->out = ngx_pnalloc(cycle->pool, job->out_size);
    if (job->out == NULL) {
        return NGX_ERROR;
    }

    len = mmcf->state_file.len + sizeof(".tmp.") - 1 + NGX_INT64_LEN + 1;

    job->tmp = ngx_pnalloc(cycle->pool, len);
    if (job->tmp == NULL) {
        return NGX_ERROR;
    }

    (void) ngx_snprintf(job->tmp, len, "%V.tmp.%P%Z", &mmcf->state_file,
                        ngx_pid);

    job->dir = ngx_http_maintenance_state_file_dir(cycle->pool,
                                                   &mmcf->state_file);
    if (job->dir == NULL) {
        return NGX_ERROR;
    }

#if (NGX_THREADS)

    job->pool = ngx_thread_pool_get(cycle, &ngx_http_maintenance_pool_name);

    if (job->pool) {
        job->task = ngx_thread_task_alloc(cycle->pool, 0);
        if (job->task == NULL) {
            return NGX_ERROR;
        }

        job->task->ctx = job;
        job->task->handler = ngx_http_maintenance_state_file_run;
        job->task->event.handler = ngx_http_maintenance_state_file_done;
        job->task->event.data = job;
        job->task->event.log = cycle->log;
    }

#endif

    sync->state_job = job;

    ngx_http_maintenance_state_file_fill(job);

    /* the zone's epochs: the order this writer knows them in */

    known = 0;

    for (i = 0; i < sync->nscopes; i++) {
        js = &job->scopes[i];
        js->last = js->ours.epoch;
        js->have_last = js->have;
        known |= js->have;
    }

    /* an old worker 0 renames before this, or not at all */

    lock = ngx_http_maintenance_state_file_lock(job->dir);

    ngx_http_maintenance_state_file_sweep(job, cycle->log);

    fd = ngx_open_file(mmcf->state_file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN,
                       0);
    if (fd == NGX_INVALID_FILE) {
        err = ngx_errno;
        n = -1;

    } else {
        n = ngx_read_fd(fd, job->file, NGX_HTTP_MAINTENANCE_STATE_FILE_MAX
                                       + 1);
        err = (n == -1) ? ngx_errno : 0;

        (void) ngx_close_file(fd);
    }

    if (lock != NGX_INVALID_FILE) {
        (void) ngx_close_file(lock);
    }

    if (err) {
        /* a first start writes once a state is known */
        sync->state_dirty = (err != NGX_ENOENT || known);
        return NGX_OK;
    }

    damaged = ngx_http_maintenance_state_file_merge(job, job->file, n);

    if (damaged
        || job->out_len != (size_t) n
        || ngx_memcmp(job->out, job->file, n) != 0)
    {
        ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                      "maintenance: state file \"%V\" differs from the "
                      "served state (a write lost to a crash, an older "
                      "writer's): rewriting it", &mmcf->state_file);
        sync->state_dirty = 1;
    }

    return NGX_OK;
}


/*
 * An exiting owner writes what it still owes (a stop, a failed write); an
 * exiting old worker 0 never writes: the file is the new owner's.  nginx
 * ran the thread pools' exit before this module's (core modules come
 * first), so a write still marked busy has run and its end is lost: write
 * again, here, where blocking no longer matters.
 */

void
ngx_http_maintenance_state_file_exit(ngx_http_maintenance_sync_t *sync)
{
    ngx_http_maintenance_state_job_t  *job;

    job = sync->state_job;

    if (job == NULL || sync->sh->owner_pid != ngx_pid) {
        return;
    }

    if (job->busy) {
        job->busy = 0;
        sync->state_dirty = 1;
    }

    if (!sync->state_dirty) {
        return;
    }

    sync->state_dirty = 0;

    ngx_http_maintenance_state_file_fill(job);
    job->busy = 1;

    ngx_http_maintenance_state_file_run(job, sync->log);
    ngx_http_maintenance_state_file_result(job);
}


/* our lines and text, from worker 0's scopes (in its event loop) */

static void
ngx_http_maintenance_state_file_fill(ngx_http_maintenance_state_job_t *job)
{
    u_char                              *p, *last;
    ngx_uint_t                           i;
    ngx_http_maintenance_sync_t         *sync;
    ngx_http_maintenance_sync_scope_t   *s;
    ngx_http_maintenance_state_scope_t  *js;

    sync = job->sync;

    p = job->buf;
    last = job->buf + job->size;

    p = ngx_slprintf(p, last, NGX_HTTP_MAINTENANCE_STATE_FILE_HEAD);

    for (i = 0; i < sync->nscopes; i++) {
        s = &sync->scopes[i];
        js = &job->scopes[i];

        js->have = s->have;

        if (!s->have) {
            continue;
        }

        js->ours.name = s->name.data;
        js->ours.len = s->name.len;
        js->ours.mode = s->base.mode;
        js->ours.epoch = s->base.epoch;
        js->ours.retry_after = s->base.retry_after;
        js->ours.since = s->base.since;

        p = ngx_http_maintenance_state_file_print(p, last, &js->ours);
    }

    job->len = p - job->buf;
}


static u_char *
ngx_http_maintenance_state_file_print(u_char *p, u_char *last,
    ngx_http_maintenance_state_line_t *l)
{
    return ngx_slprintf(p, last, "%*s %s %uL %uL %L\n", l->len, l->name,
                        mig_mode_str(l->mode), l->epoch, l->retry_after,
                        l->since);
}


/*
 * Our text merged with the file's n bytes into job->out, under the
 * directory's lock: two writers may run at once (a binary upgrade runs two
 * generations, each with its own zone and worker 0), and a lagging one
 * must not move a scope back.  Per scope the higher epoch wins (epochs
 * only grow), ours on a tie; a scope we have no state for is kept as the
 * file has it.  But an epoch lower than the one we wrote last means Redis
 * started again (a rebuilt Redis, a failover that lost writes): ours wins.
 * A file that does not parse is replaced by our text: returns 1.  Runs on
 * the pool's thread: touches only the job.
 */

static ngx_uint_t
ngx_http_maintenance_state_file_merge(ngx_http_maintenance_state_job_t *job,
    u_char *file, size_t n)
{
    u_char                              *p, *eol, *last, *o, *olast;
    ngx_uint_t                           i, k, pass, damaged;
    ngx_http_maintenance_sync_t         *sync;
    ngx_http_maintenance_state_line_t    l;
    ngx_http_maintenance_state_scope_t  *js;

    sync = job->sync;

    for (i = 0; i < sync->nscopes; i++) {
        job->scopes[i].seen = 0;
        job->scopes[i].keep = 0;
    }

    damaged = (n > NGX_HTTP_MAINTENANCE_STATE_FILE_MAX);
    last = file + (damaged ? 0 : n);

    o = job->out;
    olast = job->out + job->out_size;

    /* pass 0: which lines win; pass 1: the file's other scopes, kept */

    for (pass = 0; pass < 2 && !damaged; pass++) {

        if (pass == 1) {
            o = ngx_slprintf(o, olast, NGX_HTTP_MAINTENANCE_STATE_FILE_HEAD);

            for (i = 0; i < sync->nscopes; i++) {
                js = &job->scopes[i];

                if (js->have) {
                    o = ngx_http_maintenance_state_file_print(o, olast,
                                           js->keep ? &js->file : &js->ours);
                }
            }
        }

        for (p = file; p < last; p = eol + 1) {
            eol = ngx_strlchr(p, last, '\n');
            if (eol == NULL) {
                eol = last;
            }

            if (eol == p || *p == '#') {
                continue;
            }

            if (ngx_http_maintenance_state_file_parse(p, eol - p, &l)
                != NGX_OK)
            {
                damaged = 1;
                break;
            }

            for (k = 0; k < sync->nscopes; k++) {
                js = &job->scopes[k];

                if (js->have && js->ours.len == l.len
                    && ngx_strncmp(js->ours.name, l.name, l.len) == 0)
                {
                    break;
                }
            }

            if (k == sync->nscopes) {
                if (pass == 1) {
                    o = ngx_http_maintenance_state_file_print(o, olast, &l);
                }

                continue;
            }

            if (pass == 1) {
                continue;
            }

            if (js->seen) {
                /* a scope twice: not a file we wrote */
                damaged = 1;
                break;
            }

            js->seen = 1;

            if (js->have_last && js->ours.epoch < js->last) {
                /* Redis started again: its epochs did too */
                continue;
            }

            if (l.epoch > js->ours.epoch) {
                js->file = l;
                js->keep = 1;
            }
        }
    }

    if (damaged || o == olast) {
        ngx_memcpy(job->out, job->buf, job->len);
        job->out_len = job->len;
        return 1;
    }

    job->out_len = o - job->out;

    return 0;
}


/*
 * The write itself, on a thread of the pool (or in worker 0 without one):
 * touches only the job, the configuration and the zone's owner_pid.  The
 * owner is checked, the file read and merged with ours and renamed under
 * an flock() of the directory, which a new owner takes to compare the
 * file and the other generation's writer takes too: a worker 0 replaced by
 * a reload or a respawn cannot rename after the new one compared, and of
 * two generations' writers neither renames over a line it has not read.
 * Our text goes to the temporary file before the lock; only a merge that
 * changes it writes it again under the lock.  A kernel lock, not the
 * zone's mutex: a kill releases it, and no worker waits for the disk.
 */

static void
ngx_http_maintenance_state_file_run(void *data, ngx_log_t *log)
{
    ngx_http_maintenance_state_job_t  *job = data;

    u_char                       *path;
    ssize_t                       n;
    ngx_fd_t                      fd, file;
    ngx_err_t                     err;
    ngx_uint_t                    i;
    ngx_http_maintenance_sync_t  *sync;

    sync = job->sync;
    path = sync->mmcf->state_file.data;

    job->err = 0;
    job->op = NULL;
    job->target = job->tmp;
    job->not_owner = 0;
    job->damaged = 0;

    fd = NGX_INVALID_FILE;

    if (ngx_http_maintenance_state_file_put(job, job->buf, job->len)
        != NGX_OK)
    {
        goto failed;
    }

    /* the owner check, the merge and the rename under the directory's lock */

    job->target = job->dir;

    fd = ngx_http_maintenance_state_file_lock(job->dir);
    if (fd == NGX_INVALID_FILE) {
        job->err = ngx_errno;
        job->op = ngx_open_file_n;
        goto failed;
    }

    if (sync->sh->owner_pid != ngx_pid) {
        job->not_owner = 1;
        goto failed;
    }

    file = ngx_open_file(path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file == NGX_INVALID_FILE) {
        err = ngx_errno;
        n = 0;

        /* another error: a file we cannot read, replaced as unparsable */
        job->damaged = (err != NGX_ENOENT);

    } else {
        n = ngx_read_fd(file, job->file, NGX_HTTP_MAINTENANCE_STATE_FILE_MAX
                                         + 1);
        (void) ngx_close_file(file);

        if (n == -1) {
            n = 0;
            job->damaged = 1;
        }
    }

    if (!job->damaged) {
        job->damaged = ngx_http_maintenance_state_file_merge(job, job->file,
                                                             n);

        if (!job->damaged
            && (job->out_len != job->len
                || ngx_memcmp(job->out, job->buf, job->len) != 0))
        {
            /* a newer line from another writer, or a scope we lack */

            job->target = job->tmp;

            if (ngx_http_maintenance_state_file_put(job, job->out,
                                                    job->out_len)
                != NGX_OK)
            {
                goto failed;
            }
        }
    }

    job->target = job->dir;

    if (ngx_rename_file(job->tmp, path) == NGX_FILE_ERROR) {
        job->err = ngx_errno;
        job->op = ngx_rename_file_n;
        job->target = job->tmp;
        goto failed;
    }

    (void) flock(fd, LOCK_UN);

    for (i = 0; i < sync->nscopes; i++) {
        job->scopes[i].last = job->scopes[i].ours.epoch;
        job->scopes[i].have_last |= job->scopes[i].have;
    }

    /* the rename lasts once the directory is on disk too */

    if (fsync(fd) == -1 && ngx_errno != NGX_EINVAL) {
        /* EINVAL: a file system that cannot sync a directory */
        job->err = ngx_errno;
        job->op = "fsync()";
    }

    (void) ngx_close_file(fd);

    return;

failed:

    if (fd != NGX_INVALID_FILE) {
        (void) ngx_close_file(fd);
    }

    (void) ngx_delete_file(job->tmp);
}


/* text into the temporary file, synced and closed; job->err on failure */

static ngx_int_t
ngx_http_maintenance_state_file_put(ngx_http_maintenance_state_job_t *job,
    u_char *text, size_t len)
{
    u_char     *p, *last;
    ssize_t     n;
    ngx_fd_t    fd;
    ngx_err_t   err;

    fd = ngx_open_file(job->tmp, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE,
                       NGX_FILE_DEFAULT_ACCESS);
    if (fd == NGX_INVALID_FILE) {
        job->err = ngx_errno;
        job->op = ngx_open_file_n;
        return NGX_ERROR;
    }

    p = text;
    last = text + len;

    while (p < last) {
        n = ngx_write_fd(fd, p, last - p);

        if (n == -1) {
            err = ngx_errno;

            if (err == NGX_EINTR) {
                continue;
            }

            job->err = err;
            job->op = ngx_write_fd_n;
            goto failed;
        }

        if (n == 0) {
            job->err = NGX_ENOSPC;
            job->op = ngx_write_fd_n;
            goto failed;
        }

        p += n;
    }

    if (fsync(fd) == -1) {
        job->err = ngx_errno;
        job->op = "fsync()";
        goto failed;
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        job->err = ngx_errno;
        job->op = ngx_close_file_n;
        return NGX_ERROR;
    }

    return NGX_OK;

failed:

    (void) ngx_close_file(fd);

    return NGX_ERROR;
}


#if (NGX_THREADS)

/* in worker 0's event loop, when the pool's thread is done */

static void
ngx_http_maintenance_state_file_done(ngx_event_t *ev)
{
    ngx_http_maintenance_state_job_t  *job;

    job = ev->data;

    ngx_http_maintenance_state_file_result(job);

    if (job->err == 0 && !job->sync->exiting) {
        /* what changed while the file was written */
        (void) ngx_http_maintenance_state_file_write(job->sync);
    }
}

#endif


/*
 * A write's outcome: a failure is counted, kept in the zone for status,
 * logged once, and tried again at the next tick; a success after one
 * failures is logged once.
 */

static void
ngx_http_maintenance_state_file_result(ngx_http_maintenance_state_job_t *job)
{
    u_char                            *p, *last;
    u_char                            text[NGX_HTTP_MAINTENANCE_STATE_ERR_LEN];
    ngx_http_maintenance_shctx_t      *sh;
    ngx_http_maintenance_sync_t       *sync;
    ngx_http_maintenance_main_conf_t  *mmcf;

    sync = job->sync;
    sh = sync->sh;
    mmcf = sync->mmcf;

    job->busy = 0;

    if (job->not_owner || sh->owner_pid != ngx_pid) {
        /* an old worker 0: neither the file nor its status are its own */
        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, sync->log, 0,
                       "maintenance: not the owner any more, state file "
                       "\"%V\" left alone", &mmcf->state_file);
        return;
    }

    if (job->err == 0) {
        if (job->damaged) {
            ngx_log_error(NGX_LOG_WARN, sync->log, 0,
                          "maintenance: state file \"%V\" could not be read "
                          "or did not parse: replaced with the served state",
                          &mmcf->state_file);
        }

        if (sync->state_err) {
            ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                          "maintenance: state file \"%V\" written again",
                          &mmcf->state_file);
            sync->state_err = 0;

            ngx_shmtx_lock(&sync->shpool->mutex);
            sh->state_file_failing = 0;
            sh->state_file_error[0] = '\0';
            ngx_shmtx_unlock(&sync->shpool->mutex);
        }

        return;
    }

    /* stays dirty: the next tick tries again */

    sync->state_dirty = 1;

    last = text + sizeof(text) - 1;
    p = ngx_slprintf(text, last, "%s \"%s\" failed (%d: ", job->op,
                     job->target, job->err);
    p = ngx_strerror(job->err, p, last - p);
    p = ngx_slprintf(p, last, ")");
    *p = '\0';

    /* the reason first: a status read between never counts an error
     * without it */

    ngx_shmtx_lock(&sync->shpool->mutex);
    sh->state_file_failing = 1;
    ngx_memcpy(sh->state_file_error, text, p - text + 1);
    ngx_shmtx_unlock(&sync->shpool->mutex);

    (void) ngx_atomic_fetch_add(&sh->state_file_errors, 1);

    if (!sync->state_err) {
        ngx_log_error(NGX_LOG_ERR, sync->log, job->err,
                      "maintenance: cannot write state file \"%V\": %s "
                      "\"%s\" failed; a restart while Redis is down would "
                      "come back from a stale file", &mmcf->state_file,
                      job->op, job->target);
        sync->state_err = 1;
    }
}


/*
 * The temporary files of writes that never ended (a worker 0 killed in
 * the middle): "<file>.tmp.<pid>" but ours.  An old worker 0 still writing
 * loses nothing: it is no longer the owner, its rename would be refused.
 */

static void
ngx_http_maintenance_state_file_sweep(ngx_http_maintenance_state_job_t *job,
    ngx_log_t *log)
{
    u_char     *base, *name, *p, *last, *path;
    size_t      len, blen;
    ngx_int_t   pid;
    ngx_str_t   dname;
    ngx_dir_t   dir;
    ngx_uint_t  n;

    path = job->sync->mmcf->state_file.data;
    base = path + job->sync->mmcf->state_file.len;

    while (base > path && *(base - 1) != '/') {
        base--;
    }

    blen = ngx_strlen(base);

    dname.data = job->dir;
    dname.len = ngx_strlen(job->dir);

    if (ngx_open_dir(&dname, &dir) == NGX_ERROR) {
        return;
    }

    /* bounded: a directory shared with many files is read once, in part */

    for (n = 0; n < 10000; n++) {
        if (ngx_read_dir(&dir) == NGX_ERROR) {
            break;
        }

        name = ngx_de_name(&dir);
        len = ngx_de_namelen(&dir);

        if (len <= blen + sizeof(".tmp.") - 1
            || ngx_strncmp(name, base, blen) != 0
            || ngx_strncmp(name + blen, ".tmp.", sizeof(".tmp.") - 1) != 0)
        {
            continue;
        }

        p = name + blen + sizeof(".tmp.") - 1;
        last = name + len;

        pid = ngx_atoi(p, last - p);

        if (pid == NGX_ERROR || pid == ngx_pid) {
            continue;
        }

        if (unlinkat(dirfd(dir.dir), (char *) name, 0) == -1) {
            ngx_log_error(NGX_LOG_WARN, log, ngx_errno,
                          "maintenance: unlinkat() \"%s/%s\" failed",
                          job->dir, name);
            continue;
        }

        ngx_log_error(NGX_LOG_NOTICE, log, 0,
                      "maintenance: removed \"%s/%s\", left by a state "
                      "file write that never ended", job->dir, name);
    }

    (void) ngx_close_dir(&dir);
}


/*
 * The directory, open and flock()ed (released at close, or by the kernel
 * when the process dies).  A file system without flock() (some NFS) only
 * loses the lock, not the write.
 */

static ngx_fd_t
ngx_http_maintenance_state_file_lock(u_char *dir)
{
    ngx_fd_t  fd;

    fd = ngx_open_file(dir, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        return NGX_INVALID_FILE;
    }

    while (flock(fd, LOCK_EX) == -1 && ngx_errno == NGX_EINTR) {
        /* void */
    }

    return fd;
}
