#ifndef JQ_DASH_ASSETS_H
#define JQ_DASH_ASSETS_H

/* The dashboard's files, compiled into the binary: scripts/embed.sh turns
 * consumer/web/ into dash_assets.c at build time, so the page needs
 * nothing from disk or from the network. */

#include <stddef.h>

typedef struct jq_dash_asset {
    const char *path; /* "/app.js"; "/" serves "/index.html" */
    const char *type; /* its Content-Type */
    const unsigned char *data;
    size_t len;
} jq_dash_asset_t;

/* The table ends with a row whose path is NULL. */
extern const jq_dash_asset_t jq_dash_assets[];

#endif
