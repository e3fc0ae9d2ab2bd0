/* Tests of consumer/conf/options.c: --queues with per-queue limits. */

#include <criterion/criterion.h>
#include <string.h>

#include "codec.h"
#include "options.h"

static int parse(jq_options_t *o, const char *queues, char *err) {
    char *argv[] = {"jobq-consumer", "--queues", (char *)queues, NULL};
    return jq_options_parse(o, 3, argv, err, JQ_ERR_LEN);
}

Test(options, queues_with_limits) {
    static jq_options_t o;
    char err[JQ_ERR_LEN] = "";
    cr_assert_eq(parse(&o, "mail:eu=4,default,img=16", err), 0, "%s", err);
    cr_assert_eq(o.nqueues, 3);
    cr_assert_str_eq(o.queues[0], "mail:eu");
    cr_assert_eq(o.queue_limit[0], 4);
    cr_assert_str_eq(o.queues[1], "default");
    cr_assert_eq(o.queue_limit[1], 0);
    cr_assert_eq(o.queue_limit[2], 16);
    cr_assert_str_eq(o.queues_csv, "mail:eu,default,img", "the heartbeat shows bare names");
}

Test(options, bad_limits_are_refused) {
    static jq_options_t o;
    const char *bad[] = {"a=0", "a=", "a=x", "a=-1", "a=1000001", "a=4=4", "=4", "a=4,a=2"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char err[JQ_ERR_LEN] = "";
        cr_assert_eq(parse(&o, bad[i], err), -1, "%s accepted", bad[i]);
        cr_assert(strstr(err, "--queues") != NULL, "%s: %s", bad[i], err);
    }
}
