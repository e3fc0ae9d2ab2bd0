/* Loading Lua scripts for EVALSHA. See script.h. */

#include <string.h>

#include "args.h"
#include "log.h"
#include "script.h"

static void on_loaded(redisAsyncContext *ac, void *rp, void *priv) {
    redisReply *reply = rp;
    jq_script_t *s = priv;
    (void)ac;
    s->loading = 0;
    if (reply == NULL) return; /* the connection went; loaded again on connect */
    if (reply->type == REDIS_REPLY_STRING && reply->len == 40)
        memcpy(s->sha, reply->str, 41);
    else
        jq_error("SCRIPT LOAD: %s",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
}

void jq_script_load(jq_rconn_t *c, jq_script_t *s) {
    if (s->loading) return;
    jq_args_t a;
    jq_args_init(&a);
    jq_args_str(&a, "SCRIPT");
    jq_args_str(&a, "LOAD");
    jq_args_str(&a, s->lua);
    if (jq_rconn_args(c, &a, on_loaded, s) == 0) s->loading = 1;
    jq_args_destroy(&a);
}
