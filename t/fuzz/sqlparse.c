/*
 * sqlparse.c: libFuzzer target of migctl's sqlmigrate front end
 * (ctl/sqlparse.c, over libpg_query): any bytes give a plan or an error.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sqlparse.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char               *text, err[512];
    migctl_sql_plan_t   plan;

    text = malloc(size + 1);
    if (text == NULL) {
        return 0;
    }
    memcpy(text, data, size);
    text[size] = '\0';

    (void) migctl_sql_parse(text, &plan, err, sizeof(err));
    migctl_sql_free(&plan);

    free(text);

    return 0;
}
