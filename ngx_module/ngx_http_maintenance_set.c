/*
 * ngx_http_maintenance_set.c: the handlers ("set" of ngx_command_t) of the
 * directives but the Redis ones: names, paths, scopes, pages, bypasses,
 * health and status; the files they read at load.
 */

#include "ngx_http_maintenance_module.h"


#define NGX_HTTP_MAINTENANCE_PAGE_MAX     (1024 * 1024)
#define NGX_HTTP_MAINTENANCE_SECRET_MAX   4096
#define NGX_HTTP_MAINTENANCE_TOKEN_MIN    16
#define NGX_HTTP_MAINTENANCE_POLL_MIN     50


static ngx_int_t ngx_http_maintenance_read_file(ngx_conf_t *cf,
    ngx_str_t *path, size_t max, ngx_str_t *out);
static ngx_int_t ngx_http_maintenance_register_scope(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf, ngx_str_t *name);


/* maintenance_prefix, maintenance_node_id: a name of mig_name_valid() */

char *
ngx_http_maintenance_set_name(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    char        err[128];
    ngx_str_t  *field, *value;

    field = (ngx_str_t *) (p + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (mig_name_valid((char *) value[1].data, value[1].len, err, sizeof(err))
        != MIG_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maintenance: invalid name \"%V\": %s",
                           &value[1], err);
        return NGX_CONF_ERROR;
    }

    *field = value[1];

    return NGX_CONF_OK;
}


/* a path resolved against the prefix, as nginx does for pid and logs */

