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

/* HTTP.sys error pages: 400 (Request Too Long), 414, 503, and 4000 for the
 * 400 "The request is badly formed." (answered with status 400); NULL otherwise. */
const struct iis_page *iis_httpsys_page(int status);

/* NDES landing page for GET mscep.dll without the Intune connector: UTF-16LE,
 * no BOM, markup inferred from the admin-page template (NDES-REFERENCE 5.g).
 * host is the server name shown in the admin URL. */
const struct iis_page *iis_landing_page(void);

/* Entra App Proxy pages: 504 "This corporate app can't be accessed" (connector
 * timed out) and "This page can't be displayed" (wrong external URL). The
 * HTML is inferred (only screenshots are public): see docs/scenarios.md. */
const struct iis_page *iis_proxy_page(int cant_display);

/* NDES admin pages (GET /certsrv/mscep_admin/), UTF-16LE as NDES sends them,
 * appended to out (a struct util_buf). thumbprint is "XXXXXXXX XXXXXXXX ...". */
struct util_buf;
void iis_admin_password_page(struct util_buf *out, const char *thumbprint, const char *password,
                             long validity_minutes);
void iis_admin_cache_full_page(struct util_buf *out, int max, long validity_minutes);

/* Builds every page; call once before threads start. Returns 0 or -1. */
int iis_pages_init(const char *host);

#endif
