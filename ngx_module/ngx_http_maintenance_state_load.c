/*
 * ngx_http_maintenance_state_load.c: the state file at configuration load
 * and start: its directory checked, the file read into a new zone, and the
 * one parser of its lines (the writer's merge uses it too).
 */

#include "ngx_http_maintenance_module.h"

#include <grp.h>
#include <pwd.h>
#include <sys/wait.h>

#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif


static ngx_err_t ngx_http_maintenance_state_file_access(ngx_conf_t *cf,
    u_char *dir, const char *user, ngx_uid_t uid, ngx_gid_t gid);
static ngx_int_t ngx_http_maintenance_state_file_line(
    ngx_http_maintenance_main_conf_t *mmcf, ngx_http_maintenance_shctx_t *sh,
    u_char *p, size_t len, ngx_log_t *log);


#if (NGX_THREADS)

/*
 * The pool "aio threads" uses; added at configuration load when there is
 * none ("thread_pool default threads=N;" sizes it).
 */
ngx_str_t  ngx_http_maintenance_pool_name = ngx_string("default");

#endif


/*
 * At configuration load (nginx -t too): the workers must be able to write
 * the file's directory, or a restart during an incident with Redis down
 * comes back from a stale file.  Checked as the workers' user: as root, in
 * a child that takes their uid, gid and groups, so that ACLs and read-only
 * mounts count as they will for them.  Also declares nginx's default
 * thread pool, where worker 0 writes the file.
 */

ngx_int_t
ngx_http_maintenance_state_file_conf(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf)
{
    u_char           *dir;
    ngx_uid_t         uid;
    ngx_gid_t         gid;
    ngx_err_t         err;
    const char       *user;
    struct group     *grp;
    struct passwd    *pwd;
    ngx_file_info_t   fi;
    ngx_core_conf_t  *ccf;

    if (mmcf->state_file.len == 0) {
        return NGX_OK;
    }

#if (NGX_THREADS)
    if (ngx_thread_pool_add(cf, &ngx_http_maintenance_pool_name) == NULL) {
        return NGX_ERROR;
    }
#endif

    dir = ngx_http_maintenance_state_file_dir(cf->pool, &mmcf->state_file);
    if (dir == NULL) {
        return NGX_ERROR;
    }

    /*
     * The workers' user as nginx will set it: as root, "user" or nginx's
     * default (the core's configuration is finished after the http block:
     * a "user" below it is not known yet, the default is checked); else,
     * or with "master_process off", this process's.
     */

    uid = geteuid();
    gid = getegid();
    user = NULL;

    ccf = (ngx_core_conf_t *) ngx_get_conf(cf->cycle->conf_ctx,
                                           ngx_core_module);

    if (uid == 0 && ccf->master != 0) {
        if (ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT) {
            user = ccf->username;
            uid = ccf->user;
            gid = ccf->group;

        } else {
            pwd = getpwnam(NGX_USER);
            grp = getgrnam(NGX_GROUP);

            if (pwd == NULL || grp == NULL) {
                /* nginx itself says so when it sets the default */
                return NGX_OK;
            }

            user = NGX_USER;
            uid = pwd->pw_uid;
            gid = grp->gr_gid;
        }
    }

    if (user == NULL) {
        pwd = getpwuid(uid);
        user = (pwd && pwd->pw_name) ? pwd->pw_name : "(this process's)";
    }

    if (ngx_file_info(dir, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, ngx_errno,
                      "maintenance: maintenance_state_file \"%V\": "
                      "directory \"%s\" cannot be used: create it for the "
                      "workers' user (install -d -o %s \"%s\")",
                      &mmcf->state_file, dir, user, dir);
        return NGX_ERROR;
    }

    if (!ngx_is_dir(&fi)) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "maintenance: maintenance_state_file \"%V\": \"%s\" "
                      "is not a directory", &mmcf->state_file, dir);
        return NGX_ERROR;
    }

    if (uid == geteuid()) {
        err = (access((char *) dir, W_OK|X_OK) == -1) ? ngx_errno : 0;

    } else {
        err = ngx_http_maintenance_state_file_access(cf, dir, user, uid, gid);
    }

    if (err == 0) {
        return NGX_OK;
    }

    ngx_log_error(NGX_LOG_EMERG, cf->log, err,
                  "maintenance: maintenance_state_file \"%V\": directory "
                  "\"%s\" is not writable by user \"%s\", the workers' "
                  "user: give the file a directory that user can write",
                  &mmcf->state_file, dir, user);

    return NGX_ERROR;
}


/* access(W_OK|X_OK) as the workers' user, in a child; 0 or the errno */

