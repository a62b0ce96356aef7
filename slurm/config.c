/* The files root reads because an argument names them (config=,
 * environment=): root's, never through a link, bounded. See settings.h. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "settings.h"

/* A file or directory root owns and nobody else may change: what a root
 * process may trust. */
int root_only(const struct stat *st, const char *what, const char *path, char *why, size_t n)
{
    if (st->st_uid != 0 || (st->st_mode & 022)) {
        snprintf(why, n, "%s %s must be root's and not writable by group or others (owner %u, mode %o)",
                 what, path, (unsigned)st->st_uid, (unsigned)(st->st_mode & 07777));
        return 0;
    }
    return 1;
}

/* The `size` bytes of the open file `fd` in a new NUL-terminated buffer, or
 * NULL (a short read's bytes zeroed first). */
char *read_whole(int fd, size_t size)
{
    char *text = calloc(1, size + 1);
    if (!text)
        return NULL;
    if (read(fd, text, size) != (ssize_t)size) {
        explicit_bzero(text, size);
        free(text);
        return NULL;
    }
    return text;
}

/* The text of plugin argument `arg` (config, environment), checked (root's,
 * not group/other writable, a regular file; environment= not readable by
 * them either), or NULL with `why`. */
char *read_root_file(const char *arg, const char *path, char *why, size_t n)
{
    char what[64];
    snprintf(what, sizeof(what), "plugin argument %s=", arg);
    struct stat st;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        snprintf(why, n, "%s%s: %s", what, path, strerror(errno));
        return NULL;
    }
    char *text = NULL;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        snprintf(why, n, "%s%s is not a regular file", what, path);
    } else if (root_only(&st, what, path, why, n)) {
        if (!strcmp(arg, "environment") && (st.st_mode & 044))
            snprintf(why, n, "%s%s is readable by group or others (mode %o): its variables give the site's "
                     "identity (a secret ID, a key file's path): make it 0600", what, path,
                     (unsigned)(st.st_mode & 07777));
        else if (st.st_size > MAX_CONFIG)
            snprintf(why, n, "%s%s is larger than %d bytes", what, path, MAX_CONFIG);
        else if (!(text = read_whole(fd, (size_t)st.st_size)))
            snprintf(why, n, "%s%s: cannot read it", what, path);
    }
    close(fd);
    return text;
}

/* Sets the variables of plugin argument environment=FILE (NAME=VALUE lines;
 * blank lines and # comments skipped) in this process; 0, or -1 with why. */
int load_environment(const struct settings *s, char *why, size_t n)
{
    if (!s->environment[0])
        return 0;
    char *text = read_root_file("environment", s->environment, why, n);
    if (!text)
        return -1;
    size_t len = strlen(text);
    int rc = 0, line = 0;
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        line++;
        while (*l == ' ' || *l == '\t')
            l++;
        if (!*l || *l == '#')
            continue;
        char *eq = strchr(l, '=');
        int ok = eq && eq > l && (isalpha((unsigned char)*l) || *l == '_');
        for (char *c = l; ok && c < eq; c++)
            ok = isalnum((unsigned char)*c) || *c == '_';
        if (!ok) {
            snprintf(why, n, "plugin argument environment=%s: line %d is not NAME=VALUE", s->environment, line);
            rc = -1;
            break;
        }
        *eq = 0;
        setenv(l, eq + 1, 1);
    }
    explicit_bzero(text, len);
    free(text);
    return rc;
}
