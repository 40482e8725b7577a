/* iis.h - byte-exact IIS custom error pages and HTTP.sys error pages. */
#ifndef NDESMOCK_IIS_H
#define NDESMOCK_IIS_H

#include <stddef.h>

struct iis_page {
    int status;
    const char *reason;       /* HTTP reason phrase */
    const char *body;
    size_t len;
};

/* IIS custom error page (remote-client view, %SystemDrive%\inetpub\custerr\en-US\NNN.htm)
 * for 401, 403, 404, 405, 500; NULL for other codes. Built once, static storage. */
const struct iis_page *iis_custom_page(int status);

/* HTTP.sys error pages: 400 (Request Too Long), 414, 503; NULL otherwise. */
const struct iis_page *iis_httpsys_page(int status);

/* Builds every page; call once before threads start. Returns 0 or -1. */
int iis_pages_init(void);

#endif
