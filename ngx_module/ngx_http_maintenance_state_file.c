/*
 * ngx_http_maintenance_state_file.c: the files worker 0 and the master
 * read and write: the override file (break glass) and the state file.
 */

#include "ngx_http_maintenance_module.h"


#define NGX_HTTP_MAINTENANCE_STATE_FILE_MAX  65536


static ngx_int_t ngx_http_maintenance_state_file_line(
    ngx_http_maintenance_main_conf_t *mmcf, ngx_http_maintenance_sh_t *sh,
    u_char *p, size_t len, ngx_log_t *log);


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
 * "scope mode epoch retry_after since".  Written to a temporary file,
 * synced, renamed over the old one: a crash leaves the old or the new file,
 * never half of one.
 */

ngx_int_t
ngx_http_maintenance_state_file_write(ngx_http_maintenance_sync_t *sync)
{
    u_char                             *buf, *p, *last;
    size_t                              size;
    ssize_t                             n;
    ngx_fd_t                            fd;
    ngx_err_t                           err;
    ngx_uint_t                          i;
    const char                         *op;
    ngx_http_maintenance_main_conf_t   *mmcf;
    ngx_http_maintenance_sync_scope_t  *s;

    mmcf = sync->mmcf;

    if (mmcf->state_file.len == 0) {
        sync->state_dirty = 0;
        return NGX_OK;
    }

    size = 128 + sync->nscopes * (MIG_NAME_MAX + 4 * NGX_INT64_LEN + 8);

    buf = ngx_alloc(size, sync->log);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    p = buf;
    last = buf + size;

    p = ngx_slprintf(p, last, "# migctl maintenance state (nginx worker 0):"
                              " scope mode epoch retry_after since\n");

    for (i = 0; i < sync->nscopes; i++) {
        s = &sync->scopes[i];

        if (!s->have) {
            continue;
        }

        p = ngx_slprintf(p, last, "%V %s %uL %uD %L\n", &s->name,
                         mig_mode_str(s->base.mode), s->base.epoch,
                         s->base.retry_after, (int64_t) s->base.since);
    }

    op = ngx_open_file_n;
    err = 0;

    fd = ngx_open_file(sync->state_tmp, NGX_FILE_WRONLY, NGX_FILE_TRUNCATE,
                       NGX_FILE_DEFAULT_ACCESS);
    if (fd == NGX_INVALID_FILE) {
        err = ngx_errno;
        goto failed;
    }

    n = ngx_write_fd(fd, buf, p - buf);

    if (n != p - buf) {
        err = (n == -1) ? ngx_errno : NGX_ENOSPC;
        op = ngx_write_fd_n;
        (void) ngx_close_file(fd);
        goto failed_unlink;
    }

    if (fsync(fd) == -1) {
        err = ngx_errno;
        op = "fsync()";
        (void) ngx_close_file(fd);
        goto failed_unlink;
    }

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        err = ngx_errno;
        op = ngx_close_file_n;
        goto failed_unlink;
    }

    if (ngx_rename_file(sync->state_tmp, mmcf->state_file.data)
        == NGX_FILE_ERROR)
    {
        err = ngx_errno;
        op = ngx_rename_file_n;
        goto failed_unlink;
    }

    ngx_free(buf);

    if (sync->state_err) {
        ngx_log_error(NGX_LOG_ERR, sync->log, 0,
                      "maintenance: state file \"%V\" written again",
                      &mmcf->state_file);
        sync->state_err = 0;
    }

    sync->state_dirty = 0;

    return NGX_OK;

failed_unlink:

    (void) ngx_delete_file(sync->state_tmp);

failed:

    ngx_free(buf);

    /* stays dirty: the next tick tries again, logged once */

    if (!sync->state_err) {
        ngx_log_error(NGX_LOG_ERR, sync->log, err,
                      "maintenance: cannot write state file \"%V\": %s "
                      "\"%s\" failed", &mmcf->state_file, op,
                      sync->state_tmp);
        sync->state_err = 1;
    }

    return NGX_ERROR;
}


/*
 * Called by the master when the zone is created (a cold start, not a
 * reload): scopes come back in the mode the node last knew, source
 * state_file, until Redis says otherwise.  A missing file is a first start;
 * a damaged line is skipped with a warning; neither stops nginx.  A scope
 * already seen in the zone is left alone.
 */

