/* The options table (see config.h): one parser for defaults, environment
 * and flags, so a value is checked the same way wherever it comes from.
 *
 * An environment variable that is set but empty counts as unset: compose
 * files write `JOBQ_X=` to mean "no value", and an empty prefix or number is
 * never what anyone wants. */

#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "job.h"
#include "log.h"
#include "url.h"

#define FIELD(target, opt) ((char *)(target) + (opt)->offset)

static int parse_ll(const char *s, long long *out) {
    return jq_parse_ll(s, strlen(s), LLONG_MIN, LLONG_MAX, out);
}

int jq_parse_bytes(const char *s, long long *out) {
    size_t n = strlen(s);
    long long mult = 1, v;

    switch (n ? s[n - 1] : '\0') {
        case 'k':
        case 'K': mult = 1LL << 10; break;
        case 'm':
        case 'M': mult = 1LL << 20; break;
        case 'g':
        case 'G': mult = 1LL << 30; break;
    }
    if (mult > 1) n--;
    if (jq_parse_ll(s, n, LLONG_MIN / mult, LLONG_MAX / mult, &v) < 0) return -1;
    *out = v * mult;
    return 0;
}

static int parse_bool(const char *s, int *out) {
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

static int set_str(const jq_opt_t *opt, void *target, const char *value, const char *label,
                   char *err, size_t errlen) {
    size_t n = strlen(value);
    if (n >= opt->size) {
        snprintf(err, errlen, "%s: value is too long (%zu bytes, max %zu)", label, n,
                 opt->size ? opt->size - 1 : 0);
        return -1;
    }
    memcpy(FIELD(target, opt), value, n + 1);
    return 0;
}

/* Adds one entry to a LIST row: entries are kept one per line. */
static int set_list(const jq_opt_t *opt, void *target, const char *value, const char *label,
                    char *err, size_t errlen) {
    char *f = FIELD(target, opt);
    size_t have = strlen(f), n = strlen(value);
    if (strchr(value, '\n') || n == 0) {
        snprintf(err, errlen, "%s: %s", label,
                 n ? "a value cannot hold a "
                     "newline"
                   : "empty value");
        return -1;
    }
    if (have + (have > 0) + n >= opt->size) {
        snprintf(err, errlen,
                 "%s: too many or too long values (%zu bytes "
                 "in all, max %zu)",
                 label, have + 1 + n, opt->size ? opt->size - 1 : 0);
        return -1;
    }
    if (have) f[have++] = '\n';
    memcpy(f + have, value, n + 1);
    return 0;
}

static int set_bool(const jq_opt_t *opt, void *target, const char *value, const char *label,
                    char *err, size_t errlen) {
    int b;
    if (parse_bool(value, &b) < 0) {
        snprintf(err, errlen,
                 "%s: '%s' is not a boolean (want 1, 0, "
                 "true or false)",
                 label, value);
        return -1;
    }
    *(int *)FIELD(target, opt) = b;
    return 0;
}

/* INT, AUTO ("auto" is stored as 0) and BYTES rows: a number within the
 * row's bounds. */
static int set_number(const jq_opt_t *opt, void *target, const char *value, const char *label,
                      char *err, size_t errlen) {
    long long v;

    if (opt->type == JQ_OPT_AUTO && strcasecmp(value, "auto") == 0) {
        *(long long *)FIELD(target, opt) = 0;
        return 0;
    }
    if (opt->type == JQ_OPT_BYTES && jq_parse_bytes(value, &v) < 0) {
        snprintf(err, errlen,
                 "%s: '%s' is not a size (a number with "
                 "an optional k, m or g)",
                 label, value);
        return -1;
    }
    if (opt->type != JQ_OPT_BYTES && parse_ll(value, &v) < 0) {
        snprintf(err, errlen, "%s: '%s' is not a number%s", label, value,
                 opt->type == JQ_OPT_AUTO ? " or auto" : "");
        return -1;
    }
    /* auto is stored as 0, so a plain 0 would silently read as auto (2
     * workers for `--workers 0` on a 2-CPU box): refuse it by name. */
    if (opt->type == JQ_OPT_AUTO && v == 0) {
        snprintf(err, errlen, "%s: 0 is not allowed (at least 1, or auto)", label);
        return -1;
    }
    if (v < opt->min || v > opt->max) {
        snprintf(err, errlen, "%s: %s is out of range [%lld, %lld]", label, value, opt->min,
                 opt->max);
        return -1;
    }
    *(long long *)FIELD(target, opt) = v;
    return 0;
}

/* Sets one row from text; `label` names the source in messages ("--x" or
 * "JOBQ_X"). */
static int set_value(const jq_opt_t *opt, void *target, const char *value, const char *label,
                     char *err, size_t errlen) {
    if (!value) value = "";
    switch (opt->type) {
        case JQ_OPT_STR: return set_str(opt, target, value, label, err, errlen);
        case JQ_OPT_LIST: return set_list(opt, target, value, label, err, errlen);
        case JQ_OPT_BOOL: return set_bool(opt, target, value, label, err, errlen);
        case JQ_OPT_AUTO:
        case JQ_OPT_INT:
        case JQ_OPT_BYTES: return set_number(opt, target, value, label, err, errlen);
    }
    snprintf(err, errlen, "%s: bad option type", label);
    return -1;
}

int jq_opts_set(const jq_opt_t *opt, void *target, const char *value, char *err, size_t errlen) {
    char label[128];
    snprintf(label, sizeof(label), "--%s", opt->name);
    return set_value(opt, target, value, label, err, errlen);
}

static const jq_opt_t *find_opt(const jq_opt_t *table, const char *name, size_t len) {
    for (const jq_opt_t *o = table; o->name; o++) {
        if (strlen(o->name) == len && memcmp(o->name, name, len) == 0) return o;
    }
    return NULL;
}

/* A list's variable holds one entry per line; blank lines are skipped. */
static int set_list_env(const jq_opt_t *opt, void *target, const char *v, char *err,
                        size_t errlen) {
    char entry[4096];
    const char *pos = v, *e;
    size_t n;

    while ((e = jq_opts_list_next(&pos, &n)) != NULL) {
        if (n == 0) continue;
        if (n >= sizeof(entry)) {
            snprintf(err, errlen, "%s: an entry is too long", opt->env);
            return -1;
        }
        memcpy(entry, e, n);
        entry[n] = '\0';
        if (set_value(opt, target, entry, opt->env, err, errlen) < 0) return -1;
    }
    return 0;
}

static int apply_defaults_and_env(const jq_opt_t *table, void *target, char *err, size_t errlen) {
    char label[160];
    for (const jq_opt_t *o = table; o->name; o++) {
        snprintf(label, sizeof(label), "default of --%s", o->name);
        if (o->type == JQ_OPT_LIST) {
            FIELD(target, o)[0] = '\0';
            if (o->def && *o->def && set_value(o, target, o->def, label, err, errlen) < 0)
                return -1;
            continue;
        }
        if (set_value(o, target, o->def ? o->def : (o->type == JQ_OPT_STR ? "" : "0"), label, err,
                      errlen) < 0)
            return -1;
    }
    for (const jq_opt_t *o = table; o->name; o++) {
        const char *v = o->env ? getenv(o->env) : NULL;
        if (!v || !*v) continue;
        if (o->type == JQ_OPT_LIST) {
            if (set_list_env(o, target, v, err, errlen) < 0) return -1;
        } else if (set_value(o, target, v, o->env, err, errlen) < 0) {
            return -1;
        }
    }
    return 0;
}

const char *jq_opts_list_next(const char **pos, size_t *len) {
    const char *s = *pos;
    if (!s || !*s) return NULL;
    const char *e = strchr(s, '\n');
    *len = e ? (size_t)(e - s) : strlen(s);
    *pos = e ? e + 1 : s + *len;
    return s;
}

/* Applies the flag argv[*i] ("--name", "--name=value" or "--name value",
 * leaving *i on the value then). `flagged` marks the LIST rows a flag has
 * set: the first flag drops the environment's entries, later ones add to
 * them. Returns 0 or -1 with err. */
static int apply_flag(const jq_opt_t *table, void *target, int argc, char **argv, int *i,
                      unsigned char *flagged, size_t nflagged, char *err, size_t errlen) {
    const char *name = argv[*i] + 2;
    const char *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
    const jq_opt_t *o = find_opt(table, name, nlen);
    const char *value;
    char label[160];

    if (!o) {
        snprintf(err, errlen, "unknown option --%.*s", (int)nlen, name);
        return -1;
    }
    snprintf(label, sizeof(label), "--%s", o->name);
    size_t row = (size_t)(o - table);
    if (o->type == JQ_OPT_LIST && row < nflagged && !flagged[row]) {
        flagged[row] = 1;
        FIELD(target, o)[0] = '\0';
    }
    if (eq) {
        value = eq + 1;
    } else if (o->type == JQ_OPT_BOOL) {
        value = "1";
    } else if (*i + 1 < argc) {
        value = argv[++*i];
    } else {
        snprintf(err, errlen, "%s needs a value", label);
        return -1;
    }
    return set_value(o, target, value, label, err, errlen);
}

int jq_opts_parse(const jq_opt_t *table, void *target, int argc, char **argv, int *argi, char *err,
                  size_t errlen) {
    int i = *argi;
    int rc = 0;
    unsigned char flagged[256] = {0};

    if (apply_defaults_and_env(table, target, err, errlen) < 0) return -1;
    for (; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            rc = JQ_OPTS_HELP;
            i++;
            break;
        }
        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (strncmp(arg, "--", 2) != 0) break;
        if (apply_flag(table, target, argc, argv, &i, flagged, sizeof(flagged), err, errlen) < 0) {
            rc = -1;
            break;
        }
    }
    *argi = i;
    return rc;
}

