/*
 * ngx_http_maintenance_reply.c: what worker 0 accepts from Redis: hiredis's
 * reader with our limits, and the shape of every reply, without nginx.
 */

#include <string.h>
#include <strings.h>

#include "ngx_http_maintenance_reply.h"


static void *ngx_http_maintenance_reply_create_array(
    const redisReadTask *task, int elements);
static int ngx_http_maintenance_reply_is(const redisReply *r, const char *s);
static void ngx_http_maintenance_reply_copy(char *dst, size_t size,
    const char *src);


/*
 * The reader's functions: hiredis's own, except that an array longer than
 * any reply we ask for is refused before it is allocated.  Filled from the
 * first reader created (hiredis keeps its defaults static).
 */
static redisReplyObjectFunctions   ngx_http_maintenance_reply_fns;
static void *(*ngx_http_maintenance_reply_array)(const redisReadTask *task,
    int elements);


redisReader *
ngx_http_maintenance_reply_reader(int *too_large)
{
    redisReader  *reader;

    reader = redisReaderCreate();
    if (reader == NULL) {
        return NULL;
    }

    if (ngx_http_maintenance_reply_array == NULL) {
        ngx_http_maintenance_reply_fns = *reader->fn;
        ngx_http_maintenance_reply_array = reader->fn->createArray;
        ngx_http_maintenance_reply_fns.createArray =
                                    ngx_http_maintenance_reply_create_array;
    }

    *too_large = 0;

    reader->fn = &ngx_http_maintenance_reply_fns;
    reader->privdata = too_large;

    return reader;
}


int
ngx_http_maintenance_reply_next(redisReader *reader, const int *too_large,
    redisReply **reply, const char **err)
{
    void  *r;

    r = NULL;

    if (redisReaderGetReply(reader, &r) != REDIS_OK) {
        /* the reader reports a refused array as out of memory */
        *err = *too_large ? "an array of more than 4096 elements"
                          : reader->errstr;
        return -1;
    }

    if (r == NULL) {
        return 0;
    }

    *reply = r;

    return 1;
}


int
ngx_http_maintenance_reply_over(redisReader *reader)
{
    return reader->len - reader->pos > NGX_HTTP_MAINTENANCE_REPLY_IN_MAX;
}


int
ngx_http_maintenance_reply_handshake(const redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR) {
        return NGX_HTTP_MAINTENANCE_REPLY_REFUSED;
    }

    if (r->type != REDIS_REPLY_STATUS) {
        return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
    }

    return NGX_HTTP_MAINTENANCE_REPLY_OK;
}


int
ngx_http_maintenance_reply_pubsub(const redisReply *r, int subscribed,
    char *scope, size_t scope_size, uint64_t *epoch, const char **why)
{
    const redisReply  *msg;

    if (r->type == REDIS_REPLY_ERROR && !subscribed) {
        return NGX_HTTP_MAINTENANCE_REPLY_REFUSED;
    }

    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3
        || r->element[0]->type != REDIS_REPLY_STRING
        || r->element[1]->type != REDIS_REPLY_STRING)
    {
        *why = "not a pub/sub message";
        return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
    }

    if (ngx_http_maintenance_reply_is(r->element[0], "subscribe")) {
        if (subscribed || r->element[2]->type != REDIS_REPLY_INTEGER) {
            *why = "unexpected subscribe reply";
            return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
        }

        return NGX_HTTP_MAINTENANCE_REPLY_SUBSCRIBED;
    }

    msg = r->element[2];

    if (!ngx_http_maintenance_reply_is(r->element[0], "message")
        || msg->type != REDIS_REPLY_STRING || !subscribed)
    {
        *why = "unexpected pub/sub message";
        return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
    }

    /* a bad event is only a hint lost: the next poll reads the state */

    if (mig_event_parse(msg->str, msg->len, scope, scope_size, epoch,
                        NULL, 0)
        != MIG_OK)
    {
        return NGX_HTTP_MAINTENANCE_REPLY_NOEVENT;
    }

    return NGX_HTTP_MAINTENANCE_REPLY_EVENT;
}


/*
 * Decodes HGETALL's reply with the shared codec.  Values are data from the
 * network: the whole record is accepted or the last good state is kept.
 */

