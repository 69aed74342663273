/*
 * ngx_http_maintenance_module.c: directives, configuration, the shared zone,
 * the gate in the rewrite phase, variables and the consistency guard.
 */

#include "ngx_http_maintenance_module.h"


#define NGX_HTTP_MAINTENANCE_PAGE_MAX     (1024 * 1024)
#define NGX_HTTP_MAINTENANCE_SECRET_MAX   4096
#define NGX_HTTP_MAINTENANCE_TOKEN_MIN    16
#define NGX_HTTP_MAINTENANCE_LISTEN_MAX   256
#define NGX_HTTP_MAINTENANCE_POLL_MIN     50
#define NGX_HTTP_MAINTENANCE_HOST_MAX     256


/*
 * A request's own state, allocated only when a request is bypassed or
 * carried a token to strip: the gate's decision allocates nothing.  Kept
 * as a pool cleanup too, as realip keeps its ctx, so that it survives an
 * internal redirect (error_page, try_files), which clears module ctxs.
 */
typedef struct {
    ngx_str_t                   *bypass;       /* $maintenance_bypass:
                                                  cidr, token or NULL */
    ngx_str_t                    header;       /* the token the client sent,
                                                  kept once it is stripped */
    ngx_str_t                    cookie;
} ngx_http_maintenance_req_ctx_t;


static ngx_int_t ngx_http_maintenance_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_maintenance_confirm_handler(ngx_http_request_t *r);
static ngx_http_maintenance_req_ctx_t *ngx_http_maintenance_req_ctx(
    ngx_http_request_t *r, ngx_uint_t create);
static void ngx_http_maintenance_req_cleanup(void *data);
static ngx_int_t ngx_http_maintenance_strip(ngx_http_request_t *r);
static ngx_int_t ngx_http_maintenance_strip_cookie(ngx_http_request_t *r,
    ngx_table_elt_t *h);
static ngx_uint_t ngx_http_maintenance_is_header(ngx_table_elt_t *h,
    const char *name, size_t len);
static ngx_int_t ngx_http_maintenance_send(ngx_http_request_t *r,
    ngx_http_maintenance_loc_conf_t *mlcf,
    ngx_http_maintenance_scope_sh_t *ssh);
static ngx_uint_t ngx_http_maintenance_wants_json(ngx_http_request_t *r);
static ngx_uint_t ngx_http_maintenance_token_ok(ngx_http_request_t *r,
    ngx_http_maintenance_loc_conf_t *mlcf,
    ngx_http_maintenance_req_ctx_t *rctx);
static ngx_uint_t ngx_http_maintenance_secret_eq(ngx_str_t *secret,
    u_char *p, size_t len);
static ngx_table_elt_t *ngx_http_maintenance_header_in(ngx_http_request_t *r,
    const char *name, size_t len);

static ngx_int_t ngx_http_maintenance_mode_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_maintenance_epoch_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_maintenance_bypass_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);

