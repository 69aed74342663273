/*
 * ngx_http_maintenance_conf.c: the module, its directive table (the handlers
 * are in ngx_http_maintenance_set*.c) and configuration, the shared zone,
 * and the hooks that wire the gate and start worker 0.
 */

#include "ngx_http_maintenance_module.h"


static ngx_int_t ngx_http_maintenance_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_maintenance_assign_slots(
    ngx_http_maintenance_ctx_t *ctx, ngx_log_t *log);

static void *ngx_http_maintenance_create_main_conf(ngx_conf_t *cf);
static char *ngx_http_maintenance_init_main_conf(ngx_conf_t *cf, void *conf);
static void *ngx_http_maintenance_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_maintenance_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static ngx_int_t ngx_http_maintenance_init(ngx_conf_t *cf);
static ngx_int_t ngx_http_maintenance_init_module(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_maintenance_init_worker(ngx_cycle_t *cycle);
static void ngx_http_maintenance_exit_worker(ngx_cycle_t *cycle);


static ngx_conf_enum_t  ngx_http_maintenance_failure[] = {
    { ngx_string("last"), NGX_HTTP_MAINTENANCE_FAIL_LAST },
    { ngx_string("open"), NGX_HTTP_MAINTENANCE_FAIL_OPEN },
    { ngx_string("closed"), NGX_HTTP_MAINTENANCE_FAIL_CLOSED },
    { ngx_null_string, 0 }
};


/* a poll below 50ms would be a busy loop on Redis from every edge */
static ngx_conf_post_t  ngx_http_maintenance_poll_post = {
    ngx_http_maintenance_set_poll
};


static ngx_conf_num_bounds_t  ngx_http_maintenance_status_bounds = {
    ngx_conf_check_num_bounds, 400, 599
};


static ngx_conf_num_bounds_t  ngx_http_maintenance_retry_bounds = {
    ngx_conf_check_num_bounds, 0, MIG_RETRY_AFTER_MAX
};


static ngx_command_t  ngx_http_maintenance_commands[] = {

    { ngx_string("maintenance_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_maintenance_set_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maintenance_redis_sentinel"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_maintenance_set_redis_sentinel,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maintenance_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_set_name,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maintenance_main_conf_t, prefix),
      NULL },

    { ngx_string("maintenance_poll"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maintenance_main_conf_t, poll),
      &ngx_http_maintenance_poll_post },

    { ngx_string("maintenance_node_id"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_set_name,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maintenance_main_conf_t, node_id),
      NULL },

    { ngx_string("maintenance_state_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_set_path,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maintenance_main_conf_t, state_file),
      NULL },

    { ngx_string("maintenance_override_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_set_path,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maintenance_main_conf_t, override_file),
      NULL },

    { ngx_string("maintenance_redis_failure"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_set_enum,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maintenance_main_conf_t, redis_failure),
      &ngx_http_maintenance_failure },

    { ngx_string("maintenance_strict"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maintenance_main_conf_t, strict),
      NULL },

    { ngx_string("maintenance"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_maintenance_loc_conf_t, enable),
      NULL },

    { ngx_string("maintenance_scope"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_set_scope,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maintenance_page"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_set_page,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_maintenance_loc_conf_t, page),
      NULL },

    { ngx_string("maintenance_page_json"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_set_page,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_maintenance_loc_conf_t, page_json),
      NULL },

    { ngx_string("maintenance_status_code"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_maintenance_loc_conf_t, status_code),
      &ngx_http_maintenance_status_bounds },

    { ngx_string("maintenance_retry_after"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_num_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_maintenance_loc_conf_t, retry_after),
      &ngx_http_maintenance_retry_bounds },

    { ngx_string("maintenance_bypass_cidr"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_set_bypass_cidr,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maintenance_bypass_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_set_bypass_token,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maintenance_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_maintenance_set_health,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maintenance_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_maintenance_set_status,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_maintenance_module_ctx = {
    ngx_http_maintenance_add_variables,    /* preconfiguration */
    ngx_http_maintenance_init,             /* postconfiguration */

    ngx_http_maintenance_create_main_conf, /* create main configuration */
    ngx_http_maintenance_init_main_conf,   /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_maintenance_create_loc_conf,  /* create location configuration */
    ngx_http_maintenance_merge_loc_conf    /* merge location configuration */
};


ngx_module_t  ngx_http_maintenance_module = {
    NGX_MODULE_V1,
    &ngx_http_maintenance_module_ctx,      /* module context */
    ngx_http_maintenance_commands,         /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    ngx_http_maintenance_init_module,      /* init module */
    ngx_http_maintenance_init_worker,      /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_maintenance_exit_worker,      /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_maintenance_zone_name =
    ngx_string("ngx_http_maintenance");

static ngx_str_t  ngx_http_maintenance_default_scope =
    ngx_string(MIG_DEFAULT_SCOPE);

static u_char  ngx_http_maintenance_default_page[] =
"<!DOCTYPE html>" CRLF
"<html lang=\"en\">" CRLF
"<head><meta charset=\"utf-8\"><title>Down for maintenance</title>" CRLF
"<meta name=\"robots\" content=\"noindex\"></head>" CRLF
"<body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\">" CRLF
"<h1>Down for maintenance</h1>" CRLF
"<p>We are working on the service right now. "
"Please try again in a few minutes.</p>" CRLF
"</body>" CRLF
"</html>" CRLF
;

static u_char  ngx_http_maintenance_default_page_json[] =
"{\"error\":\"maintenance\","
"\"message\":\"The service is down for maintenance. "
"Please retry later.\"}\n"
;


static ngx_int_t
ngx_http_maintenance_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_maintenance_ctx_t  *octx = data;

    size_t                        len;
    ngx_slab_pool_t               *shpool;
    ngx_http_maintenance_shctx_t  *sh;
    ngx_http_maintenance_ctx_t    *ctx;

    ctx = shm_zone->data;

    if (octx) {
        /* reload: keep the served state, old workers still read it */
        ctx->sh = octx->sh;
        ctx->shpool = octx->shpool;
        ctx->fresh = 0;

        return ngx_http_maintenance_assign_slots(ctx, shm_zone->shm.log);
    }

    shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;
    ctx->shpool = shpool;

    if (shm_zone->shm.exists) {
        ctx->sh = shpool->data;
        ctx->fresh = 0;

        return ngx_http_maintenance_assign_slots(ctx, shm_zone->shm.log);
    }

    sh = ngx_slab_alloc(shpool, sizeof(ngx_http_maintenance_shctx_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(sh, sizeof(ngx_http_maintenance_shctx_t));

    ctx->sh = sh;
    ctx->fresh = 1;
    shpool->data = sh;

    len = sizeof(" in maintenance zone") - 1;

    shpool->log_ctx = ngx_slab_alloc(shpool, len + 1);
    if (shpool->log_ctx == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(shpool->log_ctx, " in maintenance zone", len + 1);

    return ngx_http_maintenance_assign_slots(ctx, shm_zone->shm.log);
}


/*
 * Maps this configuration's scopes to zone slots by name: a scope keeps
 * its slot (and its served state) across reloads; a new scope takes a
 * free slot, initialised off.  Slots of scopes dropped from the
 * configuration are not reused (old workers may still read them), so
 * after 64 distinct names a reload fails and asks for a restart.
 */

static ngx_int_t
ngx_http_maintenance_assign_slots(ngx_http_maintenance_ctx_t *ctx,
    ngx_log_t *log)
{
    ngx_int_t                         rc;
    ngx_str_t                         *name;
    ngx_uint_t                        i, j, fr;
    ngx_http_maintenance_shctx_t      *sh;
    ngx_http_maintenance_scope_sh_t   *ssh;
    ngx_http_maintenance_main_conf_t  *mmcf;

    mmcf = ctx->mmcf;
    sh = ctx->sh;
    name = mmcf->scopes.elts;
    rc = NGX_OK;

    ngx_shmtx_lock(&ctx->shpool->mutex);

    for (i = 0; i < mmcf->scopes.nelts; i++) {

        fr = NGX_HTTP_MAINTENANCE_MAX_SCOPES;

        for (j = 0; j < NGX_HTTP_MAINTENANCE_MAX_SCOPES; j++) {
            ssh = &sh->scopes[j];

            if (ssh->name_len == 0) {
                if (fr == NGX_HTTP_MAINTENANCE_MAX_SCOPES) {
                    fr = j;
                }

                continue;
            }

            if (ssh->name_len == name[i].len
                && ngx_memcmp(ssh->name, name[i].data, name[i].len) == 0)
            {
                break;
            }
        }

        if (j == NGX_HTTP_MAINTENANCE_MAX_SCOPES) {

            if (fr == NGX_HTTP_MAINTENANCE_MAX_SCOPES) {
                ngx_log_error(NGX_LOG_EMERG, log, 0,
                              "maintenance: no free slot for scope \"%V\": "
                              "more than %d scopes were configured since "
                              "nginx started, restart nginx", &name[i],
                              NGX_HTTP_MAINTENANCE_MAX_SCOPES);
                rc = NGX_ERROR;
                break;
            }

            j = fr;
            ssh = &sh->scopes[j];

            ngx_memzero(ssh, sizeof(ngx_http_maintenance_scope_sh_t));
            ngx_memcpy(ssh->name, name[i].data, name[i].len);
            ssh->source = NGX_HTTP_MAINTENANCE_SRC_DEFAULT;
            ssh->name_len = name[i].len;
        }

        mmcf->slots[i] = j;

        if (j + 1 > sh->nscopes) {
            sh->nscopes = j + 1;
        }
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return rc;
}


static void *
ngx_http_maintenance_create_main_conf(ngx_conf_t *cf)
{
    ngx_str_t                         *s;
    ngx_http_maintenance_main_conf_t  *mmcf;

    mmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_maintenance_main_conf_t));
    if (mmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mmcf->redis_addr = { 0, NULL };
     *     mmcf->redis_host = { 0, NULL };
     *     mmcf->redis_port = 0;
     *     mmcf->redis_unix = { 0, NULL };
     *     mmcf->redis_name = { 0, NULL };
     *     mmcf->redis_file = { 0, NULL };
     *     mmcf->redis_line = 0;
     *     mmcf->resolver = NULL;
     *     mmcf->redis_user = { 0, NULL };
     *     mmcf->redis_password = { 0, NULL };
     *     mmcf->prefix = { 0, NULL };
     *     mmcf->node_id = { 0, NULL };
     *     mmcf->state_file = { 0, NULL };
     *     mmcf->override_file = { 0, NULL };
     *     mmcf->slots = NULL;
     *     mmcf->shm_zone = NULL;
     *     mmcf->bypass_tokens = 0;
     */

    mmcf->redis_db = NGX_CONF_UNSET;
    mmcf->redis_timeout = NGX_CONF_UNSET_MSEC;
    mmcf->poll = NGX_CONF_UNSET_MSEC;
    mmcf->redis_failure = NGX_CONF_UNSET_UINT;
    mmcf->strict = NGX_CONF_UNSET;

    if (ngx_array_init(&mmcf->scopes, cf->pool, 4, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NULL;
    }

    /* "default" is always scope 0 */

    s = ngx_array_push(&mmcf->scopes);
    if (s == NULL) {
        return NULL;
    }

    *s = ngx_http_maintenance_default_scope;

    return mmcf;
}


static char *
ngx_http_maintenance_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_maintenance_main_conf_t *mmcf = conf;

    char  err[128];

    ngx_conf_init_value(mmcf->redis_db, 0);
    ngx_conf_init_msec_value(mmcf->redis_timeout, 1000);
    ngx_conf_init_msec_value(mmcf->poll, 1000);
    ngx_conf_init_uint_value(mmcf->redis_failure,
                             NGX_HTTP_MAINTENANCE_FAIL_LAST);
    ngx_conf_init_value(mmcf->strict, 0);

    if (mmcf->prefix.data == NULL) {
        ngx_str_set(&mmcf->prefix, MIG_DEFAULT_PREFIX);
    }

    if (mmcf->node_id.data == NULL) {
        mmcf->node_id.len = cf->cycle->hostname.len;

        if (mmcf->node_id.len > MIG_NAME_MAX) {
            mmcf->node_id.len = MIG_NAME_MAX;
        }

        mmcf->node_id.data = ngx_pnalloc(cf->pool, mmcf->node_id.len + 1);
        if (mmcf->node_id.data == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memcpy(mmcf->node_id.data, cf->cycle->hostname.data,
                   mmcf->node_id.len);
        mmcf->node_id.data[mmcf->node_id.len] = '\0';

        if (mig_name_valid((char *) mmcf->node_id.data, mmcf->node_id.len,
                           err, sizeof(err))
            != MIG_OK)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maintenance: the host name \"%V\" is not a "
                               "valid node id (%s): set maintenance_node_id",
                               &mmcf->node_id, err);
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_maintenance_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_maintenance_loc_conf_t  *mlcf;

    mlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_maintenance_loc_conf_t));
    if (mlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mlcf->page = { 0, NULL };
     *     mlcf->page_json = { 0, NULL };
     *     mlcf->retry_after_text = { 0, NULL };
     *     mlcf->bypass_token = { 0, NULL };
     *     mlcf->health = NGX_HTTP_MAINTENANCE_HEALTH_NONE;
     *     mlcf->status = 0;
     */

    mlcf->enable = NGX_CONF_UNSET;
    mlcf->scope = NGX_CONF_UNSET_UINT;
    mlcf->status_code = NGX_CONF_UNSET_UINT;
    mlcf->retry_after = NGX_CONF_UNSET_UINT;
    mlcf->bypass_cidr = NGX_CONF_UNSET_PTR;

    return mlcf;
}


static char *
ngx_http_maintenance_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child)
{
    ngx_http_maintenance_loc_conf_t *prev = parent;
    ngx_http_maintenance_loc_conf_t *conf = child;

    u_char  *p;

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->scope, prev->scope, 0);
    ngx_conf_merge_uint_value(conf->status_code, prev->status_code,
                              NGX_HTTP_SERVICE_UNAVAILABLE);
    ngx_conf_merge_uint_value(conf->retry_after, prev->retry_after, 120);
    ngx_conf_merge_ptr_value(conf->bypass_cidr, prev->bypass_cidr, NULL);

    if (conf->page.data == NULL) {
        if (prev->page.data) {
            conf->page = prev->page;

        } else {
            conf->page.data = ngx_http_maintenance_default_page;
            conf->page.len = sizeof(ngx_http_maintenance_default_page) - 1;
        }
    }

    if (conf->page_json.data == NULL) {
        if (prev->page_json.data) {
            conf->page_json = prev->page_json;

        } else {
            conf->page_json.data = ngx_http_maintenance_default_page_json;
            conf->page_json.len =
                        sizeof(ngx_http_maintenance_default_page_json) - 1;
        }
    }

    if (conf->bypass_token.data == NULL) {
        conf->bypass_token = prev->bypass_token;
    }

    if (conf->retry_after_text.data == NULL) {
        if (prev->retry_after_text.data
            && prev->retry_after == conf->retry_after)
        {
            conf->retry_after_text = prev->retry_after_text;

        } else {
            p = ngx_pnalloc(cf->pool, NGX_INT_T_LEN);
            if (p == NULL) {
                return NGX_CONF_ERROR;
            }

            conf->retry_after_text.data = p;
            conf->retry_after_text.len =
                                  ngx_sprintf(p, "%ui", conf->retry_after) - p;
        }
    }

    return NGX_CONF_OK;
}


/*
 * Postconfiguration: the guard, the zone and the gate.  Rewrite-phase
 * handlers run in the reverse order of registration, and a dynamic
 * module's postconfiguration runs after the rewrite module's, so the
 * gate runs before "return", "rewrite" and "set" of the location, and
 * before the access phase (allow/deny, auth, satisfy).
 */

static ngx_int_t
ngx_http_maintenance_init(ngx_conf_t *cf)
{
    size_t                            size;
    ngx_http_handler_pt               *h;
    ngx_http_core_main_conf_t         *cmcf;
    ngx_http_maintenance_ctx_t        *ctx;
    ngx_http_maintenance_main_conf_t  *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_maintenance_module);

    if (ngx_http_maintenance_check_servers(cf, mmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_maintenance_state_file_conf(cf, mmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_maintenance_variables_used(cf, mmcf);

    if (ngx_http_maintenance_resolve_conf(cf, mmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    mmcf->slots = ngx_pcalloc(cf->pool,
                              mmcf->scopes.nelts * sizeof(ngx_uint_t));
    if (mmcf->slots == NULL) {
        return NGX_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_maintenance_ctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->mmcf = mmcf;

    size = ngx_align(sizeof(ngx_http_maintenance_shctx_t), ngx_pagesize)
           + 8 * ngx_pagesize;

    mmcf->shm_zone = ngx_shared_memory_add(cf,
                                           &ngx_http_maintenance_zone_name,
                                           size,
                                           &ngx_http_maintenance_module);
    if (mmcf->shm_zone == NULL) {
        return NGX_ERROR;
    }

    mmcf->shm_zone->init = ngx_http_maintenance_init_zone;
    mmcf->shm_zone->data = ctx;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_maintenance_gate_handler;

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_maintenance_confirm_handler;

    return NGX_OK;
}


/*
 * A fresh zone (first start, not a reload) takes the state file's state,
 * and the override file is honoured here, in the master, so that no worker
 * serves the app in the moment before worker 0 has made its first check.
 */

static ngx_int_t
ngx_http_maintenance_init_module(ngx_cycle_t *cycle)
{
    ngx_err_t                         err;
    ngx_uint_t                        i;
    ngx_file_info_t                   fi;
    ngx_http_maintenance_ctx_t        *ctx;
    ngx_http_maintenance_scope_sh_t   *ssh;
    ngx_http_maintenance_main_conf_t  *mmcf;

    mmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_maintenance_module);
    if (mmcf == NULL || mmcf->shm_zone == NULL) {
        return NGX_OK;
    }

    ctx = mmcf->shm_zone->data;

    if (!ctx->fresh) {
        return NGX_OK;
    }

    if (mmcf->state_file.len
        && ngx_http_maintenance_state_file_load(cycle, mmcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (mmcf->override_file.len == 0) {
        return NGX_OK;
    }

    if (ngx_file_info(mmcf->override_file.data, &fi) == NGX_FILE_ERROR) {
        err = ngx_errno;

        /* cannot tell: closed, as worker 0 treats it */
        if (err == NGX_ENOENT || err == NGX_ENOTDIR) {
            return NGX_OK;
        }
    }

    ngx_shmtx_lock(&ctx->shpool->mutex);

    ctx->sh->override = 1;

    for (i = 0; i < mmcf->scopes.nelts; i++) {
        ssh = &ctx->sh->scopes[mmcf->slots[i]];
        ssh->on = 1;
        ssh->source = NGX_HTTP_MAINTENANCE_SRC_OVERRIDE;
    }

    ngx_shmtx_unlock(&ctx->shpool->mutex);

    return NGX_OK;
}


static ngx_int_t
ngx_http_maintenance_init_worker(ngx_cycle_t *cycle)
{
    ngx_http_maintenance_main_conf_t  *mmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_maintenance_module);
    if (mmcf == NULL || mmcf->shm_zone == NULL) {
        return NGX_OK;
    }

    return ngx_http_maintenance_sync_init_worker(cycle);
}


static void
ngx_http_maintenance_exit_worker(ngx_cycle_t *cycle)
{
    ngx_http_maintenance_main_conf_t  *mmcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return;
    }

    mmcf = ngx_http_cycle_get_module_main_conf(cycle,
                                               ngx_http_maintenance_module);
    if (mmcf == NULL || mmcf->shm_zone == NULL) {
        return;
    }

    ngx_http_maintenance_sync_exit_worker(cycle);
}
