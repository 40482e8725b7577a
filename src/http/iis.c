/* iis.c - IIS custom error pages and HTTP.sys pages, byte for byte as the
 * reference records them (CRLF line ends; 403 = 1233 bytes, 503 = 326). */
#include "ndesmock/iis.h"
#include "ndesmock/util.h"

#include <stdio.h>
#include <string.h>

#define CUSTOM_MAX 1400

struct custom_def {
    int status;
    const char *reason;
    const char *title;
    const char *h3;
};

static const char AUTH_H3[] =
    "You do not have permission to view this directory or page using the credentials that you "
    "supplied.";

static const struct custom_def custom_defs[] = {
    {401, "Unauthorized", "401 - Unauthorized: Access is denied due to invalid credentials.",
     AUTH_H3},
    {403, "Forbidden", "403 - Forbidden: Access is denied.", AUTH_H3},
    {404, "Not Found", "404 - File or directory not found.",
     "The resource you are looking for might have been removed, had its name changed, or is "
     "temporarily unavailable."},
    {405, "Method Not Allowed", "405 - HTTP verb used to access this page is not allowed.",
     "The page you are looking for cannot be displayed because an invalid method (HTTP verb) was "
     "used to attempt access."},
    {500, "Internal Server Error", "500 - Internal server error.",
     "There is a problem with the resource you are looking for, and it cannot be displayed."},
};
#define NCUSTOM (sizeof(custom_defs) / sizeof(custom_defs[0]))

static char custom_bodies[NCUSTOM][CUSTOM_MAX];
static struct iis_page custom_pages[NCUSTOM];

static const char HTTPSYS_HEAD[] =
    "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 4.01//EN\"\"http://www.w3.org/TR/html4/strict.dtd\">\r\n"
    "<HTML><HEAD><TITLE>%s</TITLE>\r\n"
    "<META HTTP-EQUIV=\"Content-Type\" Content=\"text/html; charset=us-ascii\"></HEAD>\r\n"
    "<BODY><h2>%s</h2>\r\n"
    "<hr><p>%s</p>\r\n"
    "</BODY></HTML>\r\n";

static const struct custom_def httpsys_defs[] = {
    {400, "Bad Request", "Bad Request|Bad Request - Request Too Long",
     "HTTP Error 400. The size of the request headers is too long."},
    {414, "Request-URI Too Long", "Request URL Too Long|Request URL Too Long",
     "HTTP Error 414. The request URL is too long."},
    {503, "Service Unavailable", "Service Unavailable|Service Unavailable",
     "HTTP Error 503. The service is unavailable."},
    /* status 4000: the 400 HTTP.sys sends for bytes that are not HTTP (text inferred) */
    {4000, "Bad Request", "Bad Request|Bad Request",
     "HTTP Error 400. The request is badly formed."},
};
#define NHTTPSYS (sizeof(httpsys_defs) / sizeof(httpsys_defs[0]))
static char httpsys_bodies[NHTTPSYS][512];
static struct iis_page httpsys_pages[NHTTPSYS];

static char landing_body[4096];
static struct iis_page landing_page;
static char proxy_bodies[2][1600];
static struct iis_page proxy_pages[2];

static const char LANDING_FMT[] =
    "<HTML><Head><Meta HTTP-Equiv=\"Content-Type\" Content=\"text/html; charset=UTF-8\">"
    "<Title>Network Device Enrollment Service</Title></Head><Body BgColor=#FFFFFF><Font "
    "ID=locPageFont Face=\"Arial\"><Table Border=0 CellSpacing=0 CellPadding=4 Width=100%% "
    "BgColor=#008080><TR><TD><Font ID=locPageTitleFont Face=\"Arial\" Size=-1 "
    "Color=#FFFFFF><LocID ID=locMSCertSrv>Network Device Enrollment Service</LocID></Font></TD>"
    "</TR></Table><P ID=locPageTitle> Network Device Enrollment Service allows you to obtain "
    "certificates for routers or other network devices using the Simple Certificate Enrollment "
    "Protocol (SCEP). </P><P> This URL is used by network devices to submit certificate "
    "requests. <P> To obtain an enrollment challenge password, go to the admin URL. By default, "
    "the admin URL is <A HREF=http://%s/CertSrv/mscep_admin>http://%s/CertSrv/mscep_admin</A> "
    "</P> <P ID=locPageDesc> For more information see  <A "
    "HREF=http://go.microsoft.com/fwlink/?LinkId=67852>Using Network Device Enrollment Service "
    "</A>. </P></Font></Body></HTML>";

