/*
 * ngx_http_maintenance_redis.c: one Redis connection driven on nginx's event
 * loop: our socket, our timers, hiredis's redisReader only to parse replies.
 */

#include "ngx_http_maintenance_module.h"
#include "ngx_http_maintenance_reply.h"


static void ngx_http_maintenance_redis_read_handler(ngx_event_t *rev);
static void ngx_http_maintenance_redis_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_http_maintenance_redis_flush(
    ngx_http_maintenance_redis_t *rc);
static void ngx_http_maintenance_redis_fail(ngx_http_maintenance_redis_t *rc,
    ngx_err_t err, const char *why, ngx_uint_t malformed);


/*
 * Starts a non-blocking connect.  NGX_OK: connecting (replies and "closed"
 * follow from the event loop); NGX_ERROR: nothing started, rc->why says
 * why.  Commands may be sent at once: they wait in the output buffer.
 */

ngx_int_t
ngx_http_maintenance_redis_connect(ngx_http_maintenance_redis_t *rc)
{
    int                 rv, on;
    ngx_err_t           err;
    ngx_socket_t        s;
    redisReader        *reader;
    ngx_connection_t   *c;
    const char         *op;

    if (rc->c) {
        return NGX_OK;
    }

    rc->head = 0;
    rc->n = 0;
    rc->out_len = 0;
    rc->out_sent = 0;
    rc->connected = 0;
    rc->malformed = 0;
    rc->too_large = 0;
    rc->timedout = 0;
    rc->why[0] = '\0';

    reader = ngx_http_maintenance_reply_reader(&rc->too_large);
    if (reader == NULL) {
        ngx_cpystrn((u_char *) rc->why, (u_char *) "out of memory",
                    sizeof(rc->why));
        return NGX_ERROR;
    }

    s = ngx_socket(rc->sockaddr->sa_family, SOCK_STREAM, 0);
    if (s == (ngx_socket_t) -1) {
        err = ngx_socket_errno;
        op = ngx_socket_n;
        goto failed;
    }

    c = ngx_get_connection(s, rc->log);
    if (c == NULL) {
        (void) ngx_close_socket(s);
        redisReaderFree(reader);
        ngx_cpystrn((u_char *) rc->why, (u_char *) "no free nginx connection",
                    sizeof(rc->why));
        return NGX_ERROR;
    }

    if (ngx_nonblocking(s) == -1) {
        err = ngx_socket_errno;
        op = ngx_nonblocking_n;
        goto failed_close;
    }

    if (rc->sockaddr->sa_family != AF_UNIX) {
        on = 1;
        (void) setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(int));
        ngx_http_maintenance_redis_keepalive(s);
    }

    c->recv = ngx_recv;
    c->send = ngx_send;
    c->log = rc->log;
    c->read->log = rc->log;
    c->write->log = rc->log;
    c->log_error = NGX_ERROR_INFO;
    c->data = rc;
    c->read->handler = ngx_http_maintenance_redis_read_handler;
    c->write->handler = ngx_http_maintenance_redis_write_handler;
    c->number = ngx_atomic_fetch_add(ngx_connection_counter, 1);

    /*
     * idle: at graceful shutdown nginx sets c->close and calls the read
     * handler, which lets go of the link at once instead of at exit
     */
    c->idle = 1;

    rc->c = c;
    rc->reader = reader;

    if (ngx_add_conn) {
        if (ngx_add_conn(c) == NGX_ERROR) {
            err = 0;
            op = "adding the connection to the event loop";
            goto failed_close;
        }

    } else if (ngx_add_event(c->read, NGX_READ_EVENT,
                             (ngx_event_flags & NGX_USE_CLEAR_EVENT)
                             ? NGX_CLEAR_EVENT : NGX_LEVEL_EVENT)
               != NGX_OK
               || ngx_add_event(c->write, NGX_WRITE_EVENT,
                                (ngx_event_flags & NGX_USE_CLEAR_EVENT)
                                ? NGX_CLEAR_EVENT : NGX_LEVEL_EVENT)
                  != NGX_OK)
    {
        err = 0;
        op = "adding the connection to the event loop";
        goto failed_close;
    }

    rv = connect(s, rc->sockaddr, rc->socklen);

    if (rv == -1) {
        err = ngx_socket_errno;

        if (err != NGX_EINPROGRESS
#if (NGX_LINUX)
            /* a full unix socket backlog: as a refusal */
            && err != NGX_EAGAIN
#endif
            )
        {
            op = "connect()";
            goto failed_close;
        }
    }

    /* the connect, then each reply, must come within the timeout */
    ngx_add_timer(c->write, rc->timeout);

    return NGX_OK;