char *
ngx_http_maintenance_set_path(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t  *field, *value;

    field = (ngx_str_t *) (p + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    *field = value[1];

    if (field->len == 0) {
        return "needs a path";
    }

    if (ngx_conf_full_name(cf->cycle, field, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* maintenance_poll: checked where it is set, so the error names it */

char *
ngx_http_maintenance_set_poll(ngx_conf_t *cf, void *post, void *data)
{
    ngx_msec_t  *ms = data;

    ngx_str_t  *value;

    if (*ms >= NGX_HTTP_MAINTENANCE_POLL_MIN) {
        return NGX_CONF_OK;
    }

    value = cf->args->elts;

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "maintenance: \"%V\" must be at least %dms, not \"%V\"",
                       &value[0], NGX_HTTP_MAINTENANCE_POLL_MIN, &value[1]);

    return NGX_CONF_ERROR;
}


/*
 * ngx_conf_set_enum_slot() with the message of ngx_conf_set_flag_slot():
 * the directive and every allowed value are named.
 */

char *
ngx_http_maintenance_set_enum(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    u_char            *last, *q, buf[256];
    ngx_str_t         *value;
    ngx_uint_t        *np, i;
    ngx_conf_enum_t   *e;

    np = (ngx_uint_t *) (p + cmd->offset);

    if (*np != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;
    e = cmd->post;

    for (i = 0; e[i].name.len; i++) {
        if (e[i].name.len == value[1].len
            && ngx_strcasecmp(e[i].name.data, value[1].data) == 0)
        {
            *np = e[i].value;
            return NGX_CONF_OK;
        }
    }

    q = buf;
    last = buf + sizeof(buf) - 1;

    for (i = 0; e[i].name.len; i++) {
        q = ngx_slprintf(q, last, "%s\"%V\"",
                         i == 0 ? "" : e[i + 1].name.len ? ", " : " or ",
                         &e[i].name);
    }

    *q = '\0';

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid value \"%V\" in \"%V\" directive, "
                       "it must be %s", &value[1], &cmd->name, buf);

    return NGX_CONF_ERROR;
}


char *
ngx_http_maintenance_set_scope(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maintenance_loc_conf_t *mlcf = conf;

    char                               err[128];
    ngx_int_t                          n;
    ngx_str_t                         *value;
    ngx_http_maintenance_main_conf_t  *mmcf;

    if (mlcf->scope != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (mig_scope_valid((char *) value[1].data, value[1].len, err,
                        sizeof(err))
        != MIG_OK)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maintenance: invalid scope \"%V\": %s",
                           &value[1], err);
        return NGX_CONF_ERROR;
    }

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_maintenance_module);

    n = ngx_http_maintenance_register_scope(cf, mmcf, &value[1]);
    if (n == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    mlcf->scope = n;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_maintenance_register_scope(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf, ngx_str_t *name)
{
    ngx_str_t   *s;
    ngx_uint_t   i;

    s = mmcf->scopes.elts;

    for (i = 0; i < mmcf->scopes.nelts; i++) {
        if (s[i].len == name->len
            && ngx_strncmp(s[i].data, name->data, name->len) == 0)
        {
            return i;
        }
    }

    if (mmcf->scopes.nelts >= NGX_HTTP_MAINTENANCE_MAX_SCOPES) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maintenance: too many scopes, at most %d",
                           NGX_HTTP_MAINTENANCE_MAX_SCOPES);
        return NGX_ERROR;
    }

    s = ngx_array_push(&mmcf->scopes);
    if (s == NULL) {
        return NGX_ERROR;
    }

    *s = *name;

    return mmcf->scopes.nelts - 1;
}


char *
ngx_http_maintenance_set_page(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t  *field, *value, path;

    field = (ngx_str_t *) (p + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    value = cf->args->elts;
    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_maintenance_read_file(cf, &path,
                                       NGX_HTTP_MAINTENANCE_PAGE_MAX, field)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_maintenance_set_bypass_cidr(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_maintenance_loc_conf_t *mlcf = conf;

    ngx_int_t    rc;
    ngx_str_t   *value;
    ngx_cidr_t  *cidr;

    value = cf->args->elts;

    if (mlcf->bypass_cidr == NGX_CONF_UNSET_PTR) {
        mlcf->bypass_cidr = ngx_array_create(cf->pool, 2, sizeof(ngx_cidr_t));
        if (mlcf->bypass_cidr == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    cidr = ngx_array_push(mlcf->bypass_cidr);
    if (cidr == NULL) {
        return NGX_CONF_ERROR;
    }

    rc = ngx_ptocidr(&value[1], cidr);

    if (rc == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maintenance: invalid CIDR \"%V\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (rc == NGX_DONE) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "low address bits of %V are meaningless",
                           &value[1]);
    }

    return NGX_CONF_OK;
}


/* the secret is read here, once; it is never logged */

char *
ngx_http_maintenance_set_bypass_token(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_maintenance_loc_conf_t *mlcf = conf;

    u_char                             c;
    ngx_str_t                         *value, path, *t;
    ngx_http_maintenance_main_conf_t  *mmcf;

    if (mlcf->bypass_token.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* "off": data set, len 0, so that the merge does not inherit */

    if (ngx_strcmp(value[1].data, "off") == 0) {
        mlcf->bypass_token.data = (u_char *) "";
        mlcf->bypass_token.len = 0;
        return NGX_CONF_OK;
    }

    path = value[1];

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    t = &mlcf->bypass_token;

    if (ngx_http_maintenance_read_file(cf, &path,
                                       NGX_HTTP_MAINTENANCE_SECRET_MAX, t)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    while (t->len) {
        c = t->data[t->len - 1];

        if (c != '\n' && c != '\r' && c != ' ' && c != '\t') {
            break;
        }

        t->len--;
    }

    if (t->len < NGX_HTTP_MAINTENANCE_TOKEN_MIN) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maintenance: the bypass token in \"%V\" is "
                           "shorter than %d bytes", &path,
                           NGX_HTTP_MAINTENANCE_TOKEN_MIN);
        return NGX_CONF_ERROR;
    }

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_maintenance_module);
    mmcf->bypass_tokens = 1;

    return NGX_CONF_OK;
}


char *
ngx_http_maintenance_set_health(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maintenance_loc_conf_t *mlcf = conf;

    ngx_str_t                 *value;
    ngx_http_core_loc_conf_t  *clcf;

    if (mlcf->health != NGX_HTTP_MAINTENANCE_HEALTH_NONE || mlcf->status) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 1) {
        mlcf->health = NGX_HTTP_MAINTENANCE_HEALTH;

    } else if (ngx_strcmp(value[1].data, "drain") == 0) {
        mlcf->health = NGX_HTTP_MAINTENANCE_HEALTH_DRAIN;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maintenance: invalid parameter \"%V\", "
                           "expected \"drain\"", &value[1]);
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_maintenance_health_handler;

    return NGX_CONF_OK;
}


char *
ngx_http_maintenance_set_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maintenance_loc_conf_t *mlcf = conf;

    ngx_http_core_loc_conf_t  *clcf;

    if (mlcf->health != NGX_HTTP_MAINTENANCE_HEALTH_NONE || mlcf->status) {
        return "is duplicate";
    }

    mlcf->status = 1;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_maintenance_status_handler;

    return NGX_CONF_OK;
}


/* reads a whole file into cf->pool, NUL-terminated; errors name the file */

static ngx_int_t
ngx_http_maintenance_read_file(ngx_conf_t *cf, ngx_str_t *path, size_t max,
    ngx_str_t *out)
{
    u_char           *buf;
    off_t             size;
    ssize_t           n;
    ngx_fd_t          fd;
    ngx_int_t         rc;
    ngx_file_t        file;
    ngx_file_info_t   fi;

    rc = NGX_ERROR;

    fd = ngx_open_file(path->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", path);
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.fd = fd;
    file.name = *path;
    file.log = cf->log;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%V\" failed", path);
        goto done;
    }

    size = ngx_file_size(&fi);

    if (!ngx_is_file(&fi) || size < 0 || (size_t) size > max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maintenance: \"%V\" is not a regular file of "
                           "at most %uz bytes", path, max);
        goto done;
    }

    buf = ngx_pnalloc(cf->pool, (size_t) size + 1);
    if (buf == NULL) {
        goto done;
    }

    n = ngx_read_file(&file, buf, (size_t) size, 0);

    if (n == NGX_ERROR) {
        goto done;
    }

    if (n != (ssize_t) size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           ngx_read_file_n " \"%V\" returned only "
                           "%z bytes instead of %O", path, n, size);
        goto done;
    }

    buf[n] = '\0';

    out->data = buf;
    out->len = n;

    rc = NGX_OK;

done:

    if (ngx_close_file(fd) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_ALERT, cf, ngx_errno,
                           ngx_close_file_n " \"%V\" failed", path);
    }

    return rc;
}


/* a password from a file read at load: one line, NUL-terminated */

ngx_int_t
ngx_http_maintenance_set_secret_file(ngx_conf_t *cf, ngx_str_t *path,
    ngx_str_t *out)
{
    if (ngx_conf_full_name(cf->cycle, path, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_maintenance_read_file(cf, path,
                                       NGX_HTTP_MAINTENANCE_SECRET_MAX, out)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    while (out->len
           && (out->data[out->len - 1] == '\n'
               || out->data[out->len - 1] == '\r'))
    {
        out->len--;
    }

    if (out->len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "maintenance: password file \"%V\" is empty",
                           path);
        return NGX_ERROR;
    }

    out->data[out->len] = '\0';

    return NGX_OK;
}