static const char PROXY_FMT[] =
    "<!DOCTYPE html>\r\n<html>\r\n<head>\r\n<meta charset=\"utf-8\" />\r\n"
    "<title>%s</title>\r\n</head>\r\n<body>\r\n<h1>%s</h1>\r\n<p>%s</p>\r\n"
    "<p>Status Code: %s</p>\r\n</body>\r\n</html>\r\n";

int iis_pages_init(const char *host)
{
    size_t i;
    char ascii[2048];
    int n;

    n = snprintf(ascii, sizeof(ascii), LANDING_FMT, host, host);
    if (n < 0 || (size_t)n >= sizeof(ascii) || (size_t)n * 2 > sizeof(landing_body))
        return -1;
    for (i = 0; i < (size_t)n; i++) { /* UTF-16LE of ASCII text */
        landing_body[2 * i] = ascii[i];
        landing_body[2 * i + 1] = 0;
    }
    landing_page.status = 200;
    landing_page.reason = "OK";
    landing_page.body = landing_body;
    landing_page.len = (size_t)n * 2;
    n = snprintf(proxy_bodies[0], sizeof(proxy_bodies[0]), PROXY_FMT,
                 "This corporate app can't be accessed", "This corporate app can't be accessed",
                 "This corporate app can't be accessed right now. Please try again later. The "
                 "connector timed out.", "Gateway Timeout");
    proxy_pages[0].status = 504;
    proxy_pages[0].reason = "Gateway Timeout";
    proxy_pages[0].body = proxy_bodies[0];
    proxy_pages[0].len = (size_t)n;
    n = snprintf(proxy_bodies[1], sizeof(proxy_bodies[1]), PROXY_FMT,
                 "This page can't be displayed", "This page can't be displayed",
                 "Make sure the web address is correct. The external URL of this application "
                 "is not published by Microsoft Entra application proxy.", "Not Found");
    proxy_pages[1].status = 404;
    proxy_pages[1].reason = "Not Found";
    proxy_pages[1].body = proxy_bodies[1];
    proxy_pages[1].len = (size_t)n;

    for (i = 0; i < NCUSTOM; i++) {
        const struct custom_def *d = &custom_defs[i];
        n = snprintf(
            custom_bodies[i], CUSTOM_MAX,
            "<!DOCTYPE html PUBLIC \"-//W3C//DTD XHTML 1.0 Strict//EN\" "
            "\"http://www.w3.org/TR/xhtml1/DTD/xhtml1-strict.dtd\">\r\n"
            "<html xmlns=\"http://www.w3.org/1999/xhtml\">\r\n"
            "<head>\r\n"
            "<meta http-equiv=\"Content-Type\" content=\"text/html; charset=iso-8859-1\"/>\r\n"
            "<title>%s</title>\r\n"
            "<style type=\"text/css\">\r\n"
            "<!--\r\n"
            "body{margin:0;font-size:.7em;font-family:Verdana, Arial, Helvetica, "
            "sans-serif;background:#EEEEEE;}\r\n"
            "fieldset{padding:0 15px 10px 15px;} \r\n"
            "h1{font-size:2.4em;margin:0;color:#FFF;}\r\n"
            "h2{font-size:1.7em;margin:0;color:#CC0000;} \r\n"
            "h3{font-size:1.2em;margin:10px 0 0 0;color:#000000;} \r\n"
            "#header{width:96%%;margin:0 0 0 0;padding:6px 2%% 6px 2%%;font-family:\"trebuchet "
            "MS\", Verdana, sans-serif;color:#FFF;\r\n"
            "background-color:#555555;}\r\n"
            "#content{margin:0 0 0 2%%;position:relative;}\r\n"
            ".content-container{background:#FFF;width:96%%;margin-top:8px;padding:10px;position:"
            "relative;}\r\n"
            "-->\r\n"
            "</style>\r\n"
            "</head>\r\n"
            "<body>\r\n"
            "<div id=\"header\"><h1>Server Error</h1></div>\r\n"
            "<div id=\"content\">\r\n"
            " <div class=\"content-container\"><fieldset>\r\n"
            "  <h2>%s</h2>\r\n"
            "  <h3>%s</h3>\r\n"
            " </fieldset></div>\r\n"
            "</div>\r\n"
            "</body>\r\n"
            "</html>\r\n",
            d->title, d->title, d->h3);
        if (n < 0 || n >= CUSTOM_MAX)
            return -1;
        custom_pages[i].status = d->status;
        custom_pages[i].reason = d->reason;
        custom_pages[i].body = custom_bodies[i];
        custom_pages[i].len = (size_t)n;
    }
    for (i = 0; i < NHTTPSYS; i++) {
        const struct custom_def *d = &httpsys_defs[i];
        char title[64], h2[64];
        const char *bar = strchr(d->title, '|');
        snprintf(title, sizeof(title), "%.*s", (int)(bar - d->title), d->title);
        snprintf(h2, sizeof(h2), "%s", bar + 1);
        n = snprintf(httpsys_bodies[i], sizeof(httpsys_bodies[i]), HTTPSYS_HEAD, title, h2, d->h3);
        if (n < 0 || n >= (int)sizeof(httpsys_bodies[i]))
            return -1;
        httpsys_pages[i].status = d->status == 4000 ? 400 : d->status;
        httpsys_pages[i].reason = d->reason;
        httpsys_pages[i].body = httpsys_bodies[i];
        httpsys_pages[i].len = (size_t)n;
    }
    return 0;
}