failed_close:

    rc->c = NULL;
    rc->reader = NULL;
    ngx_close_connection(c);

failed:

    redisReaderFree(reader);

    if (err) {
        (void) ngx_snprintf((u_char *) rc->why, sizeof(rc->why) - 1,
                            "%s failed (%d: %s)%Z", op, err,
                            strerror(err));
    } else {
        (void) ngx_snprintf((u_char *) rc->why, sizeof(rc->why) - 1,
                            "%s failed%Z", op);
    }

    return NGX_ERROR;
}


/*
 * Queues one command (RESP array of bulk strings) and its reply handler.
 * Never closes the connection and never calls a handler: the write happens
 * from the event loop (a posted write event), so a handler may send.
 */

ngx_int_t
ngx_http_maintenance_redis_send(ngx_http_maintenance_redis_t *rc,
    ngx_http_maintenance_redis_reply_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen)
{
    int                              i;
    u_char                          *p, *out;
    size_t                           size;
    ngx_connection_t                *c;
    ngx_http_maintenance_redis_cb_t *cb;

    c = rc->c;

    if (c == NULL || rc->n == NGX_HTTP_MAINTENANCE_REDIS_QUEUE) {
        return NGX_ERROR;
    }

    size = 1 + NGX_INT_T_LEN + 2;

    for (i = 0; i < argc; i++) {
        size += 1 + NGX_SIZE_T_LEN + 2 + argvlen[i] + 2;
    }

    if (rc->out_len + size > rc->out_size) {
        size = ngx_max(rc->out_len + size, 2 * rc->out_size);
        size = ngx_max(size, 4096);

        out = ngx_alloc(size, rc->log);
        if (out == NULL) {
            return NGX_ERROR;
        }

        if (rc->out) {
            ngx_memcpy(out, rc->out, rc->out_len);
            ngx_free(rc->out);
        }

        rc->out = out;
        rc->out_size = size;
    }

    p = rc->out + rc->out_len;
    p = ngx_sprintf(p, "*%d\r\n", argc);

    for (i = 0; i < argc; i++) {
        p = ngx_sprintf(p, "$%uz\r\n", argvlen[i]);
        p = ngx_cpymem(p, argv[i], argvlen[i]);
        *p++ = '\r';
        *p++ = '\n';
    }

    rc->out_len = p - rc->out;

    cb = &rc->queue[(rc->head + rc->n) % NGX_HTTP_MAINTENANCE_REDIS_QUEUE];
    cb->handler = handler;
    cb->data = data;
    rc->n++;

    if (rc->connected) {
        if (!c->read->timer_set) {
            ngx_add_timer(c->read, rc->timeout);
        }

        if (!c->write->posted) {
            ngx_post_event(c->write, &ngx_posted_events);
        }
    }

    return NGX_OK;
}


/*
 * Closes the connection, if open, and tells the owner through "closed",
 * once.  Safe inside a reply handler: the read loop sees the connection
 * gone and stops.
 */