int
ngx_http_maintenance_reply_state(const redisReply *r, mig_state_t *st,
    char *err, size_t errlen)
{
    size_t             i;
    const redisReply  *f, *v;

    if (r->type == REDIS_REPLY_ERROR) {
        /*
         * WRONGTYPE is about the key (a malformed state); any other error
         * (NOAUTH, LOADING, BUSY, ...) is about the server
         */

        if (r->len < 9 || strncmp(r->str, "WRONGTYPE", 9) != 0) {
            return NGX_HTTP_MAINTENANCE_REPLY_REFUSED;
        }

        ngx_http_maintenance_reply_copy(err, errlen, r->str);
        return NGX_HTTP_MAINTENANCE_REPLY_BAD_STATE;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        ngx_http_maintenance_reply_copy(err, errlen, "not a hash");
        return NGX_HTTP_MAINTENANCE_REPLY_BAD_STATE;
    }

    if (r->elements == 0) {
        return NGX_HTTP_MAINTENANCE_REPLY_MISSING;
    }

    if (r->elements % 2
        || r->elements > 2 * NGX_HTTP_MAINTENANCE_REPLY_FIELDS_MAX)
    {
        ngx_http_maintenance_reply_copy(err, errlen,
                                        "too many fields in the hash");
        return NGX_HTTP_MAINTENANCE_REPLY_BAD_STATE;
    }

    mig_state_init(st);

    for (i = 0; i < r->elements; i += 2) {
        f = r->element[i];
        v = r->element[i + 1];

        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            ngx_http_maintenance_reply_copy(err, errlen,
                                            "a field is not a string");
            return NGX_HTTP_MAINTENANCE_REPLY_BAD_STATE;
        }

        if (mig_state_field(st, f->str, f->len, v->str, v->len, err, errlen)
            != MIG_OK)
        {
            return NGX_HTTP_MAINTENANCE_REPLY_BAD_STATE;
        }
    }

    if (mig_state_finish(st, err, errlen) != MIG_OK) {
        return NGX_HTTP_MAINTENANCE_REPLY_BAD_STATE;
    }

    return NGX_HTTP_MAINTENANCE_REPLY_OK;
}


int
ngx_http_maintenance_reply_heartbeat(const redisReply *r, int exec,
    const redisReply **bad, const char **why)
{
    size_t  i;

    *bad = NULL;
    *why = NULL;

    if (r->type == REDIS_REPLY_ERROR) {
        *bad = r;
        return NGX_HTTP_MAINTENANCE_REPLY_FAILED;
    }

    if (!exec) {
        if (r->type != REDIS_REPLY_STATUS) {
            *why = "heartbeat: not a status";
            return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
        }

        return NGX_HTTP_MAINTENANCE_REPLY_OK;
    }

    if (r->type == REDIS_REPLY_NIL) {
        *why = "transaction aborted";
        return NGX_HTTP_MAINTENANCE_REPLY_FAILED;
    }

    if (r->type != REDIS_REPLY_ARRAY) {
        *why = "heartbeat: EXEC is not an array";
        return NGX_HTTP_MAINTENANCE_REPLY_MALFORMED;
    }

    for (i = 0; i < r->elements; i++) {
        if (r->element[i]->type == REDIS_REPLY_ERROR) {
            *bad = r->element[i];
            return NGX_HTTP_MAINTENANCE_REPLY_FAILED;
        }
    }

    return NGX_HTTP_MAINTENANCE_REPLY_OK;
}


static void *
ngx_http_maintenance_reply_create_array(const redisReadTask *task,
    int elements)
{
    int  *too_large;

    if (elements > NGX_HTTP_MAINTENANCE_REPLY_ELTS_MAX) {
        /* the reader reports NULL as out of memory: say what it was */
        too_large = task->privdata;
        *too_large = 1;
        return NULL;
    }

    return ngx_http_maintenance_reply_array(task, elements);
}


static int
ngx_http_maintenance_reply_is(const redisReply *r, const char *s)
{
    size_t  len;

    len = strlen(s);

    return r->len == len && strncasecmp(r->str, s, len) == 0;
}


/* as ngx_cpystrn(): up to size - 1 bytes or the first NUL, terminated */

static void
ngx_http_maintenance_reply_copy(char *dst, size_t size, const char *src)
{
    size_t  n;

    if (size == 0) {
        return;
    }

    for (n = 0; n < size - 1 && src[n] != '\0'; n++) {
        dst[n] = src[n];
    }

    dst[n] = '\0';
}