static const char *placeholder(jq_opt_type_t t) {
    switch (t) {
        case JQ_OPT_STR: return "TEXT";
        case JQ_OPT_INT: return "N";
        case JQ_OPT_AUTO: return "N|auto";
        case JQ_OPT_BYTES: return "SIZE";
        case JQ_OPT_BOOL: return "";
        case JQ_OPT_LIST: return "TEXT";
    }
    return "VALUE";
}

void jq_opts_usage(const jq_opt_t *table, FILE *out) {
    char flag[160];
    int width = (int)strlen("-h, --help");

    for (const jq_opt_t *o = table; o->name; o++) {
        int n = snprintf(flag, sizeof(flag), "--%s %s", o->name, placeholder(o->type));
        if (n > width) width = n;
    }
    for (const jq_opt_t *o = table; o->name; o++) {
        snprintf(flag, sizeof(flag), "--%s %s", o->name, placeholder(o->type));
        fprintf(out, "  %-*s  %s", width, flag, o->help ? o->help : "");
        if (o->env || (o->def && *o->def)) {
            fprintf(out, " (");
            if (o->env) fprintf(out, "env %s%s", o->env, o->def && *o->def ? ", " : "");
            if (o->def && *o->def) fprintf(out, "default %s", o->def);
            fprintf(out, ")");
        }
        fputc('\n', out);
    }
    fprintf(out, "  %-*s  show this help\n", width, "-h, --help");
}

