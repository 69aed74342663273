/*
 * ngx_http_maintenance_gate.c: the request path: the gate in the rewrite
 * phase, its bypasses, the maintenance response and the variables.
 */

#include "ngx_http_maintenance_module.h"


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
static ngx_int_t ngx_http_maintenance_decided(ngx_http_request_t *r,
    ngx_http_maintenance_main_conf_t *mmcf,
    ngx_http_maintenance_scope_sh_t *ssh, ngx_uint_t on);
static void ngx_http_maintenance_mode_value(ngx_http_variable_value_t *v,
    ngx_uint_t on);
static ngx_int_t ngx_http_maintenance_epoch_value(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_atomic_uint_t epoch);


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


/*
 * The gate.  It runs in the rewrite phase ahead of the rewrite module
 * (see ngx_http_maintenance_init, ngx_http_maintenance_conf.c), so
 * "return" and "rewrite" in a gated location never run while the scope is
 * on.  The decision reads one word of the zone: no lock, no syscall, no
 * allocation.
 *
 * The request counters are the only writes to the zone on the request
 * path: one atomic add per request in a gated location, on a cache line
 * shared by every worker.  They are statistics; nothing decides on them.
 */

ngx_int_t
ngx_http_maintenance_gate_handler(ngx_http_request_t *r)
{
    ngx_uint_t                         on;
    ngx_str_t                         *bypass;
    ngx_http_maintenance_shctx_t      *sh;
    ngx_http_maintenance_ctx_t        *ctx;
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

        on = ssh->on;

        if (ngx_http_maintenance_decided(r, mmcf, ssh, on) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (!on) {
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

ngx_int_t
ngx_http_maintenance_confirm_handler(ngx_http_request_t *r)
{
    ngx_http_maintenance_shctx_t      *sh;
    ngx_http_maintenance_ctx_t        *ctx;
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
    ngx_list_t                       old;
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

    /*
     * built in place: a copied ngx_list_t would keep "last" pointing at
     * the copy's own first part
     */

    old = r->headers_in.headers;

    if (ngx_list_init(&r->headers_in.headers, r->pool, ngx_max(n, 20),
                      sizeof(ngx_table_elt_t))
        != NGX_OK)
    {
        r->headers_in.headers = old;
        return NGX_ERROR;
    }

    part = &old.part;
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

        nh = ngx_list_push(&r->headers_in.headers);
        if (nh == NULL) {
            return NGX_ERROR;
        }

        *nh = h[i];
    }

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

    ngx_http_maintenance_mode_value(v, ssh->on);

    return NGX_OK;
}


static ngx_int_t
ngx_http_maintenance_epoch_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_http_maintenance_scope_sh_t   *ssh;
    ngx_http_maintenance_loc_conf_t   *mlcf;
    ngx_http_maintenance_main_conf_t  *mmcf;

    mmcf = ngx_http_get_module_main_conf(r, ngx_http_maintenance_module);
    mlcf = ngx_http_get_module_loc_conf(r, ngx_http_maintenance_module);

    ssh = ngx_http_maintenance_scope_sh(mmcf, mlcf);

    return ngx_http_maintenance_epoch_value(r, v, ssh->epoch);
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
 * What the gate decided goes into the request's own copy of $maintenance
 * and $maintenance_epoch, when the configuration uses them: an access log
 * line written after the scope changed still says what this request got.
 * Nothing is allocated unless $maintenance_epoch is used.  The epoch is
 * read just after "on": a change landing between the two reads shows the
 * new epoch with the old mode, never a mode that was not decided.
 */

static ngx_int_t
ngx_http_maintenance_decided(ngx_http_request_t *r,
    ngx_http_maintenance_main_conf_t *mmcf,
    ngx_http_maintenance_scope_sh_t *ssh, ngx_uint_t on)
{
    if (mmcf->var_mode != NGX_ERROR) {
        ngx_http_maintenance_mode_value(&r->variables[mmcf->var_mode], on);
    }

    if (mmcf->var_epoch == NGX_ERROR) {
        return NGX_OK;
    }

    return ngx_http_maintenance_epoch_value(r,
                                            &r->variables[mmcf->var_epoch],
                                            ssh->epoch);
}


static void
ngx_http_maintenance_mode_value(ngx_http_variable_value_t *v, ngx_uint_t on)
{
    if (on) {
        v->len = sizeof("on") - 1;
        v->data = (u_char *) "on";

    } else {
        v->len = sizeof("off") - 1;
        v->data = (u_char *) "off";
    }

    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
}


static ngx_int_t
ngx_http_maintenance_epoch_value(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, ngx_atomic_uint_t epoch)
{
    u_char  *p;

    p = ngx_pnalloc(r->pool, NGX_ATOMIC_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%uA", epoch) - p;
    v->data = p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


/*
 * Postconfiguration: whether the configuration uses $maintenance and
 * $maintenance_epoch.  Every directive that refers to a variable (log
 * formats, add_header, set, map) has indexed it by now.
 */

void
ngx_http_maintenance_variables_used(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf)
{
    ngx_str_t                  *name;
    ngx_uint_t                  i;
    ngx_http_variable_t        *v;
    ngx_http_core_main_conf_t  *cmcf;

    mmcf->var_mode = NGX_ERROR;
    mmcf->var_epoch = NGX_ERROR;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    v = cmcf->variables.elts;

    for (i = 0; i < cmcf->variables.nelts; i++) {
        name = &v[i].name;

        if (name->len == sizeof("maintenance") - 1
            && ngx_strncmp(name->data, "maintenance", name->len) == 0)
        {
            mmcf->var_mode = i;

        } else if (name->len == sizeof("maintenance_epoch") - 1
                   && ngx_strncmp(name->data, "maintenance_epoch",
                                  name->len)
                      == 0)
        {
            mmcf->var_epoch = i;
        }
    }
}


ngx_int_t
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
