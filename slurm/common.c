/* What the plugin's files share: the library's flat JSON answers read,
 * a lock taken within a bound. See settings.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <sys/file.h>
#include <time.h>

#include "settings.h"

/* The next JSON string of a flat object of strings at *p (the library's
 * output: printable ASCII escaped as JSON escapes it) into out. */
int json_string(const char **p, char *out, size_t n)
{
    const char *s = *p;
    size_t o = 0;
    while (*s && *s != '"')
        s++;
    if (*s++ != '"')
        return -1;
    for (; *s && *s != '"'; s++) {
        char c = *s;
        if (c == '\\') {
            s++;
            switch (*s) {
            case '"': case '\\': case '/': c = *s; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                unsigned v = 0;
                if (sscanf(s + 1, "%4x", &v) != 1 || v > 0x7f)
                    return -1;
                c = (char)v;
                s += 4;
                break;
            }
            default: return -1;
            }
        }
        if (o + 1 >= n)
            return -1;
        out[o++] = c;
    }
    if (*s != '"')
        return -1;
    out[o] = 0;
    *p = s + 1;
    return 0;
}

/* An exclusive flock on fd, waiting at most `seconds` (0: not at all) for
 * its holder; 0, or -1. */
int lock_within(int fd, int seconds)
{
    struct timespec nap = {0, 50 * 1000 * 1000};
    for (long tries = (long)seconds * 20; flock(fd, LOCK_EX | LOCK_NB); tries--) {
        if (errno != EWOULDBLOCK || tries <= 0)
            return -1;
        nanosleep(&nap, NULL);
    }
    return 0;
}