/* Appends "name=value" of one row to a memstream, masking secrets. */
static void log_value(FILE *f, const jq_opt_t *o, const void *target) {
    const char *p = (const char *)target + o->offset;

    fprintf(f, " %s=", o->name);
    switch (o->type) {
        case JQ_OPT_STR: {
            jq_url_t u;
            char e[256], shown[600];
            if (strstr(o->name, "password") || strstr(o->name, "token")) {
                fputs(*p ? "***" : "''", f);
            } else if (jq_url_parse(p, &u, e, sizeof(e)) == 0 &&
                       (u.password[0] || u.sentinel_password[0])) {
                jq_url_format(&u, shown, sizeof(shown));
                fputs(shown, f);
            } else if (!*p || strpbrk(p, " \t")) {
                fprintf(f, "'%s'", p);
            } else {
                fputs(p, f);
            }
            break;
        }
        case JQ_OPT_BOOL: fputs(*(const int *)p ? "true" : "false", f); break;
        case JQ_OPT_LIST: {
            /* Entries in brackets: they may hold spaces (an exec command). */
            const char *pos = p, *e;
            size_t n;
            int first = 1;
            fputc('[', f);
            while ((e = jq_opts_list_next(&pos, &n)) != NULL) {
                fprintf(f, "%s'%.*s'", first ? "" : ", ", (int)n, e);
                first = 0;
            }
            fputc(']', f);
            break;
        }
        case JQ_OPT_AUTO:
            if (*(const long long *)p == 0) {
                fputs("auto", f);
                break;
            }
            /* fall through */
        case JQ_OPT_INT:
        case JQ_OPT_BYTES: fprintf(f, "%lld", *(const long long *)p); break;
    }
}

void jq_opts_log(const jq_opt_t *table, const void *target) {
    char *line = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&line, &len);

    if (!f) return;
    fputs("config:", f);
    for (const jq_opt_t *o = table; o->name; o++) log_value(f, o, target);
    if (fclose(f) == 0) jq_info("%s", line);
    free(line);
}
