/* Jobs shown to people as JSON: see view.h. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "job.h"
#include "view.h"

static int put(msgpack_sbuffer *out, const char *s) {
    return msgpack_sbuffer_write(out, s, strlen(s));
}

/* The job hash's and the result hash's integer fields (docs/PROTOCOL.md):
 * written as JSON numbers, as `jobq enqueue --wait` prints them. */
static int is_number_field(const char *name) {
    static const char *const nums[] = {
        "attempt", "attempts",  "max_attempts", "timeout_ms", "result_ttl", "chunks",
        "size",    "failed_at", "finished_at",  "started_at", NULL};
    for (int i = 0; nums[i]; i++)
        if (!strcmp(name, nums[i])) return 1;
    return 0;
}

static int skipped(const char *name, const char *const *skip) {
    if (!strcmp(name, "payload")) return 1;
    for (; skip && *skip; skip++)
        if (!strcmp(name, *skip)) return 1;
    return 0;
}

int jq_view_fields(msgpack_sbuffer *out, const jq_dead_job_t *job, const char *const *skip) {
    for (size_t i = 0; i < job->nfields; i++) {
        const jq_field_t *f = &job->fields[i];
        long long v;
        char num[32];
        if (skipped(f->name, skip)) continue;
        if (put(out, ",") < 0 || jq_codec_json_string(out, f->name, strlen(f->name)) < 0 ||
            put(out, ":") < 0)
            return -1;
        int rc;
        if (is_number_field(f->name) &&
            jq_parse_ll(f->value, f->value_len, -(1LL << 62), 1LL << 62, &v) == 0) {
            snprintf(num, sizeof(num), "%lld", v);
            rc = put(out, num);
        } else {
            rc = jq_codec_json_string(out, f->value, f->value_len);
        }
        if (rc < 0) return -1;
    }
    return 0;
}

/* Decodes p as msgpack or (json_enc) JSON text into JSON text in out.
 * Returns 0, 1 when the bytes do not decode (out untouched), or -1. */
static int decode(msgpack_sbuffer *out, const char *p, size_t len, int json_enc) {
    char err[JQ_ERR_LEN];
    msgpack_sbuffer mp;
    msgpack_sbuffer_init(&mp);
    if (json_enc) {
        /* JSON text is re-encoded so that bad JSON cannot break ours. */
        if (jq_codec_json_to_msgpack(p, len, &mp, err, sizeof(err)) < 0) {
            msgpack_sbuffer_destroy(&mp);
            return 1;
        }
        p = mp.data;
        len = mp.size;
    } else if (jq_codec_check_msgpack(p, len, err, sizeof(err)) < 0) {
        return 1;
    }
    size_t before = out->size;
    int rc = jq_codec_bytes_to_json(p, len, out, err, sizeof(err));
    if (rc < 0) out->size = before;
    msgpack_sbuffer_destroy(&mp);
    return rc;
}

int jq_view_payload_json(msgpack_sbuffer *out, const char *p, size_t len, int json_enc) {
    if (!p) return put(out, "null");
    int rc = decode(out, p, len, json_enc);
    if (rc == 1) return jq_codec_json_string(out, p, len); /* show the bytes */
    return rc;
}

/* A classic hex dump of p[0..len): offset, 16 bytes in hex, their ASCII. */
static int hex_dump(msgpack_sbuffer *out, const unsigned char *p, size_t len) {
    char line[96];
    for (size_t off = 0; off < len; off += 16) {
        int n = snprintf(line, sizeof(line), "%08zx ", off);
        for (size_t i = 0; i < 16; i++)
            n += off + i < len ? snprintf(line + n, sizeof(line) - (size_t)n, " %02x", p[off + i])
                               : snprintf(line + n, sizeof(line) - (size_t)n, "   ");
        n += snprintf(line + n, sizeof(line) - (size_t)n, "  |");
        for (size_t i = 0; i < 16 && off + i < len; i++)
            line[n++] = p[off + i] >= 0x20 && p[off + i] < 0x7f ? (char)p[off + i] : '.';
        line[n++] = '|';
        line[n++] = '\n';
        if (msgpack_sbuffer_write(out, line, (size_t)n) < 0) return -1;
    }
    return 0;
}

/* Writes the preview's members after its kind; text[0..tlen) is the text. */
static int put_preview(msgpack_sbuffer *out, const char *kind, size_t total, int truncated,
                       const char *text, size_t tlen) {
    char head[96];
    snprintf(head, sizeof(head), "{\"kind\":\"%s\",\"size\":%zu,\"truncated\":%s,\"text\":", kind,
             total, truncated ? "true" : "false");
    if (put(out, head) < 0 || jq_codec_json_string(out, text ? text : "", tlen) < 0) return -1;
    return put(out, "}");
}

static int preview_hex(msgpack_sbuffer *out, const char *kind, const char *p, size_t len,
                       size_t total) {
    msgpack_sbuffer hex;
    msgpack_sbuffer_init(&hex);
    size_t n = len < JQ_VIEW_HEX_BYTES ? len : JQ_VIEW_HEX_BYTES;
    int rc = hex_dump(&hex, (const unsigned char *)p, n);
    if (rc == 0) rc = put_preview(out, kind, total, n < total, hex.data, hex.size);
    msgpack_sbuffer_destroy(&hex);
    return rc;
}

/* The bytes of a top-level msgpack bin, or NULL when p is something else. */
static const char *top_bin(const char *p, size_t len, size_t *binlen) {
    msgpack_unpacked u;
    size_t off = 0;
    const char *bin = NULL;
    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, p, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_BIN) {
        /* The bin's bytes lie at its end within p: no copy needed. */
        *binlen = u.data.via.bin.size;
        bin = p + off - *binlen;
    }
    msgpack_unpacked_destroy(&u);
    return bin;
}

int jq_view_payload_preview(msgpack_sbuffer *out, const char *p, size_t len, size_t total,
                            int json_enc, size_t text_max) {
    if (!p && total == 0) return put_preview(out, "none", 0, 0, "", 0);
    if (len < total || len > JQ_VIEW_DECODE_MAX) return preview_hex(out, "raw", p, len, total);
    size_t binlen;
    const char *bin = json_enc ? NULL : top_bin(p, len, &binlen);
    if (bin) return preview_hex(out, "binary", bin, binlen, binlen);
    msgpack_sbuffer js;
    msgpack_sbuffer_init(&js);
    int rc = decode(&js, p, len, json_enc);
    if (rc == 1) {
        rc = preview_hex(out, "raw", p, len, total);
    } else if (rc == 0) {
        size_t cut = js.size;
        if (cut > text_max) {
            cut = text_max;
            /* Never cut inside a UTF-8 sequence. */
            while (cut > 0 && ((unsigned char)js.data[cut] & 0xC0) == 0x80) cut--;
        }
        rc = put_preview(out, "json", total, cut < js.size, js.data, cut);
    }
    msgpack_sbuffer_destroy(&js);
    return rc;
}
