/* Unit tests of common/slot.c and common/slotmap.c: Redis Cluster's key
 * slots (checked against CLUSTER KEYSLOT of redis-server 7.0), the slot
 * map read from CLUSTER SHARDS and CLUSTER SLOTS replies, and the
 * redirections read from error replies. The replies are real RESP text
 * parsed by hiredis' own reader. */

#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <string.h>

#include "keys.h"
#include "slot.h"
#include "slotmap.h"
#include "url.h"

static int slot(const char *key) { return jq_slot_of(key, strlen(key)); }

Test(slot, crc16_xmodem_check_value) {
    /* The CRC-16/XMODEM check value, and Redis's own test vector. */
    cr_expect_eq(jq_slot_crc16("123456789", 9), 0x31C3);
    cr_expect_eq(jq_slot_crc16("", 0), 0);
}

Test(slot, matches_cluster_keyslot) {
    /* Each value is what CLUSTER KEYSLOT answered on redis-server 7.0.15. */
    cr_expect_eq(slot("foo"), 12182);
    cr_expect_eq(slot("123456789"), 12739);
    cr_expect_eq(slot("{user1000}.following"), 3443);
    cr_expect_eq(slot("{user1000}.followers"), 3443);
    cr_expect_eq(slot("jobq:{default}:stream"), 5718);
    cr_expect_eq(slot("default"), 5718);
    /* An empty tag, or a '{' with no '}', hashes the whole key; only the
     * first tag counts. */
    cr_expect_eq(slot("a{}b"), 13694);
    cr_expect_eq(slot("{}x"), 10595);
    cr_expect_eq(slot("a{b"), 13340);
    cr_expect_eq(slot("x{a}{b}"), 15495);
    cr_expect_eq(slot("x{a}{b}"), slot("a"));
}

Test(slot, every_key_of_a_queue_is_in_its_slot) {
    char buf[JQ_KEY_MAX];
    int q = slot("emails");
    jq_key(buf, sizeof(buf), "jobq", "emails", "stream");
    cr_expect_eq(slot(buf), q);
    jq_key_id(buf, sizeof(buf), "app", "emails", "result", "1-0");
    cr_expect_eq(slot(buf), q);
    jq_key_schedule(buf, sizeof(buf), "jobq", "emails", "nightly", 1);
    cr_expect_eq(slot(buf), q);
}

static int key_of(int argc, const char **argv) {
    size_t lens[16];
    for (int i = 0; i < argc; i++) lens[i] = strlen(argv[i]);
    return jq_slot_cmd_key(argc, argv, lens);
}

