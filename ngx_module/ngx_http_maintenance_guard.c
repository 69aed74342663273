/*
 * ngx_http_maintenance_guard.c: the consistency guard: servers that answer
 * one name must gate every URI alike (checked at configuration load).
 */

#include "ngx_http_maintenance_module.h"


#define NGX_HTTP_MAINTENANCE_LISTEN_MAX   256
#define NGX_HTTP_MAINTENANCE_HOST_MAX     256
#define NGX_HTTP_MAINTENANCE_MIXED        (-100)


static ngx_int_t ngx_http_maintenance_uniform(ngx_conf_t *cf,
    ngx_http_core_srv_conf_t *cscf);
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

ngx_int_t
ngx_http_maintenance_check_servers(ngx_conf_t *cf,
    ngx_http_maintenance_main_conf_t *mmcf)
{
    ngx_int_t                   *uniform, rc;
    ngx_uint_t                   a, b, i, j, found;
    ngx_http_server_name_t      *na, *nb, *shown, *as;
    ngx_http_core_srv_conf_t   **cscfp;
    ngx_http_core_main_conf_t   *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);
    cscfp = cmcf->servers.elts;
    found = 0;

    /*
     * a server gated alike in all its locations can differ only from one
     * that is not: thousands of uniform vhosts cost one pass, not a
     * comparison of every pair's names
     */

    uniform = ngx_palloc(cf->temp_pool,
                         (cmcf->servers.nelts + 1) * sizeof(ngx_int_t));
    if (uniform == NULL) {
        return NGX_ERROR;
    }

    for (a = 0; a < cmcf->servers.nelts; a++) {
        uniform[a] = ngx_http_maintenance_uniform(cf, cscfp[a]);

        if (uniform[a] == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    for (a = 0; a < cmcf->servers.nelts; a++) {
        for (b = a + 1; b < cmcf->servers.nelts; b++) {

            if (uniform[a] == uniform[b]
                && uniform[a] != NGX_HTTP_MAINTENANCE_MIXED)
            {
                continue;
            }

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
 * The gating every location of a server shares (see gating()), or
 * NGX_HTTP_MAINTENANCE_MIXED.
 */

static ngx_int_t
ngx_http_maintenance_uniform(ngx_conf_t *cf, ngx_http_core_srv_conf_t *cscf)
{
    ngx_int_t                   g, u;
    ngx_uint_t                  i;
    ngx_array_t                 locs;
    ngx_http_core_loc_conf_t   *root, **cl;

    root = cscf->ctx->loc_conf[ngx_http_core_module.ctx_index];

    if (ngx_array_init(&locs, cf->temp_pool, 16,
                       sizeof(ngx_http_core_loc_conf_t *))
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ngx_http_maintenance_collect(root, &locs) != NGX_OK) {
        return NGX_ERROR;
    }

    u = ngx_http_maintenance_gating(root, cscf);
    cl = locs.elts;

    for (i = 0; i < locs.nelts; i++) {
        g = ngx_http_maintenance_gating(cl[i], cscf);

        if (g != NGX_DECLINED && g != u) {
            return NGX_HTTP_MAINTENANCE_MIXED;
        }
    }

    return u;
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
