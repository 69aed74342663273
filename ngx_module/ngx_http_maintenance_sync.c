/*
 * ngx_http_maintenance_sync.c: worker 0's link to Redis (hiredis async on
 * nginx's event loop), the override file and the state file.
 */

#include "ngx_http_maintenance_module.h"


ngx_int_t
ngx_http_maintenance_sync_init_worker(ngx_cycle_t *cycle)
{
    return NGX_OK;
}


void
ngx_http_maintenance_sync_exit_worker(ngx_cycle_t *cycle)
{
}


ngx_int_t
ngx_http_maintenance_state_file_load(ngx_cycle_t *cycle,
    ngx_http_maintenance_main_conf_t *mmcf)
{
    return NGX_OK;
}