Test(slot, the_key_a_command_is_routed_by) {
    const char *xadd[] = {"XADD", "jobq:{q}:stream", "*", "type", "echo"};
    cr_expect_eq(key_of(5, xadd), 1);
    const char *eval[] = {"EVAL", "return 1", "2", "k1", "k2"};
    cr_expect_eq(key_of(5, eval), 3);
    const char *eval0[] = {"EVALSHA", "abc", "0"};
    cr_expect_eq(key_of(3, eval0), -1);
    const char *xinfo[] = {"XINFO", "GROUPS", "jobq:{q}:stream"};
    cr_expect_eq(key_of(3, xinfo), 2);
    /* The consumer's group creation: the key after the subcommand, not
     * "CREATE" (which would send it to CREATE's slot). */
    const char *xgroup[] = {"XGROUP", "CREATE", "jobq:{q}:stream", "workers", "0", "MKSTREAM"};
    cr_expect_eq(key_of(6, xgroup), 2);
    const char *unblock[] = {"CLIENT", "UNBLOCK", "12"};
    cr_expect_eq(key_of(3, unblock), -1);
    const char *xread[] = {"XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "s", ">"};
    cr_expect_eq(key_of(9, xread), 7);
    const char *multi[] = {"MULTI"};
    cr_expect_eq(key_of(1, multi), -1);
    const char *unwatch[] = {"unwatch"};
    cr_expect_eq(key_of(1, unwatch), -1);
    const char *time_[] = {"TIME"};
    cr_expect_eq(key_of(1, time_), -1);
    const char *info[] = {"INFO", "cluster"};
    cr_expect_eq(key_of(2, info), -1);
}

/* A reply parsed from RESP text, for the caller to free. */
static redisReply *resp(const char *text) {
    redisReader *r = redisReaderCreate();
    void *reply = NULL;
    redisReaderFeed(r, text, strlen(text));
    cr_assert_eq(redisReaderGetReply(r, &reply), REDIS_OK);
    cr_assert_not_null(reply, "incomplete RESP: %s", text);
    redisReaderFree(r);
    return reply;
}

/* One CLUSTER SHARDS shard: slots lo..hi, a master at ip:port (endpoint
 * ep) and a replica. */
static char *shard(char *buf, size_t cap, int lo, int hi, const char *ep, int port) {
    snprintf(buf, cap,
             "*4\r\n$5\r\nslots\r\n*2\r\n:%d\r\n:%d\r\n$5\r\nnodes\r\n*2\r\n"
             "*10\r\n$2\r\nid\r\n$1\r\nr\r\n$4\r\nport\r\n:%d\r\n$8\r\nendpoint\r\n$%zu\r\n%s\r\n"
             "$4\r\nrole\r\n$7\r\nreplica\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
             "*12\r\n$2\r\nid\r\n$1\r\nm\r\n$4\r\nport\r\n:%d\r\n$8\r\ntls-port\r\n:%d\r\n"
             "$8\r\nendpoint\r\n$%zu\r\n%s\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
             "$6\r\nhealth\r\n$6\r\nonline\r\n",
             lo, hi, port + 100, strlen(ep), ep, port, port + 1000, strlen(ep), ep);
    return buf;
}

Test(slotmap, from_cluster_shards) {
    char a[1024], b[1024], text[2100];
    snprintf(text, sizeof(text), "*2\r\n%s%s", shard(a, sizeof(a), 0, 8191, "10.0.0.1", 7000),
             shard(b, sizeof(b), 8192, 16383, "?", 7001));
    redisReply *r = resp(text);
    jq_slotmap_t m;
    char err[256];
    cr_assert_eq(jq_slotmap_from_shards(&m, r, "seed.example", 0, err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(m.nnodes, 2);
    cr_expect_eq(jq_slotmap_unserved(&m), 0);
    cr_expect_str_eq(m.nodes[m.owner[0]].host, "10.0.0.1");
    cr_expect_eq(m.nodes[m.owner[8191]].port, 7000);
    /* "?": the node knows no endpoint of its own, so the one asked. */
    cr_expect_str_eq(m.nodes[m.owner[12182]].host, "seed.example");
    cr_expect_eq(m.nodes[m.owner[16383]].port, 7001);
    /* TLS: each master's tls-port. */
    cr_assert_eq(jq_slotmap_from_shards(&m, r, "seed.example", 1, err, sizeof(err)), 0);
    cr_expect_eq(m.nodes[m.owner[0]].port, 8000);
    freeReplyObject(r);
}

Test(slotmap, shards_of_a_failed_master_stay_unserved) {
    char text[600];
    /* A shard whose only node is a replica (its master failed, none
     * promoted yet): its slots have no owner until the next refresh. */
    snprintf(text, sizeof(text),
             "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:99\r\n$5\r\nnodes\r\n*1\r\n"
             "*6\r\n$4\r\nport\r\n:7000\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n"
             "$7\r\nreplica\r\n");
    redisReply *r = resp(text);
    jq_slotmap_t m;
    char err[256];
    cr_assert_eq(jq_slotmap_from_shards(&m, r, "h", 0, err, sizeof(err)), 0);
    cr_expect_eq(m.owner[5], -1);
    cr_expect_eq(jq_slotmap_unserved(&m), JQ_SLOTS);
    freeReplyObject(r);
}

Test(slotmap, from_cluster_slots) {
    /* Redis 6's CLUSTER SLOTS: [lo, hi, [ip, port, id], [replica...]]. */
    const char *text = "*2\r\n"
                       "*4\r\n:0\r\n:5460\r\n*3\r\n$9\r\n127.0.0.1\r\n:7000\r\n$1\r\na\r\n"
                       "*3\r\n$9\r\n127.0.0.1\r\n:7003\r\n$1\r\nd\r\n"
                       "*3\r\n:5461\r\n:16383\r\n*3\r\n$0\r\n\r\n:7001\r\n$1\r\nb\r\n";
    redisReply *r = resp(text);
    jq_slotmap_t m;
    char err[256];
    cr_assert_eq(jq_slotmap_from_slots(&m, r, "seed", err, sizeof(err)), 0, "%s", err);
    cr_expect_eq(m.nnodes, 2);
    cr_expect_eq(m.nodes[m.owner[5460]].port, 7000);
    cr_expect_eq(m.nodes[m.owner[5461]].port, 7001);
    cr_expect_str_eq(m.nodes[m.owner[5461]].host, "seed"); /* "": the node asked */
    freeReplyObject(r);
}

Test(slotmap, odd_replies_are_refused) {
    jq_slotmap_t m;
    char err[256];
    redisReply *r = resp("-ERR This instance has cluster support disabled\r\n");
    cr_expect_eq(jq_slotmap_from_shards(&m, r, "h", 0, err, sizeof(err)), -1);
    cr_expect_eq(jq_slotmap_from_slots(&m, r, "h", err, sizeof(err)), -1);
    freeReplyObject(r);
    r = resp("*1\r\n*3\r\n:0\r\n:99999\r\n*2\r\n$1\r\nh\r\n:1\r\n");
    cr_expect_eq(jq_slotmap_from_slots(&m, r, "h", err, sizeof(err)), -1);
    cr_expect_str_eq(err, "odd reply to CLUSTER SLOTS");
    cr_expect_eq(m.nnodes, 0);
    freeReplyObject(r);
}

static jq_redirect_t redirect(const char *msg, int *slot, jq_url_addr_t *to) {
    return jq_slotmap_redirect(msg, strlen(msg), slot, to);
}

Test(slotmap, redirections) {
    int s = -1;
    jq_url_addr_t to;
    cr_expect_eq(redirect("MOVED 3999 127.0.0.1:6381", &s, &to), JQ_REDIRECT_MOVED);
    cr_expect_eq(s, 3999);
    cr_expect_str_eq(to.host, "127.0.0.1");
    cr_expect_eq(to.port, 6381);
    cr_expect_eq(redirect("ASK 12182 ::1:7002", &s, &to), JQ_REDIRECT_ASK);
    cr_expect_str_eq(to.host, "::1");
    cr_expect_eq(to.port, 7002);
    cr_expect_eq(redirect("TRYAGAIN Multiple keys request during rehashing of slot", &s, &to),
                 JQ_REDIRECT_RETRY);
    cr_expect_eq(redirect("CLUSTERDOWN The cluster is down", &s, &to), JQ_REDIRECT_RETRY);
    cr_expect_eq(redirect("ERR wrong number of arguments", &s, &to), JQ_REDIRECT_NONE);
    cr_expect_eq(redirect("MOVED 16384 h:1", &s, &to), JQ_REDIRECT_NONE);
    cr_expect_eq(redirect("MOVED 1 h:0", &s, &to), JQ_REDIRECT_NONE);
    cr_expect_eq(redirect("MOVEDX 1 h:1", &s, &to), JQ_REDIRECT_NONE);
    cr_expect_eq(redirect("ASK", &s, &to), JQ_REDIRECT_NONE);
}

Test(slotmap, info_says_cluster_enabled) {
    const char *on = "# Cluster\r\ncluster_enabled:1\r\n";
    const char *off = "# Cluster\r\ncluster_enabled:0\r\n";
    cr_expect(jq_slotmap_info_enabled(on, strlen(on)));
    cr_expect(!jq_slotmap_info_enabled(off, strlen(off)));
}

Test(slotmap, cluster_urls) {
    jq_url_t u;
    char err[256], buf[600];
    cr_assert_eq(jq_url_parse("redis+cluster://:pw@h1:7000,h2,[::1]:7002", &u, err, sizeof(err)), 0,
                 "%s", err);
    cr_expect(u.cluster);
    cr_expect(!u.tls);
    cr_expect_eq(u.nseeds, 3);
    cr_expect_eq(u.seeds[1].port, 6379);
    cr_expect_str_eq(u.seeds[2].host, "::1");
    cr_expect_str_eq(u.host, "h1");
    cr_expect_str_eq(u.password, "pw");
    jq_url_format(&u, buf, sizeof(buf));
    cr_expect_str_eq(buf, "redis+cluster://:***@h1:7000,h2:6379,[::1]:7002");
    cr_assert_eq(jq_url_parse("rediss+cluster://h1:7000/", &u, err, sizeof(err)), 0, "%s", err);
    cr_expect(u.tls && u.cluster);
    cr_expect_eq(jq_url_parse("redis+cluster://h1/3", &u, err, sizeof(err)), -1);
    cr_expect(strstr(err, "no database but 0"), "%s", err);
    cr_expect_eq(jq_url_parse("redis+cluster://h1:99999", &u, err, sizeof(err)), -1);
}
