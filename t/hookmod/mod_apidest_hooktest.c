/* A test module that uses mod_apidest's optional maintenance hook the way a
 * third-party module would: it appends one line per tick to the file named
 * by ApiDestHookTestFile. Built with apxs by the integration test. */
#include <httpd.h>
#include <http_config.h>
#include <apr_optional_hooks.h>
#include <apr_file_io.h>
#include <apr_strings.h>
#include <unistd.h>

#include "ad_maint.h" /* the hook as mod_apidest publishes it */

module AP_MODULE_DECLARE_DATA apidest_hooktest_module;

static const char *hook_file;

static int on_tick(apr_pool_t *p, apr_time_t now)
{
    apr_file_t *f;

    if (hook_file &&
        apr_file_open(&f, hook_file, APR_FOPEN_WRITE | APR_FOPEN_APPEND | APR_FOPEN_CREATE,
                      APR_FPROT_OS_DEFAULT, p) == APR_SUCCESS) {
        apr_file_printf(f, "tick %" APR_TIME_T_FMT " pid %d\n", apr_time_sec(now), (int)getpid());
        apr_file_close(f);
    }
    return AD_MAINT_OK;
}

static const char *set_file(cmd_parms *cmd, void *dummy, const char *arg)
{
    hook_file = ap_server_root_relative(cmd->pool, arg);
    return NULL;
}

static const command_rec cmds[] = {
    AP_INIT_TAKE1("ApiDestHookTestFile", set_file, NULL, RSRC_CONF, "file to append ticks to"),
    {NULL}};

static void register_hooks(apr_pool_t *p)
{
    APR_OPTIONAL_HOOK(apidest, maintenance, on_tick, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(apidest_hooktest) = {STANDARD20_MODULE_STUFF, NULL, NULL, NULL, NULL, cmds,
                                       register_hooks,          0};