const struct iis_page *iis_custom_page(int status)
{
    size_t i;

    for (i = 0; i < NCUSTOM; i++)
        if (custom_pages[i].status == status)
            return &custom_pages[i];
    return NULL;
}

const struct iis_page *iis_httpsys_page(int status)
{
    size_t i;

    for (i = 0; i < NHTTPSYS; i++)
        if (httpsys_defs[i].status == status)
            return &httpsys_pages[i];
    return NULL;
}

const struct iis_page *iis_landing_page(void)
{
    return &landing_page;
}

const struct iis_page *iis_proxy_page(int cant_display)
{
    return &proxy_pages[cant_display ? 1 : 0];
}

#define NDES_HEAD                                                                                  \
    "<HTML><Head><Meta HTTP-Equiv=\"Content-Type\" Content=\"text/html; charset=UTF-8\">"         \
    "<Title>Network Device Enrollment Service</Title></Head><Body BgColor=#FFFFFF><Font "           \
    "ID=locPageFont Face=\"Arial\"><Table Border=0 CellSpacing=0 CellPadding=4 Width=100%% "      \
    "BgColor=#008080><TR><TD><Font ID=locPageTitleFont Face=\"Arial\" Size=-1 "                  \
    "Color=#FFFFFF><LocID ID=locMSCertSrv>Network Device Enrollment Service</LocID></Font></TD>"  \
    "</TR></Table><P ID=locPageTitle> Network Device Enrollment Service allows you to obtain "     \
    "certificates for routers or other network devices using the Simple Certificate Enrollment "  \
    "Protocol (SCEP). </P>"
#define NDES_TAIL                                                                                  \
    " <P ID=locPageDesc> For more information see  <A "                                            \
    "HREF=http://go.microsoft.com/fwlink/?LinkId=67852>Using Network Device Enrollment Service "   \
    "</A>. </P></Font></Body></HTML>"

static void utf16le(struct util_buf *out, const char *ascii)
{
    size_t i, n = strlen(ascii);
    uint8_t *p = util_buf_grow(out, 2 * n);

    if (p == NULL)
        return;
    for (i = 0; i < n; i++) {
        p[2 * i] = (uint8_t)ascii[i];
        p[2 * i + 1] = 0;
    }
}

void iis_admin_password_page(struct util_buf *out, const char *thumbprint, const char *password,
                             long validity_minutes)
{
    char page[2048];

    snprintf(page, sizeof(page),
             NDES_HEAD "<P> To complete certificate enrollment for your network device you will "
                       "need the following information: <P> The thumbprint (hash value) for the CA "
                       "certificate is: <B> %s </B> <P> The enrollment challenge password is: <B> "
                       "%s </B> <P> This password can be used only once and will expire within %ld "
                       "minutes. <P> Each enrollment requires a new challenge password. You can "
                       "refresh this web page to obtain a new challenge password. </P>" NDES_TAIL,
             thumbprint, password, validity_minutes);
    utf16le(out, page);
}

void iis_admin_cache_full_page(struct util_buf *out, int max, long validity_minutes)
{
    char page[2048];

    snprintf(page, sizeof(page),
             NDES_HEAD "<P> The password cache is full. <P> Network Device Enrollment Service "
                       "stores unused password for later use. By default, passwords are stored for "
                       "%ld minutes.<P>Use one of the existing passwords. If you cannot use an "
                       "existing password: <UL> <LI> Wait until one or more existing passwords "
                       "expire (by default passwords expire %ld minutes after they are created). "
                       "</LI> <LI> Restart Internet Information Services (IIS). </LI> <LI> "
                       "Configure the service to cache more than %d passwords. </LI> </UL> </P>" NDES_TAIL,
             validity_minutes, validity_minutes, max);
    utf16le(out, page);
}