void
ngx_http_maintenance_redis_close(ngx_http_maintenance_redis_t *rc,
    const char *why)
{
    ngx_connection_t  *c;

    c = rc->c;

    if (c == NULL) {
        return;
    }

    rc->c = NULL;
    rc->n = 0;
    rc->out_len = 0;
    rc->out_sent = 0;
    rc->gen++;

    if (rc->reader) {
        redisReaderFree(rc->reader);
        rc->reader = NULL;
    }

    ngx_close_connection(c);

    if (rc->out && rc->out_size > 65536) {
        /* a burst of commands does not pin its buffer for ever */
        ngx_free(rc->out);
        rc->out = NULL;
        rc->out_size = 0;
    }

    if (why != rc->why) {
        ngx_cpystrn((u_char *) rc->why, (u_char *) why, sizeof(rc->why));
    }

    if (rc->closed) {
        rc->closed(rc, rc->why);
    }
}


/* the one place the output buffer is released: at exit */

void
ngx_http_maintenance_redis_free(ngx_http_maintenance_redis_t *rc)
{
    rc->closed = NULL;

    ngx_http_maintenance_redis_close(rc, "exiting");

    if (rc->out) {
        ngx_free(rc->out);
        rc->out = NULL;
        rc->out_size = 0;
    }
}


/*
 * Replies in order to the queued handlers; a reply nobody waits for goes to
 * "push" (pub/sub messages), or is a protocol error.  Each handler checks
 * the shape of what it gets: the reader only guarantees a well-formed RESP
 * value.  Events are edge-triggered where nginx uses them so: read until
 * EAGAIN.
 */

static void
ngx_http_maintenance_redis_read_handler(ngx_event_t *rev)
{
    int                               rv;
    u_char                            buf[NGX_HTTP_MAINTENANCE_REPLY_CHUNK];
    ssize_t                           n;
    redisReply                       *r;
    const char                       *err;
    ngx_uint_t                        gen;
    redisReader                      *reader;
    ngx_connection_t                 *c;
    ngx_http_maintenance_redis_t     *rc;
    ngx_http_maintenance_redis_cb_t   cb;

    c = rev->data;
    rc = c->data;

    if (c->close) {
        /* graceful shutdown: ngx_close_idle_connections() */
        ngx_http_maintenance_redis_close(rc, "nginx is shutting down");
        return;
    }

    if (rev->timedout) {
        rc->timedout = 1;
        ngx_http_maintenance_redis_close(rc, "timed out");
        return;
    }

    gen = rc->gen;
    reader = rc->reader;

    for ( ;; ) {
        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            break;
        }

        if (n == 0) {
            ngx_http_maintenance_redis_close(rc, "connection closed by the "
                                                 "server");
            return;
        }

        if (n == NGX_ERROR) {
            ngx_http_maintenance_redis_fail(rc, ngx_socket_errno,
                                            rc->connected ? "recv()"
                                                          : "connect()", 0);
            return;
        }

        if (redisReaderFeed(reader, (const char *) buf, n) != REDIS_OK) {
            ngx_http_maintenance_redis_close(rc, "out of memory");
            return;
        }

        for ( ;; ) {
            r = NULL;

            rv = ngx_http_maintenance_reply_next(reader, &rc->too_large, &r,
                                                 &err);
            if (rv == -1) {
                ngx_http_maintenance_redis_fail(rc, 0, err, 1);
                return;
            }

            if (rv == 0) {
                break;
            }

            if (rc->n) {
                cb = rc->queue[rc->head];
                rc->head = (rc->head + 1) % NGX_HTTP_MAINTENANCE_REDIS_QUEUE;
                rc->n--;

                /* the deadline moves on, or goes when nothing is due */
                if (rc->n == 0) {
                    if (rev->timer_set) {
                        ngx_del_timer(rev);
                    }

                } else {
                    ngx_add_timer(rev, rc->timeout);
                }

            } else if (rc->push) {
                cb.handler = rc->push;
                cb.data = rc->data;

            } else {
                freeReplyObject(r);
                ngx_http_maintenance_redis_fail(rc, 0, "a reply nothing was "
                                                "asked for", 1);
                return;
            }

            cb.handler(rc, r, cb.data);

            freeReplyObject(r);

            if (rc->gen != gen) {
                /* closed by the handler */
                return;
            }
        }

        if (ngx_http_maintenance_reply_over(reader)) {
            ngx_http_maintenance_redis_fail(rc, 0, "a reply larger than "
                                            "4 MB", 1);
            return;
        }
    }

    if (ngx_handle_read_event(rev, 0) != NGX_OK) {
        ngx_http_maintenance_redis_close(rc, "event error");
    }
}


