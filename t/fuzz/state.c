/*
 * state.c: libFuzzer target of shared/'s codecs: the state hash (field and
 * value pairs as HGETALL returns them), the event and edge values.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mig.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char          err[256], scope[MIG_NAME_MAX + 1];
    const char   *p, *end, *name, *value, *nl;
    size_t        nlen, vlen;
    uint64_t      u, epoch;
    int64_t       i;
    mig_mode_e    mode;
    mig_state_t   st;

    p = (const char *) data;
    end = p + size;

    /* "name\nvalue\n" pairs: one HGETALL reply */
    mig_state_init(&st);

    while (p < end) {
        nl = memchr(p, '\n', end - p);
        name = p;
        nlen = nl ? (size_t) (nl - p) : (size_t) (end - p);
        p = nl ? nl + 1 : end;

        nl = memchr(p, '\n', end - p);
        value = p;
        vlen = nl ? (size_t) (nl - p) : (size_t) (end - p);
        p = nl ? nl + 1 : end;

        if (mig_state_field(&st, name, nlen, value, vlen, err, sizeof(err))
            != MIG_OK)
        {
            break;
        }
    }

    (void) mig_state_finish(&st, err, sizeof(err));

    /* the same bytes as an event, an edge value and numbers */
    (void) mig_event_parse((const char *) data, size, scope, sizeof(scope),
                           &epoch, err, sizeof(err));
    (void) mig_edge_value_parse((const char *) data, size, &mode, &epoch,
                                err, sizeof(err));
    (void) mig_parse_u64((const char *) data, size, UINT64_MAX, &u);
    (void) mig_parse_u64((const char *) data, size, 7, &u);
    (void) mig_parse_i64((const char *) data, size, &i);
    (void) mig_text_valid((const char *) data, size, err, sizeof(err));
    (void) mig_scope_valid((const char *) data, size, err, sizeof(err));

    return 0;
}
