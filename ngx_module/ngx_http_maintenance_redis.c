/*
 * ngx_http_maintenance_redis.c: the hiredis async adapter on nginx's event
 * loop.  hiredis owns the socket: we watch it and never close it.
 */

#include "ngx_http_maintenance_module.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


/*
 * One per attached context, allocated with ngx_alloc() at attach and freed
 * in the cleanup hook.  ac->ev.data points here until cleanup, NULL after:
 * every hook checks it, so a late call after cleanup does nothing.
 */
typedef struct {
    redisAsyncContext                     *ac;
    ngx_connection_t                      *c;
    ngx_http_maintenance_redis_closed_pt   closed;
    void                                  *data;
} ngx_http_maintenance_redis_ev_t;


static void ngx_http_maintenance_redis_read_handler(ngx_event_t *rev);
static void ngx_http_maintenance_redis_write_handler(ngx_event_t *wev);
static void ngx_http_maintenance_redis_add_read(void *privdata);
static void ngx_http_maintenance_redis_del_read(void *privdata);
static void ngx_http_maintenance_redis_add_write(void *privdata);
static void ngx_http_maintenance_redis_del_write(void *privdata);
static void ngx_http_maintenance_redis_cleanup(void *privdata);


/*
 * Wraps the context's socket in an nginx connection taken from the free
 * list and installs the five hooks.  Call it right after
 * redisAsyncConnect*() and before setting any callback: setting the connect
 * callback already asks for a write event.  On NGX_ERROR nothing is
 * attached and the caller frees the context.  "closed" runs once, from the
 * cleanup hook, whenever hiredis frees the context for any reason (connect
 * failure, EOF, error, redisAsyncFree()); it must not call into this
 * context again and must not reconnect synchronously.
 */

ngx_int_t
ngx_http_maintenance_redis_attach(redisAsyncContext *ac, ngx_log_t *log,
    ngx_http_maintenance_redis_closed_pt closed, void *data)
{
    ngx_connection_t                 *c;
    ngx_http_maintenance_redis_ev_t  *e;

    if (ac->ev.data != NULL) {
        return NGX_ERROR;
    }

    e = ngx_alloc(sizeof(ngx_http_maintenance_redis_ev_t), log);
    if (e == NULL) {
        return NGX_ERROR;
    }

    c = ngx_get_connection(ac->c.fd, log);
    if (c == NULL) {
        ngx_free(e);
        return NGX_ERROR;
    }

    e->ac = ac;
    e->c = c;
    e->closed = closed;
    e->data = data;

    c->data = e;
    c->log = log;
    c->read->log = log;
    c->write->log = log;
    c->read->handler = ngx_http_maintenance_redis_read_handler;
    c->write->handler = ngx_http_maintenance_redis_write_handler;
    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);

    /*
     * idle: at graceful shutdown nginx sets c->close and calls the read
     * handler, which lets go of the link at once instead of at exit
     */
    c->idle = 1;

    ac->ev.addRead = ngx_http_maintenance_redis_add_read;
    ac->ev.delRead = ngx_http_maintenance_redis_del_read;
    ac->ev.addWrite = ngx_http_maintenance_redis_add_write;
    ac->ev.delWrite = ngx_http_maintenance_redis_del_write;
    ac->ev.cleanup = ngx_http_maintenance_redis_cleanup;
    ac->ev.data = e;

    return NGX_OK;
}


/*
 * Both handlers hand the event to hiredis and touch nothing after: the call
 * may free the context, our ev struct and the nginx connection (and the
 * connection may then be reused by the closed callback's caller).
 */

static void
ngx_http_maintenance_redis_read_handler(ngx_event_t *rev)
{
    ngx_connection_t                 *c;
    ngx_http_maintenance_redis_ev_t  *e;

    c = rev->data;
    e = c->data;

    if (c->close) {
        /* graceful shutdown: ngx_close_idle_connections() */
        redisAsyncFree(e->ac);
        return;
    }

    redisAsyncHandleRead(e->ac);
}


static void
ngx_http_maintenance_redis_write_handler(ngx_event_t *wev)
{
    ngx_connection_t                 *c;
    ngx_http_maintenance_redis_ev_t  *e;

    c = wev->data;
    e = c->data;

    redisAsyncHandleWrite(e->ac);
}


/*
 * The hooks are idempotent (hiredis re-adds the read event after every
 * read).  Events are level-triggered, so hiredis's 16 KB reads need not
 * drain the socket: the next loop iteration reports it again.
 */

static void
ngx_http_maintenance_redis_add_read(void *privdata)
{
    ngx_event_t                      *rev;
    ngx_http_maintenance_redis_ev_t  *e;

    e = privdata;

    if (e == NULL) {
        return;
    }

    rev = e->c->read;

    if (!rev->active) {
        (void) ngx_add_event(rev, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_maintenance_redis_del_read(void *privdata)
{
    ngx_event_t                      *rev;
    ngx_http_maintenance_redis_ev_t  *e;

    e = privdata;

    if (e == NULL) {
        return;
    }

    rev = e->c->read;

    if (rev->active) {
        (void) ngx_del_event(rev, NGX_READ_EVENT, 0);
    }

    if (rev->posted) {
        ngx_delete_posted_event(rev);
    }
}


static void
ngx_http_maintenance_redis_add_write(void *privdata)
{
    ngx_event_t                      *wev;
    ngx_http_maintenance_redis_ev_t  *e;

    e = privdata;

    if (e == NULL) {
        return;
    }

    wev = e->c->write;

    if (!wev->active) {
        (void) ngx_add_event(wev, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_maintenance_redis_del_write(void *privdata)
{
    ngx_event_t                      *wev;
    ngx_http_maintenance_redis_ev_t  *e;

    e = privdata;

    if (e == NULL) {
        return;
    }

    wev = e->c->write;

    if (wev->active) {
        (void) ngx_del_event(wev, NGX_WRITE_EVENT, 0);
    }

    if (wev->posted) {
        ngx_delete_posted_event(wev);
    }
}


/*
 * Called by hiredis right before it closes the socket and frees the
 * context.  Unlike the public nginx adapters we do not close the fd (hiredis
 * does, in redisFree(): closing it here too would close a descriptor number
 * that may already belong to someone else): remove the events while the fd
 * is still open, drop posted events and timers, give the connection back
 * with fd -1 so that stale epoll reports are ignored, then tell the owner.
 */

static void
ngx_http_maintenance_redis_cleanup(void *privdata)
{
    void                                  *data;
    ngx_connection_t                      *c;
    redisAsyncContext                     *ac;
    ngx_http_maintenance_redis_ev_t       *e;
    ngx_http_maintenance_redis_closed_pt   closed;

    e = privdata;

    if (e == NULL) {
        return;
    }

    c = e->c;
    ac = e->ac;
    closed = e->closed;
    data = e->data;

    ac->ev.data = NULL;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    if (c->read->active) {
        (void) ngx_del_event(c->read, NGX_READ_EVENT, 0);
    }

    if (c->write->active) {
        (void) ngx_del_event(c->write, NGX_WRITE_EVENT, 0);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    c->read->closed = 1;
    c->write->closed = 1;

    ngx_free_connection(c);

    c->fd = (ngx_socket_t) -1;

    ngx_free(e);

    if (closed) {
        closed(data, ac);
    }
}