static void
ngx_http_maintenance_redis_write_handler(ngx_event_t *wev)
{
    int                            err;
    socklen_t                      len;
    ngx_connection_t              *c;
    ngx_http_maintenance_redis_t  *rc;

    c = wev->data;
    rc = c->data;

    if (wev->timedout) {
        rc->timedout = 1;
        ngx_http_maintenance_redis_close(rc, "timed out");
        return;
    }

    if (!rc->connected) {
        err = 0;
        len = sizeof(int);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, (void *) &err, &len)
            == -1)
        {
            err = ngx_socket_errno;
        }

        if (err) {
            ngx_http_maintenance_redis_fail(rc, err, "connect()", 0);
            return;
        }

        rc->connected = 1;

        if (wev->timer_set) {
            ngx_del_timer(wev);
        }

        if (rc->n && !c->read->timer_set) {
            ngx_add_timer(c->read, rc->timeout);
        }
    }

    if (ngx_http_maintenance_redis_flush(rc) != NGX_OK) {
        return;
    }

    if (ngx_handle_write_event(wev, 0) != NGX_OK) {
        ngx_http_maintenance_redis_close(rc, "event error");
    }
}


static ngx_int_t
ngx_http_maintenance_redis_flush(ngx_http_maintenance_redis_t *rc)
{
    ssize_t            n;
    ngx_connection_t  *c;

    c = rc->c;

    while (rc->out_sent < rc->out_len) {
        n = c->send(c, rc->out + rc->out_sent, rc->out_len - rc->out_sent);

        if (n == NGX_AGAIN) {
            return NGX_OK;
        }

        if (n == NGX_ERROR || n == 0) {
            ngx_http_maintenance_redis_fail(rc, ngx_socket_errno, "send()", 0);
            return NGX_ERROR;
        }

        rc->out_sent += n;
    }

    rc->out_sent = 0;
    rc->out_len = 0;

    return NGX_OK;
}


static void
ngx_http_maintenance_redis_fail(ngx_http_maintenance_redis_t *rc,
    ngx_err_t err, const char *why, ngx_uint_t malformed)
{
    u_char  *p, *last;

    last = (u_char *) rc->why + sizeof(rc->why) - 1;

    if (malformed) {
        p = ngx_slprintf((u_char *) rc->why, last, "malformed reply: %s",
                         why);

    } else if (err) {
        p = ngx_slprintf((u_char *) rc->why, last, "%s failed (%d: %s)",
                         why, err, strerror(err));

    } else {
        p = ngx_slprintf((u_char *) rc->why, last, "%s failed", why);
    }

    *p = '\0';

    ngx_http_maintenance_printable(rc->why);

    rc->malformed = malformed;

    ngx_http_maintenance_redis_close(rc, rc->why);
}


/*
 * The subscriber idles for hours: a NAT or firewall that forgets the
 * connection would silently end pub/sub (polls would go on).  TCP
 * keepalive finds out in about 90 s and the link starts over.  Best
 * effort: a failure changes nothing else.
 */

void
ngx_http_maintenance_redis_keepalive(ngx_socket_t fd)
{
    int  on, idle, intvl, cnt;

    on = 1;
    idle = 60;
    intvl = 10;
    cnt = 3;

    (void) setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(int));

#if (NGX_HAVE_KEEPALIVE_TUNABLE)
    (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(int));
    (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(int));
    (void) setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(int));
#else
    (void) idle;
    (void) intvl;
    (void) cnt;
#endif
}


/* text from the network goes into the log with control bytes replaced */

void
ngx_http_maintenance_printable(char *s)
{
    for ( /* void */ ; *s; s++) {
        if ((u_char) *s < 0x20 || (u_char) *s == 0x7f) {
            *s = '?';
        }
    }
}