ngx_int_t
ngx_http_maintenance_state_file_load(ngx_cycle_t *cycle,
    ngx_http_maintenance_main_conf_t *mmcf)
{
    u_char                        *buf, *p, *eol, *last;
    ssize_t                        n;
    ngx_fd_t                       fd;
    ngx_err_t                      err;
    ngx_file_info_t                fi;
    ngx_http_maintenance_shctx_t  *shctx;

    if (mmcf->state_file.len == 0 || mmcf->shm_zone == NULL
        || mmcf->slots == NULL)
    {
        return NGX_OK;
    }

    shctx = mmcf->shm_zone->data;

    fd = ngx_open_file(mmcf->state_file.data, NGX_FILE_RDONLY, NGX_FILE_OPEN,
                       0);
    if (fd == NGX_INVALID_FILE) {
        err = ngx_errno;

        if (err != NGX_ENOENT) {
            ngx_log_error(NGX_LOG_ERR, cycle->log, err,
                          "maintenance: cannot open state file \"%V\"",
                          &mmcf->state_file);
        }

        return NGX_OK;
    }

    buf = NULL;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ERR, cycle->log, ngx_errno,
                      "maintenance: cannot stat state file \"%V\"",
                      &mmcf->state_file);
        goto done;
    }

    if (ngx_file_size(&fi) > NGX_HTTP_MAINTENANCE_STATE_FILE_MAX) {
        ngx_log_error(NGX_LOG_ERR, cycle->log, 0,
                      "maintenance: state file \"%V\" is larger than %d "
                      "bytes, ignored", &mmcf->state_file,
                      NGX_HTTP_MAINTENANCE_STATE_FILE_MAX);
        goto done;
    }

    buf = ngx_alloc(NGX_HTTP_MAINTENANCE_STATE_FILE_MAX + 1, cycle->log);
    if (buf == NULL) {
        goto done;
    }

    n = ngx_read_fd(fd, buf, NGX_HTTP_MAINTENANCE_STATE_FILE_MAX);
    if (n == -1) {
        ngx_log_error(NGX_LOG_ERR, cycle->log, ngx_errno,
                      "maintenance: cannot read state file \"%V\"",
                      &mmcf->state_file);
        goto done;
    }

    last = buf + n;

    ngx_shmtx_lock(&shctx->shpool->mutex);

    for (p = buf; p < last; p = eol + 1) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        if (eol == p || *p == '#') {
            continue;
        }

        if (ngx_http_maintenance_state_file_line(mmcf, shctx->sh, p, eol - p,
                                                 cycle->log)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_WARN, cycle->log, 0,
                          "maintenance: state file \"%V\": line \"%*s\" "
                          "skipped", &mmcf->state_file,
                          (size_t) ngx_min(eol - p, 80), p);
        }
    }

    ngx_shmtx_unlock(&shctx->shpool->mutex);

done:

    if (buf) {
        ngx_free(buf);
    }

    (void) ngx_close_file(fd);

    return NGX_OK;
}


/* "scope mode epoch retry_after since"; called under the zone's mutex */

static ngx_int_t
ngx_http_maintenance_state_file_line(ngx_http_maintenance_main_conf_t *mmcf,
    ngx_http_maintenance_sh_t *sh, u_char *p, size_t len, ngx_log_t *log)
{
    u_char                           *f[5], *end, *q;
    size_t                            fl[5];
    int64_t                           since;
    uint64_t                          epoch, retry;
    ngx_str_t                        *name;
    ngx_uint_t                        i, k;
    mig_mode_e                        mode;
    ngx_http_maintenance_scope_sh_t  *ssh;

    end = p + len;
    q = p;

    for (k = 0; k < 5; k++) {
        while (q < end && *q == ' ') {
            q++;
        }

        f[k] = q;

        while (q < end && *q != ' ') {
            q++;
        }

        fl[k] = q - f[k];

        if (fl[k] == 0) {
            return NGX_ERROR;
        }
    }

    while (q < end && (*q == ' ' || *q == '\r')) {
        q++;
    }

    if (q != end
        || mig_name_valid((char *) f[0], fl[0], NULL, 0) != MIG_OK)
    {
        return NGX_ERROR;
    }

    if (fl[1] == 2 && ngx_strncmp(f[1], "on", 2) == 0) {
        mode = MIG_MODE_ON;

    } else if (fl[1] == 3 && ngx_strncmp(f[1], "off", 3) == 0) {
        mode = MIG_MODE_OFF;

    } else {
        return NGX_ERROR;
    }

    if (mig_parse_u64((char *) f[2], fl[2], UINT64_MAX, &epoch) != MIG_OK
        || mig_parse_u64((char *) f[3], fl[3], MIG_RETRY_AFTER_MAX, &retry)
           != MIG_OK
        || mig_parse_i64((char *) f[4], fl[4], &since) != MIG_OK)
    {
        return NGX_ERROR;
    }

    name = mmcf->scopes.elts;

    for (i = 0; i < mmcf->scopes.nelts; i++) {
        if (name[i].len == fl[0]
            && ngx_strncmp(name[i].data, f[0], fl[0]) == 0)
        {
            break;
        }
    }

    if (i == mmcf->scopes.nelts) {
        /* a scope no longer configured */
        return NGX_OK;
    }

    ssh = &sh->scopes[mmcf->slots[i]];

    if (ssh->seen) {
        return NGX_OK;
    }

    mig_state_init(&ssh->state);
    ssh->state.mode = mode;
    ssh->state.epoch = epoch;
    ssh->state.have_epoch = 1;
    ssh->state.retry_after = (uint32_t) retry;
    ssh->state.since = since;
    ssh->seen = 1;
    ssh->lost = 0;

    ssh->on = (mode == MIG_MODE_ON);
    ssh->epoch = (ngx_atomic_uint_t) epoch;
    ssh->retry_after = (ngx_atomic_uint_t) retry;
    ssh->source = NGX_HTTP_MAINTENANCE_SRC_STATE_FILE;

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "maintenance: scope \"%V\" restored from the state file: "
                  "mode %s, epoch %uL", &name[i], mig_mode_str(mode), epoch);

    return NGX_OK;
}