static char *ngx_http_maintenance_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_maintenance_name(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_maintenance_path(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_maintenance_poll(ngx_conf_t *cf, void *post,
    void *data);
static char *ngx_http_maintenance_enum(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_maintenance_scope(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_maintenance_page(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_maintenance_bypass_cidr(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_maintenance_bypass_token(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_maintenance_health(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_maintenance_status(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_maintenance_read_file(ngx_conf_t *cf,
    ngx_str_t *path, size_t max, ngx_str_t *out);
static ngx_int_t ngx_http_maintenance_register_scope(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf, ngx_str_t *name);

static ngx_int_t ngx_http_maintenance_check_servers(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf);
static ngx_uint_t ngx_http_maintenance_names_meet(ngx_http_server_name_t *n,
    ngx_http_server_name_t *m);
static ngx_uint_t ngx_http_maintenance_names_same(ngx_http_server_name_t *n,
    ngx_http_server_name_t *m);
static ngx_uint_t ngx_http_maintenance_name_regex(ngx_http_server_name_t *n);
static ngx_uint_t ngx_http_maintenance_name_match(ngx_http_server_name_t *m,
    ngx_str_t *host);
static ngx_int_t ngx_http_maintenance_check_pair(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf, ngx_http_core_main_conf_t *cmcf,
    ngx_http_core_srv_conf_t *a, ngx_http_core_srv_conf_t *b,
    ngx_http_server_name_t *name, ngx_http_server_name_t *as);
static ngx_int_t ngx_http_maintenance_collect(ngx_http_core_loc_conf_t *level,
    ngx_array_t *locs);
static ngx_int_t ngx_http_maintenance_collect_tree(
    ngx_http_location_tree_node_t *node, ngx_array_t *locs);
static ngx_http_core_loc_conf_t *ngx_http_maintenance_find(
    ngx_http_core_loc_conf_t *level, ngx_str_t *uri);
static void ngx_http_maintenance_find_tree(ngx_http_location_tree_node_t *node,
    ngx_str_t *uri, ngx_http_core_loc_conf_t **exact,
    ngx_http_core_loc_conf_t **prefix);
static ngx_int_t ngx_http_maintenance_gating(ngx_http_core_loc_conf_t *clcf,
    ngx_http_core_srv_conf_t *cscf);
static u_char *ngx_http_maintenance_listens(ngx_conf_t *cf,
    ngx_http_core_main_conf_t *cmcf, ngx_http_core_srv_conf_t *cscf);
static ngx_int_t ngx_http_maintenance_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_maintenance_assign_slots(
    ngx_http_maintenance_shctx_t *ctx, ngx_log_t *log);

static ngx_int_t ngx_http_maintenance_add_variables(ngx_conf_t *cf);
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
    ngx_http_maintenance_poll
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
      ngx_http_maintenance_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maintenance_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_name,
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
      ngx_http_maintenance_name,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maintenance_main_conf_t, node_id),
      NULL },

    { ngx_string("maintenance_state_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_path,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maintenance_main_conf_t, state_file),
      NULL },

    { ngx_string("maintenance_override_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_path,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_maintenance_main_conf_t, override_file),
      NULL },

    { ngx_string("maintenance_redis_failure"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_enum,
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
      ngx_http_maintenance_scope,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maintenance_page"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_page,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_maintenance_loc_conf_t, page),
      NULL },

    { ngx_string("maintenance_page_json"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_page,
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
      ngx_http_maintenance_bypass_cidr,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maintenance_bypass_token"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_maintenance_bypass_token,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maintenance_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_maintenance_health,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("maintenance_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_maintenance_status,
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


static ngx_http_variable_t  ngx_http_maintenance_vars[] = {

    { ngx_string("maintenance"), NULL,
      ngx_http_maintenance_mode_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("maintenance_epoch"), NULL,
      ngx_http_maintenance_epoch_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("maintenance_bypass"), NULL,
      ngx_http_maintenance_bypass_variable, 0, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/* $maintenance_bypass */
static ngx_str_t  ngx_http_maintenance_bypass_cidr_str = ngx_string("cidr");
static ngx_str_t  ngx_http_maintenance_bypass_token_str = ngx_string("token");

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


/*
 * The gate.  It runs in the rewrite phase ahead of the rewrite module
 * (see ngx_http_maintenance_init), so "return" and "rewrite" in a gated
 * location never run while the scope is on.  The decision reads one
 * word of the zone: no lock, no syscall, no allocation.
 *
 * The request counters are the only writes to the zone on the request
 * path: one atomic add per request in a gated location, on a cache line
 * shared by every worker.  They are statistics; nothing decides on them.
 */

static ngx_int_t
ngx_http_maintenance_handler(ngx_http_request_t *r)
{
    ngx_str_t                         *bypass;
    ngx_http_maintenance_sh_t         *sh;
    ngx_http_maintenance_shctx_t      *ctx;
    ngx_http_maintenance_req_ctx_t    *rctx;
    ngx_http_maintenance_scope_sh_t   *ssh;
    ngx_http_maintenance_loc_conf_t   *mlcf;
    ngx_http_maintenance_main_conf_t  *mmcf;

    if (r != r->main) {
        return NGX_DECLINED;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maintenance_module);
    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maintenance_module);

    /* each location the request reaches decides anew */

    rctx = ngx_http_maintenance_req_ctx(r, 0);
    if (rctx) {
        rctx->bypass = NULL;
    }

    bypass = NULL;

    if (mlcf->enable
        && mlcf->health == NGX_HTTP_MAINTENANCE_HEALTH_NONE
        && !mlcf->status)
    {
        ctx = mmcf->shm_zone->data;
        sh = ctx->sh;
        ssh = &sh->scopes[mmcf->slots[mlcf->scope]];

        if (!ssh->on) {
            (void) ngx_atomic_fetch_add(&sh->requests_passed, 1);

        } else if (mlcf->bypass_cidr
                   && ngx_cidr_match(r->connection->sockaddr,
                                     mlcf->bypass_cidr)
                      == NGX_OK)
        {
            /* confirmed after realip at location level: see confirm */
            bypass = &ngx_http_maintenance_bypass_cidr_str;

        } else if (mlcf->bypass_token.len
                   && ngx_http_maintenance_token_ok(r, mlcf, rctx))
        {
            bypass = &ngx_http_maintenance_bypass_token_str;

        } else {
            (void) ngx_atomic_fetch_add(&sh->requests_gated, 1);
            return ngx_http_maintenance_send(r, mlcf, ssh);
        }

        if (bypass) {
            (void) ngx_atomic_fetch_add(&sh->requests_bypassed, 1);
        }
    }

    /* the token goes no further than this gate, bypassed or open */

    if (mmcf->bypass_tokens && ngx_http_maintenance_strip(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (bypass) {
        rctx = ngx_http_maintenance_req_ctx(r, 1);
        if (rctx == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        rctx->bypass = bypass;
    }

    return NGX_DECLINED;
}


/*
 * The CIDR bypass, confirmed in the access phase on the address the rest
 * of the location sees.  realip set in a location runs in the preaccess
 * phase, after the gate: a proxy inside the CIDR forwarding a client
 * outside it passes the gate on the proxy's address and is gated here.
 * realip set in the server or http block runs before the gate, which
 * then already decides on the forwarded address.  Runs first of the
 * access phase, before allow/deny and auth.
 */

static ngx_int_t
ngx_http_maintenance_confirm_handler(ngx_http_request_t *r)
{
    ngx_http_maintenance_sh_t         *sh;
    ngx_http_maintenance_shctx_t      *ctx;
    ngx_http_maintenance_req_ctx_t    *rctx;
    ngx_http_maintenance_scope_sh_t   *ssh;
    ngx_http_maintenance_loc_conf_t   *mlcf;
    ngx_http_maintenance_main_conf_t  *mmcf;

    rctx = ngx_http_get_module_ctx(r, ngx_http_maintenance_module);

    if (rctx == NULL || rctx->bypass != &ngx_http_maintenance_bypass_cidr_str)
    {
        return NGX_DECLINED;
    }

    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maintenance_module);

    if (mlcf->bypass_cidr == NULL
        || ngx_cidr_match(r->connection->sockaddr, mlcf->bypass_cidr)
           == NGX_OK)
    {
        return NGX_DECLINED;
    }

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maintenance_module);

    ctx = mmcf->shm_zone->data;
    sh = ctx->sh;
    ssh = &sh->scopes[mmcf->slots[mlcf->scope]];

    if (!ssh->on) {
        return NGX_DECLINED;
    }

    if (mlcf->bypass_token.len
        && ngx_http_maintenance_token_ok(r, mlcf, rctx))
    {
        rctx->bypass = &ngx_http_maintenance_bypass_token_str;
        return NGX_DECLINED;
    }

    rctx->bypass = NULL;

    (void) ngx_atomic_fetch_add(&sh->requests_bypassed,
                                (ngx_atomic_int_t) -1);
    (void) ngx_atomic_fetch_add(&sh->requests_gated, 1);

    ngx_http_finalize_request(r, ngx_http_maintenance_send(r, mlcf, ssh));

    return NGX_DONE;
}


static ngx_http_maintenance_req_ctx_t *
ngx_http_maintenance_req_ctx(ngx_http_request_t *r, ngx_uint_t create)
{
    ngx_pool_cleanup_t              *cln;
    ngx_http_maintenance_req_ctx_t  *rctx;

    rctx = ngx_http_get_module_ctx(r, ngx_http_maintenance_module);

    if (rctx) {
        return rctx;
    }

    if (r->internal || r->filter_finalize) {
        for (cln = r->pool->cleanup; cln; cln = cln->next) {
            if (cln->handler == ngx_http_maintenance_req_cleanup) {
                rctx = cln->data;
                ngx_http_set_ctx(r, rctx, ngx_http_maintenance_module);
                return rctx;
            }
        }
    }

    if (!create) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(r->pool,
                               sizeof(ngx_http_maintenance_req_ctx_t));
    if (cln == NULL) {
        return NULL;
    }

    rctx = cln->data;
    ngx_memzero(rctx, sizeof(ngx_http_maintenance_req_ctx_t));

    cln->handler = ngx_http_maintenance_req_cleanup;

    ngx_http_set_ctx(r, rctx, ngx_http_maintenance_module);

    return rctx;
}


/* a marker: finds the request ctx after an internal redirect */

static void
ngx_http_maintenance_req_cleanup(void *data)
{
}


/*
 * Takes the X-Maintenance-Bypass header and the maintenance_bypass cookie
 * out of the request, so that no upstream (proxy, fastcgi, uwsgi, scgi,
 * grpc) and no $http_ variable sees them; what the client sent is kept in
 * the request ctx for the token check of a later location.
 *
 * Other modules hold pointers to the header elements (headers_in.host,
 * the cookies), so no element is moved or freed: a cookie is rewritten in
 * place, and when an element must go, the list is rebuilt from copies
 * and the old elements stay where the pointers expect them.
 */

static ngx_int_t
ngx_http_maintenance_strip(ngx_http_request_t *r)
{
    ngx_int_t                        rc;
    ngx_uint_t                       i, n, drop;
    ngx_list_t                       headers;
    ngx_list_part_t                 *part;
    ngx_table_elt_t                 *h, *nh;
    ngx_http_maintenance_req_ctx_t  *rctx;
#if (nginx_version < 1023000)
    ngx_table_elt_t                **cookies;
#else
    ngx_table_elt_t                **ph;
#endif

    drop = 0;
    n = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        n++;

        if (ngx_http_maintenance_is_header(&h[i], "X-Maintenance-Bypass",
                                      sizeof("X-Maintenance-Bypass") - 1))
        {
            rctx = ngx_http_maintenance_req_ctx(r, 1);
            if (rctx == NULL) {
                return NGX_ERROR;
            }

            if (rctx->header.len == 0) {
                rctx->header = h[i].value;
            }

            drop++;
            continue;
        }

        if (ngx_http_maintenance_is_header(&h[i], "Cookie",
                                           sizeof("Cookie") - 1))
        {
            rc = ngx_http_maintenance_strip_cookie(r, &h[i]);

            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (h[i].value.len == 0) {
                drop++;
            }
        }
    }

    if (drop == 0) {
        return NGX_OK;
    }

    if (ngx_list_init(&headers, r->pool, ngx_max(n, 20),
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (ngx_http_maintenance_is_header(&h[i], "X-Maintenance-Bypass",
                                      sizeof("X-Maintenance-Bypass") - 1)
            || (h[i].value.len == 0
                && ngx_http_maintenance_is_header(&h[i], "Cookie",
                                                  sizeof("Cookie") - 1)))
        {
            continue;
        }

        nh = ngx_list_push(&headers);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        *nh = h[i];
    }

    r->headers_in.headers = headers;

    /* an emptied Cookie leaves the cookies too */

#if (nginx_version < 1023000)

    cookies = r->headers_in.cookies.elts;
    n = 0;

    for (i = 0; i < r->headers_in.cookies.nelts; i++) {
        if (cookies[i]->value.len) {
            cookies[n++] = cookies[i];
        }
    }

    r->headers_in.cookies.nelts = n;

#else

    for (ph = &r->headers_in.cookie; *ph; /* void */) {
        if ((*ph)->value.len == 0) {
            *ph = (*ph)->next;

        } else {
            ph = &(*ph)->next;
        }
    }

#endif

    return NGX_OK;
}


/*
 * "a=1; maintenance_bypass=T; b=2" becomes "a=1; b=2" (a new value from
 * r->pool, the old one untouched); the client's T is kept.  No copy when
 * the cookie is not there.
 */

static ngx_int_t
ngx_http_maintenance_strip_cookie(ngx_http_request_t *r, ngx_table_elt_t *h)
{
    u_char                          *p, *q, *start, *end, *semi, *s, *e, *eq;
    size_t                           len;
    ngx_uint_t                       found;
    ngx_http_maintenance_req_ctx_t  *rctx;

    static u_char  name[] = "maintenance_bypass";

    start = h->value.data;
    end = start + h->value.len;

    if (ngx_strlcasestrn(start, end, name, sizeof(name) - 1 - 1) == NULL) {
        return NGX_OK;
    }

    /* "; " may replace ";": at most one byte more per cookie */

    p = ngx_pnalloc(r->pool, 2 * h->value.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    q = p;
    found = 0;

    while (start < end) {
        semi = ngx_strlchr(start, end, ';');
        if (semi == NULL) {
            semi = end;
        }

        s = start;
        while (s < semi && (*s == ' ' || *s == '\t')) {
            s++;
        }

        e = semi;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) {
            e--;
        }

        start = semi + 1;

        eq = ngx_strlchr(s, e, '=');
        len = (eq ? eq : e) - s;

        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t')) {
            len--;
        }

        if (len == sizeof(name) - 1 && ngx_strncasecmp(s, name, len) == 0) {
            rctx = ngx_http_maintenance_req_ctx(r, 1);
            if (rctx == NULL) {
                return NGX_ERROR;
            }

            if (rctx->cookie.len == 0 && eq) {
                rctx->cookie.data = eq + 1;
                rctx->cookie.len = e - (eq + 1);
            }

            found = 1;
            continue;
        }

        if (e == s) {
            continue;
        }

        if (q != p) {
            *q++ = ';';
            *q++ = ' ';
        }

        q = ngx_cpymem(q, s, e - s);
    }

    if (found) {
        h->value.data = p;
        h->value.len = q - p;
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_maintenance_is_header(ngx_table_elt_t *h, const char *name,
    size_t len)
{
    return h->key.len == len
           && ngx_strncasecmp(h->key.data, (u_char *) name, len) == 0;
}


static ngx_int_t
ngx_http_maintenance_send(ngx_http_request_t *r,
    ngx_http_maintenance_loc_conf_t *mlcf,
    ngx_http_maintenance_scope_sh_t *ssh)
{
    u_char       *p;
    ngx_buf_t    *b;
    ngx_int_t     rc;
    ngx_str_t    *page, value;
    ngx_uint_t    json, retry;
    ngx_chain_t   out;

    rc = ngx_http_discard_request_body(r);

    if (rc != NGX_OK) {
        return rc;
    }

    json = ngx_http_maintenance_wants_json(r);
    page = json ? &mlcf->page_json : &mlcf->page;

    r->headers_out.status = mlcf->status_code;
    r->headers_out.content_length_n = page->len;

    if (json) {
        ngx_str_set(&r->headers_out.content_type, "application/json");

    } else {
        ngx_str_set(&r->headers_out.content_type, "text/html; charset=utf-8");
    }

    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    retry = ssh->retry_after;

    if (retry == 0 || retry > MIG_RETRY_AFTER_MAX) {
        value = mlcf->retry_after_text;

    } else {
        p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
        if (p == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        value.data = p;
        value.len = ngx_sprintf(p, "%ui", retry) - p;
    }

    if (ngx_http_maintenance_add_header(r, "Retry-After", &value) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&value, "no-store");

    if (ngx_http_maintenance_add_header(r, "Cache-Control", &value)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (page->len) {
        b->pos = page->data;
        b->last = page->data + page->len;
        b->memory = 1;
    }

    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* JSON when the client names application/json ahead of text/html */

static ngx_uint_t
ngx_http_maintenance_wants_json(ngx_http_request_t *r)
{
    u_char           *json, *html, *last;
    ngx_table_elt_t  *h;

    h = ngx_http_maintenance_header_in(r, "Accept", sizeof("Accept") - 1);

    if (h == NULL || h->value.len == 0) {
        return 0;
    }

    last = h->value.data + h->value.len;

    json = ngx_strlcasestrn(h->value.data, last, (u_char *) "application/json",
                            sizeof("application/json") - 1 - 1);
    if (json == NULL) {
        return 0;
    }

    html = ngx_strlcasestrn(h->value.data, last, (u_char *) "text/html",
                            sizeof("text/html") - 1 - 1);

    return html == NULL || json < html;
}


/*
 * The header, the cookie, or what a strip kept of them (the header and
 * cookie are gone from the request once an earlier location stripped
 * them).
 */

static ngx_uint_t
ngx_http_maintenance_token_ok(ngx_http_request_t *r,
    ngx_http_maintenance_loc_conf_t *mlcf,
    ngx_http_maintenance_req_ctx_t *rctx)
{
    ngx_str_t         name, value;
    ngx_table_elt_t  *h;

    if (rctx) {
        if (rctx->header.len
            && ngx_http_maintenance_secret_eq(&mlcf->bypass_token,
                                              rctx->header.data,
                                              rctx->header.len))
        {
            return 1;
        }

        if (rctx->cookie.len
            && ngx_http_maintenance_secret_eq(&mlcf->bypass_token,
                                              rctx->cookie.data,
                                              rctx->cookie.len))
        {
            return 1;
        }
    }

    h = ngx_http_maintenance_header_in(r, "X-Maintenance-Bypass",
                                       sizeof("X-Maintenance-Bypass") - 1);

    if (h && ngx_http_maintenance_secret_eq(&mlcf->bypass_token,
                                            h->value.data, h->value.len))
    {
        return 1;
    }

    ngx_str_set(&name, "maintenance_bypass");

#if (nginx_version >= 1023000)

    if (ngx_http_parse_multi_header_lines(r, r->headers_in.cookie, &name,
                                          &value)
        == NULL)
    {
        return 0;
    }

#else

    if (ngx_http_parse_multi_header_lines(&r->headers_in.cookies, &name,
                                          &value)
        == NGX_DECLINED)
    {
        return 0;
    }

#endif

    return ngx_http_maintenance_secret_eq(&mlcf->bypass_token, value.data,
                                          value.len);
}


/*
 * Constant time in the secret's length: every byte of the secret is
 * compared whatever the client sent, so timing tells nothing about how
 * many leading bytes matched.
 */

static ngx_uint_t
ngx_http_maintenance_secret_eq(ngx_str_t *secret, u_char *p, size_t len)
{
    size_t  i;
    u_char  diff, c;

    diff = (u_char) (len != secret->len);

    for (i = 0; i < secret->len; i++) {
        c = (i < len) ? p[i] : 0;
        diff |= (u_char) (secret->data[i] ^ c);
    }

    return diff == 0;
}


static ngx_table_elt_t *
ngx_http_maintenance_header_in(ngx_http_request_t *r, const char *name,
    size_t len)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                return NULL;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            return &h[i];
        }
    }
}


static ngx_int_t
ngx_http_maintenance_mode_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_maintenance_scope_sh_t   *ssh;
    ngx_http_maintenance_loc_conf_t   *mlcf;
    ngx_http_maintenance_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maintenance_module);
    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maintenance_module);

    ssh = ngx_http_maintenance_scope_sh(mmcf, mlcf);

    if (ssh->on) {
        v->len = sizeof("on") - 1;
        v->data = (u_char *) "on";

    } else {
        v->len = sizeof("off") - 1;
        v->data = (u_char *) "off";
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_maintenance_epoch_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                            *p;
    ngx_http_maintenance_scope_sh_t   *ssh;
    ngx_http_maintenance_loc_conf_t   *mlcf;
    ngx_http_maintenance_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maintenance_module);
    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maintenance_module);

    ssh = ngx_http_maintenance_scope_sh(mmcf, mlcf);

    p = ngx_pnalloc(r->pool, NGX_ATOMIC_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%uA", ssh->epoch) - p;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static ngx_int_t
ngx_http_maintenance_bypass_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t                       *s;
    ngx_http_maintenance_req_ctx_t  *rctx;

    rctx = ngx_http_maintenance_req_ctx(r, 0);
    s = rctx ? rctx->bypass : NULL;

    if (s == NULL) {
        v->len = 0;
        v->data = (u_char *) "";

    } else {
        v->len = s->len;
        v->data = s->data;
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * maintenance_redis ADDR [db=N] [user=NAME] [password_file=PATH]
 *     [timeout=TIME]
 *
 * A host name is resolved here, at load, so that worker 0 never does a
 * blocking DNS lookup: redis_host holds the address as text.
 */

static char *
ngx_http_maintenance_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_maintenance_main_conf_t *mmcf = conf;

    u_char      *p;
    size_t       len;
    ngx_int_t    n;
    ngx_str_t   *value, s, path;
    ngx_url_t    u;
    ngx_uint_t   i;

    if (mmcf->redis_addr.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    mmcf->redis_addr = value[1];

    if (ngx_strncmp(value[1].data, "unix:", 5) == 0) {
        mmcf->redis_unix.data = value[1].data + 5;
        mmcf->redis_unix.len = value[1].len - 5;

        if (mmcf->redis_unix.len == 0 || mmcf->redis_unix.data[0] != '/') {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maintenance: \"%V\" needs an absolute path "
                               "after \"unix:\"", &value[1]);
            return NGX_CONF_ERROR;
        }

        ngx_str_set(&mmcf->redis_host, "");

    } else {
        ngx_memzero(&u, sizeof(ngx_url_t));

        u.url = value[1];
        u.default_port = 6379;

        if (ngx_parse_url(cf->pool, &u) != NGX_OK) {
            if (u.err) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "maintenance: %s in \"%V\"",
                                   u.err, &value[1]);
            }

            return NGX_CONF_ERROR;
        }

        if (u.naddrs == 0 || u.uri.len) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "maintenance: invalid Redis address \"%V\"",
                               &value[1]);
            return NGX_CONF_ERROR;
        }

        p = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
        if (p == NULL) {
            return NGX_CONF_ERROR;
        }

        len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, p,
                            NGX_SOCKADDR_STRLEN, 0);

        /* hiredis wants "::1", not "[::1]" */

        if (len > 2 && p[0] == '[' && p[len - 1] == ']') {
            p++;
            len -= 2;
        }

        p[len] = '\0';

        mmcf->redis_host.data = p;
        mmcf->redis_host.len = len;
        mmcf->redis_port = u.port;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            n = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (n == NGX_ERROR || n > 65535) {
                goto invalid;
            }

            mmcf->redis_db = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "user=", 5) == 0) {
            mmcf->redis_user.data = value[i].data + 5;
            mmcf->redis_user.len = value[i].len - 5;

            if (mmcf->redis_user.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            s.data = value[i].data + 8;
            s.len = value[i].len - 8;

            n = ngx_parse_time(&s, 0);
            if (n == NGX_ERROR || n == 0) {
                goto invalid;
            }

            mmcf->redis_timeout = (ngx_msec_t) n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password_file=", 14) == 0) {
            path.data = value[i].data + 14;
            path.len = value[i].len - 14;

            if (path.len == 0) {
                goto invalid;
            }

            if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            if (ngx_http_maintenance_read_file(cf, &path,
                                               NGX_HTTP_MAINTENANCE_SECRET_MAX,
                                               &mmcf->redis_password)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            while (mmcf->redis_password.len
                   && (mmcf->redis_password.data[mmcf->redis_password.len - 1]
                       == '\n'
                       || mmcf->redis_password.data[mmcf->redis_password.len
                                                    - 1] == '\r'))
            {
                mmcf->redis_password.len--;
            }

            if (mmcf->redis_password.len == 0) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "maintenance: password file \"%V\" "
                                   "is empty", &path);
                return NGX_CONF_ERROR;
            }

            mmcf->redis_password.data[mmcf->redis_password.len] = '\0';
            continue;
        }

        goto invalid;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "maintenance: invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/* maintenance_prefix, maintenance_node_id: a name of mig_name_valid() */

static char *
ngx_http_maintenance_name(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
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

static char *
ngx_http_maintenance_path(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
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

static char *
ngx_http_maintenance_poll(ngx_conf_t *cf, void *post, void *data)
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

static char *
ngx_http_maintenance_enum(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
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


static char *
ngx_http_maintenance_scope(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
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


static char *
ngx_http_maintenance_page(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
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


static char *
ngx_http_maintenance_bypass_cidr(ngx_conf_t *cf, ngx_command_t *cmd,
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

static char *
ngx_http_maintenance_bypass_token(ngx_conf_t *cf, ngx_command_t *cmd,
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


static char *
ngx_http_maintenance_health(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
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


static char *
ngx_http_maintenance_status(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
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


/*
 * The consistency guard: two server blocks that answer the same name but
 * gate a URI differently (typically :80 gated and :443 not, or a TLS twin
 * whose "location /" says "maintenance off") would leave a door open
 * during an incident.  Names are matched as nginx matches a Host (exact,
 * "*.x", ".x", "x.*", regex); then every URI that names a location in
 * either server, and "/", is looked up in both as nginx would, and the
 * gating found (on or off, and the scope) compared.  A regex location is
 * compared with the twin's regex location of the same pattern.  Health
 * and status locations are not the application and are skipped.  One
 * warning per pair of servers names both listens and the URI; with
 * maintenance_strict it is an error.
 */

static ngx_int_t
ngx_http_maintenance_check_servers(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf)
{
    ngx_int_t                    rc;
    ngx_uint_t                   a, b, i, j, found;
    ngx_http_server_name_t      *na, *nb, *shown, *as;
    ngx_http_core_srv_conf_t   **cscfp;
    ngx_http_core_main_conf_t   *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    cscfp = cmcf->servers.elts;
    found = 0;

    for (a = 0; a < cmcf->servers.nelts; a++) {
        for (b = a + 1; b < cmcf->servers.nelts; b++) {

            na = cscfp[a]->server_names.elts;
            nb = cscfp[b]->server_names.elts;
            shown = NULL;
            as = NULL;

            for (i = 0; shown == NULL && i < cscfp[a]->server_names.nelts;
                 i++)
            {
                for (j = 0; j < cscfp[b]->server_names.nelts; j++) {

                    if (ngx_http_maintenance_names_meet(&na[i], &nb[j])) {
                        shown = &na[i];
                        as = &nb[j];
                        break;
                    }

                    if (ngx_http_maintenance_names_meet(&nb[j], &na[i])) {
                        shown = &nb[j];
                        as = &na[i];
                        break;
                    }
                }
            }

            if (shown == NULL) {
                continue;
            }

            rc = ngx_http_maintenance_check_pair(cf, mmcf, cmcf, cscfp[a],
                                                 cscfp[b], shown, as);
            if (rc == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (rc == NGX_DECLINED) {
                found = 1;
            }
        }
    }

    if (found && mmcf->strict) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "maintenance: inconsistent gating is an error with "
                      "\"maintenance_strict on\"");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * 1 if a Host that server name "n" answers is answered by "m" too: n's
 * own name when exact, else a name made to match n ("w.x" for "*.x",
 * "x" for ".x", "x.w" for "x.*"), is tried against m; a regex n is met
 * only by the very same pattern (the other order tries m against n).
 */

static ngx_uint_t
ngx_http_maintenance_names_meet(ngx_http_server_name_t *n,
    ngx_http_server_name_t *m)
{
    u_char     buf[NGX_HTTP_MAINTENANCE_HOST_MAX + 2];
    ngx_str_t  host;

    if (n->name.len == 0 || m->name.len == 0) {
        return 0;
    }

    if (ngx_http_maintenance_names_same(n, m)) {
        return 1;
    }

    if (ngx_http_maintenance_name_regex(n)) {
        return 0;
    }

    if (n->name.len > NGX_HTTP_MAINTENANCE_HOST_MAX) {
        return 0;
    }

    if (n->name.data[0] == '*') {
        buf[0] = 'w';
        ngx_memcpy(buf + 1, n->name.data + 1, n->name.len - 1);
        host.len = n->name.len;

    } else if (n->name.data[0] == '.') {
        ngx_memcpy(buf, n->name.data + 1, n->name.len - 1);
        host.len = n->name.len - 1;

    } else if (n->name.data[n->name.len - 1] == '*') {
        ngx_memcpy(buf, n->name.data, n->name.len - 1);
        buf[n->name.len - 1] = 'w';
        host.len = n->name.len;

    } else {
        ngx_memcpy(buf, n->name.data, n->name.len);
        host.len = n->name.len;
    }

    host.data = buf;

    return ngx_http_maintenance_name_match(m, &host);
}


static ngx_uint_t
ngx_http_maintenance_names_same(ngx_http_server_name_t *n,
    ngx_http_server_name_t *m)
{
    return ngx_http_maintenance_name_regex(n)
           == ngx_http_maintenance_name_regex(m)
           && n->name.len == m->name.len
           && ngx_strncasecmp(n->name.data, m->name.data, n->name.len) == 0;
}


static ngx_uint_t
ngx_http_maintenance_name_regex(ngx_http_server_name_t *n)
{
#if (NGX_PCRE)
    return n->regex != NULL;
#else
    return 0;
#endif
}


/* does server name "m" answer Host "host" */

static ngx_uint_t
ngx_http_maintenance_name_match(ngx_http_server_name_t *m, ngx_str_t *host)
{
    size_t   len;
    u_char  *name;

    name = m->name.data;
    len = m->name.len;

#if (NGX_PCRE)
    if (m->regex) {
        return ngx_regex_exec(m->regex->regex, host, NULL, 0) >= 0;
    }
#endif

    if (name[0] == '*' || name[0] == '.') {
        /* "*.x" and ".x" answer "w.x"; ".x" answers "x" as well */

        if (name[0] == '.' && host->len == len - 1
            && ngx_strncasecmp(host->data, name + 1, len - 1) == 0)
        {
            return 1;
        }

        return host->len > len - 1
               && ngx_strncasecmp(host->data + host->len - (len - 1),
                                  name + 1, len - 1) == 0;
    }

    if (name[len - 1] == '*') {
        return host->len > len - 1
               && ngx_strncasecmp(host->data, name, len - 1) == 0;
    }

    return host->len == len && ngx_strncasecmp(host->data, name, len) == 0;
}


/*
 * NGX_DECLINED (and a message) when servers "a" and "b" gate a URI
 * differently, NGX_OK when they agree.
 */

static ngx_int_t
ngx_http_maintenance_check_pair(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf, ngx_http_core_main_conf_t *cmcf,
    ngx_http_core_srv_conf_t *a, ngx_http_core_srv_conf_t *b,
    ngx_http_server_name_t *name, ngx_http_server_name_t *as)
{
    u_char                            *la, *lb;
    u_char                             what[2 * NGX_HTTP_MAINTENANCE_HOST_MAX];
    ngx_int_t                          ga, gb;
    ngx_str_t                          root, *scopes, *uri;
    ngx_uint_t                         i, j, n, level, rx;
    ngx_array_t                        locs[2];
    ngx_http_core_loc_conf_t          *ra, *rb, *ca, *cb, **cl, **other;
    ngx_http_core_srv_conf_t          *g, *u;

    ra = a->ctx->loc_conf[ngx_http_core_module.ctx_index];
    rb = b->ctx->loc_conf[ngx_http_core_module.ctx_index];

    for (n = 0; n < 2; n++) {
        if (ngx_array_init(&locs[n], cf->temp_pool, 16,
                           sizeof(ngx_http_core_loc_conf_t *))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    if (ngx_http_maintenance_collect(ra, &locs[0]) != NGX_OK
        || ngx_http_maintenance_collect(rb, &locs[1]) != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_str_set(&root, "/");

    ca = ra;
    cb = rb;
    ga = 0;
    gb = 0;
    rx = 0;
    uri = &root;

    /* "/" first, then each location of a, then each of b */

    for (n = 0; n < 3; n++) {

        cl = (n == 0) ? NULL : locs[n - 1].elts;

        for (i = 0; i < (n == 0 ? 1 : locs[n - 1].nelts); i++) {

            rx = 0;

            if (n == 0) {
                uri = &root;

            } else {
                uri = &cl[i]->name;

                if (cl[i]->named) {
                    continue;
                }

#if (NGX_PCRE)
                rx = (cl[i]->regex != NULL);
#endif
            }

            if (rx) {
                /* a's regex locations against b's of the same pattern */

                if (n == 2) {
                    continue;
                }

                other = locs[1].elts;

                for (j = 0; j < locs[1].nelts; j++) {
#if (NGX_PCRE)
                    if (other[j]->regex
                        && other[j]->name.len == uri->len
                        && ngx_strncmp(other[j]->name.data, uri->data,
                                       uri->len)
                           == 0)
                    {
                        break;
                    }
#endif
                }

                if (j == locs[1].nelts) {
                    continue;
                }

                ca = cl[i];
                cb = other[j];

            } else {
                ca = ngx_http_maintenance_find(ra, uri);
                cb = ngx_http_maintenance_find(rb, uri);
            }

            ga = ngx_http_maintenance_gating(ca, a);
            gb = ngx_http_maintenance_gating(cb, b);

            if (ga != gb && ga != NGX_DECLINED && gb != NGX_DECLINED) {
                goto differ;
            }
        }
    }

    return NGX_OK;

differ:

    la = ngx_http_maintenance_listens(cf, cmcf, a);
    lb = ngx_http_maintenance_listens(cf, cmcf, b);

    if (la == NULL || lb == NULL) {
        return NGX_ERROR;
    }

    /* a regex name is kept without its "~" */

    if (ngx_http_maintenance_names_same(name, as)) {
        *ngx_slprintf(what, what + sizeof(what) - 1, "\"%s%V\"",
                      ngx_http_maintenance_name_regex(name) ? "~" : "",
                      &name->name) = '\0';

    } else {
        *ngx_slprintf(what, what + sizeof(what) - 1,
                      "\"%s%V\" (as \"%s%V\")",
                      ngx_http_maintenance_name_regex(name) ? "~" : "",
                      &name->name,
                      ngx_http_maintenance_name_regex(as) ? "~" : "",
                      &as->name) = '\0';
    }

    scopes = mmcf->scopes.elts;
    level = mmcf->strict ? NGX_LOG_EMERG : NGX_LOG_WARN;

    if (ga && gb) {
        ngx_log_error(level, cf->log, 0,
                      "maintenance: server_name %s is gated by scope \"%V\" "
                      "at listen %s (%s:%ui) but by scope \"%V\" at listen "
                      "%s (%s:%ui), location \"%s%V\"",
                      what, &scopes[ga - 1], la, a->file_name, a->line,
                      &scopes[gb - 1], lb, b->file_name, b->line,
                      rx ? "~ " : "", uri);
        return NGX_DECLINED;
    }

    g = ga ? a : b;
    u = ga ? b : a;

    ngx_log_error(level, cf->log, 0,
                  "maintenance: server_name %s is gated (scope \"%V\") at "
                  "listen %s (%s:%ui) but not gated at listen %s (%s:%ui), "
                  "location \"%s%V\"",
                  what, &scopes[(ga ? ga : gb) - 1], ga ? la : lb,
                  g->file_name, g->line, ga ? lb : la, u->file_name, u->line,
                  rx ? "~ " : "", uri);

    return NGX_DECLINED;
}


/* every location below "level", nested ones too, in "locs" */

static ngx_int_t
ngx_http_maintenance_collect(ngx_http_core_loc_conf_t *level,
    ngx_array_t *locs)
{
#if (NGX_PCRE)
    ngx_http_core_loc_conf_t  **clcfp, **p;
#endif

    if (ngx_http_maintenance_collect_tree(level->static_locations, locs)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

#if (NGX_PCRE)
    for (clcfp = level->regex_locations; clcfp && *clcfp; clcfp++) {
        p = ngx_array_push(locs);
        if (p == NULL) {
            return NGX_ERROR;
        }

        *p = *clcfp;

        if (ngx_http_maintenance_collect(*clcfp, locs) != NGX_OK) {
            return NGX_ERROR;
        }
    }
#endif

    return NGX_OK;
}


static ngx_int_t
ngx_http_maintenance_collect_tree(ngx_http_location_tree_node_t *node,
    ngx_array_t *locs)
{
    ngx_http_core_loc_conf_t  **p;

    if (node == NULL) {
        return NGX_OK;
    }

    if (node->exact) {
        p = ngx_array_push(locs);
        if (p == NULL) {
            return NGX_ERROR;
        }

        *p = node->exact;
    }

    if (node->inclusive) {
        p = ngx_array_push(locs);
        if (p == NULL) {
            return NGX_ERROR;
        }

        *p = node->inclusive;

        if (ngx_http_maintenance_collect(node->inclusive, locs) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_maintenance_collect_tree(node->left, locs) != NGX_OK
        || ngx_http_maintenance_collect_tree(node->tree, locs) != NGX_OK
        || ngx_http_maintenance_collect_tree(node->right, locs) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The location a request for "uri" ends in, below "level", as nginx
 * chooses it: an exact match; else the longest prefix, then its nested
 * locations; then, unless that prefix has "^~", the first regex that
 * matches.  "level" itself when nothing matches.
 */

static ngx_http_core_loc_conf_t *
ngx_http_maintenance_find(ngx_http_core_loc_conf_t *level, ngx_str_t *uri)
{
    ngx_http_core_loc_conf_t   *exact, *prefix, *found;
#if (NGX_PCRE)
    ngx_http_core_loc_conf_t  **clcfp;
#endif

    exact = NULL;
    prefix = NULL;

    ngx_http_maintenance_find_tree(level->static_locations, uri, &exact,
                                   &prefix);

    if (exact) {
        return exact;
    }

    found = level;

    if (prefix) {
        found = ngx_http_maintenance_find(prefix, uri);

        if (found != prefix && found->exact_match) {
            return found;
        }

        if (prefix->noregex) {
            return found;
        }
    }

#if (NGX_PCRE)
    for (clcfp = level->regex_locations; clcfp && *clcfp; clcfp++) {
        if (ngx_regex_exec((*clcfp)->regex->regex, uri, NULL, 0) >= 0) {
            return ngx_http_maintenance_find(*clcfp, uri);
        }
    }
#endif

    return found;
}


static void
ngx_http_maintenance_find_tree(ngx_http_location_tree_node_t *node,
    ngx_str_t *uri, ngx_http_core_loc_conf_t **exact,
    ngx_http_core_loc_conf_t **prefix)
{
    ngx_str_t  *name;

    if (node == NULL) {
        return;
    }

    if (node->exact) {
        name = &node->exact->name;

        if (name->len == uri->len
            && ngx_strncmp(name->data, uri->data, uri->len) == 0)
        {
            *exact = node->exact;
        }
    }

    if (node->inclusive) {
        name = &node->inclusive->name;

        if (name->len <= uri->len
            && ngx_strncmp(name->data, uri->data, name->len) == 0
            && (*prefix == NULL || (*prefix)->name.len < name->len))
        {
            *prefix = node->inclusive;
        }
    }

    ngx_http_maintenance_find_tree(node->left, uri, exact, prefix);
    ngx_http_maintenance_find_tree(node->tree, uri, exact, prefix);
    ngx_http_maintenance_find_tree(node->right, uri, exact, prefix);
}


/*
 * 0: not gated, 1 + scope: gated by that scope, NGX_DECLINED: a health
 * or status location (never gated, not the application).  A server's own
 * core conf has no loc_conf: its server's is used.
 */

static ngx_int_t
ngx_http_maintenance_gating(ngx_http_core_loc_conf_t *clcf,
    ngx_http_core_srv_conf_t *cscf)
{
    void                            **loc_conf;
    ngx_http_maintenance_loc_conf_t  *mlcf;

    loc_conf = clcf->loc_conf ? clcf->loc_conf : cscf->ctx->loc_conf;
    mlcf = loc_conf[ngx_http_maintenance_module.ctx_index];

    if (mlcf->health != NGX_HTTP_MAINTENANCE_HEALTH_NONE || mlcf->status) {
        return NGX_DECLINED;
    }

    return mlcf->enable ? (ngx_int_t) (1 + mlcf->scope) : 0;
}


/* "addr, addr" of every listen of a server, NUL-terminated, bounded */

static u_char *
ngx_http_maintenance_listens(ngx_conf_t *cf, ngx_http_core_main_conf_t *cmcf,
    ngx_http_core_srv_conf_t *cscf)
{
    u_char                     *buf, *p, *last;
    ngx_uint_t                  i, j, k;
    ngx_http_conf_port_t       *port;
    ngx_http_conf_addr_t       *addr;
    ngx_http_core_srv_conf_t  **server;

    buf = ngx_pnalloc(cf->temp_pool, NGX_HTTP_MAINTENANCE_LISTEN_MAX + 1);
    if (buf == NULL) {
        return NULL;
    }

    p = buf;
    last = buf + NGX_HTTP_MAINTENANCE_LISTEN_MAX;

    if (cmcf->ports == NULL) {
        goto done;
    }

    port = cmcf->ports->elts;

    for (i = 0; i < cmcf->ports->nelts; i++) {
        addr = port[i].addrs.elts;

        for (j = 0; j < port[i].addrs.nelts; j++) {
            server = addr[j].servers.elts;

            for (k = 0; k < addr[j].servers.nelts; k++) {
                if (server[k] != cscf) {
                    continue;
                }

                if (p != buf) {
                    p = ngx_slprintf(p, last, ", ");
                }

                p = ngx_slprintf(p, last, "%V%s", &addr[j].opt.addr_text,
                                 addr[j].opt.ssl ? " ssl" : "");
            }
        }
    }

done:

    if (p == buf) {
        p = ngx_slprintf(p, last, "(none)");
    }

    *p = '\0';

    return buf;
}


static ngx_int_t
ngx_http_maintenance_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_maintenance_shctx_t  *octx = data;

    size_t                          len;
    ngx_slab_pool_t                *shpool;
    ngx_http_maintenance_sh_t      *sh;
    ngx_http_maintenance_shctx_t   *ctx;

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

    sh = ngx_slab_alloc(shpool, sizeof(ngx_http_maintenance_sh_t));
    if (sh == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(sh, sizeof(ngx_http_maintenance_sh_t));

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
ngx_http_maintenance_assign_slots(ngx_http_maintenance_shctx_t *ctx,
    ngx_log_t *log)
{
    ngx_int_t                          rc;
    ngx_str_t                         *name;
    ngx_uint_t                         i, j, fr;
    ngx_http_maintenance_sh_t         *sh;
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


static ngx_int_t
ngx_http_maintenance_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_maintenance_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
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
    size_t                             size;
    ngx_http_handler_pt               *h;
    ngx_http_core_main_conf_t         *cmcf;
    ngx_http_maintenance_shctx_t      *ctx;
    ngx_http_maintenance_main_conf_t  *mmcf;

    mmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_maintenance_module);

    if (ngx_http_maintenance_check_servers(cf, mmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    mmcf->slots = ngx_pcalloc(cf->pool,
                              mmcf->scopes.nelts * sizeof(ngx_uint_t));
    if (mmcf->slots == NULL) {
        return NGX_ERROR;
    }

    ctx = ngx_pcalloc(cf->pool, sizeof(ngx_http_maintenance_shctx_t));
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->mmcf = mmcf;

    size = ngx_align(sizeof(ngx_http_maintenance_sh_t), ngx_pagesize)
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

    *h = ngx_http_maintenance_handler;

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
    ngx_err_t                          err;
    ngx_uint_t                         i;
    ngx_file_info_t                    fi;
    ngx_http_maintenance_shctx_t      *ctx;
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
