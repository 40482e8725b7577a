/* iis.c - IIS custom error pages and HTTP.sys pages, byte for byte as the
 * reference records them (CRLF line ends; 403 = 1233 bytes, 503 = 326). */
#include "ndesmock/iis.h"

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
};
#define NHTTPSYS (sizeof(httpsys_defs) / sizeof(httpsys_defs[0]))
static char httpsys_bodies[NHTTPSYS][512];
static struct iis_page httpsys_pages[NHTTPSYS];

int iis_pages_init(void)
{
    size_t i;

    for (i = 0; i < NCUSTOM; i++) {
        const struct custom_def *d = &custom_defs[i];
        int n = snprintf(
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
        int n;
        snprintf(title, sizeof(title), "%.*s", (int)(bar - d->title), d->title);
        snprintf(h2, sizeof(h2), "%s", bar + 1);
        n = snprintf(httpsys_bodies[i], sizeof(httpsys_bodies[i]), HTTPSYS_HEAD, title, h2, d->h3);
        if (n < 0 || n >= (int)sizeof(httpsys_bodies[i]))
            return -1;
        httpsys_pages[i].status = d->status;
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
        if (httpsys_pages[i].status == status)
            return &httpsys_pages[i];
    return NULL;
}