static ngx_err_t
ngx_http_maintenance_state_file_access(ngx_conf_t *cf, u_char *dir,
    const char *user, ngx_uid_t uid, ngx_gid_t gid)
{
    int        status;
    ngx_pid_t  pid;
    ngx_err_t  err;

    pid = fork();

    if (pid == -1) {
        err = ngx_errno;
        ngx_log_error(NGX_LOG_WARN, cf->log, err,
                      "maintenance: fork() failed: cannot check that user "
                      "\"%s\" can write \"%s\"", user, dir);
        return 0;
    }

    if (pid == 0) {
        if (setgid(gid) == -1 || initgroups(user, gid) == -1
            || setuid(uid) == -1)
        {
            _exit(255);
        }

        if (access((char *) dir, W_OK|X_OK) == 0) {
            _exit(0);
        }

        err = ngx_errno;
        _exit((err > 0 && err < 255) ? err : 254);
    }

    while (waitpid(pid, &status, 0) == -1) {
        err = ngx_errno;

        if (err != NGX_EINTR) {
            ngx_log_error(NGX_LOG_WARN, cf->log, err,
                          "maintenance: waitpid() failed: cannot check "
                          "that user \"%s\" can write \"%s\"", user, dir);
            return 0;
        }
    }

    if (!WIFEXITED(status) || WEXITSTATUS(status) == 255) {
        ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                      "maintenance: cannot check as user \"%s\" that it "
                      "can write \"%s\"", user, dir);
        return 0;
    }

    return WEXITSTATUS(status);
}


/* the directory of an absolute path, NUL-terminated */

u_char *
ngx_http_maintenance_state_file_dir(ngx_pool_t *pool, ngx_str_t *path)
{
    u_char  *dir, *p;

    dir = ngx_pnalloc(pool, path->len + 1);
    if (dir == NULL) {
        return NULL;
    }

    ngx_memcpy(dir, path->data, path->len);

    for (p = dir + path->len; p > dir && *(p - 1) != '/'; p--) {
        /* void */
    }

    if (p <= dir + 1) {
        /* "/file" or no slash: the root, or the current directory */
        p = dir + 1;
        dir[0] = (path->data[0] == '/') ? '/' : '.';
    } else {
        p--;
    }

    *p = '\0';

    return dir;
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
    u_char                      *buf, *p, *eol, *last;
    ssize_t                     n;
    ngx_fd_t                    fd;
    ngx_err_t                   err;
    ngx_file_info_t             fi;
    ngx_http_maintenance_ctx_t  *shctx;

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
    ngx_http_maintenance_shctx_t *sh, u_char *p, size_t len, ngx_log_t *log)
{
    ngx_str_t                          *name;
    ngx_uint_t                          i;
    ngx_http_maintenance_state_line_t   l;
    ngx_http_maintenance_scope_sh_t    *ssh;

    if (ngx_http_maintenance_state_file_parse(p, len, &l) != NGX_OK) {
        return NGX_ERROR;
    }

    name = mmcf->scopes.elts;

    for (i = 0; i < mmcf->scopes.nelts; i++) {
        if (name[i].len == l.len
            && ngx_strncmp(name[i].data, l.name, l.len) == 0)
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
    ssh->state.mode = l.mode;
    ssh->state.epoch = l.epoch;
    ssh->state.have_epoch = 1;
    ssh->state.retry_after = (uint32_t) l.retry_after;
    ssh->state.since = l.since;
    ssh->seen = 1;
    ssh->lost = 0;

    ssh->on = (l.mode == MIG_MODE_ON);
    ssh->epoch = (ngx_atomic_uint_t) l.epoch;
    ssh->retry_after = (ngx_atomic_uint_t) l.retry_after;
    ssh->source = NGX_HTTP_MAINTENANCE_SRC_STATE_FILE;

    ngx_log_error(NGX_LOG_ERR, log, 0,
                  "maintenance: scope \"%V\" restored from the state file: "
                  "mode %s, epoch %uL", &name[i], mig_mode_str(l.mode),
                  l.epoch);

    return NGX_OK;
}


/*
 * One line of the file, "scope mode epoch retry_after since", into l (its
 * name points into the line).  The one parser: the load at start, and the
 * merge before a write (on the pool's thread: touches nothing else).
 */

ngx_int_t
ngx_http_maintenance_state_file_parse(u_char *p, size_t len,
    ngx_http_maintenance_state_line_t *l)
{
    u_char      *f[5], *end, *q;
    size_t       fl[5];
    ngx_uint_t   k;

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

    l->name = f[0];
    l->len = fl[0];

    if (fl[1] == 2 && ngx_strncmp(f[1], "on", 2) == 0) {
        l->mode = MIG_MODE_ON;

    } else if (fl[1] == 3 && ngx_strncmp(f[1], "off", 3) == 0) {
        l->mode = MIG_MODE_OFF;

    } else {
        return NGX_ERROR;
    }

    if (mig_parse_u64((char *) f[2], fl[2], UINT64_MAX, &l->epoch) != MIG_OK
        || mig_parse_u64((char *) f[3], fl[3], MIG_RETRY_AFTER_MAX,
                         &l->retry_after)
           != MIG_OK
        || mig_parse_i64((char *) f[4], fl[4], &l->since) != MIG_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}
