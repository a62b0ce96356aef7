/* The Slurm plugin's settings and files: see settings.h. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#include "settings.h"

/* A list item is NAME[=KEY]: NAME a variable name, KEY a plain file name
 * without '=' (the library checks the same again). */
int valid_list(const char *list, char *why, size_t n)
{
    const char *p = list;
    if (!*p) {
        snprintf(why, n, "the list of secrets is empty");
        return 0;
    }
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        size_t name = 0;
        while (name < len && p[name] != '=')
            name++;
        int ok = name > 0 && (isalpha((unsigned char)p[0]) || p[0] == '_');
        for (size_t i = 0; ok && i < name; i++)
            ok = isalnum((unsigned char)p[i]) || p[i] == '_';
        if (ok && name < len) {
            const char *key = p + name + 1;
            size_t klen = len - name - 1;
            ok = klen > 0 && key[0] != '.';
            for (size_t i = 0; ok && i < klen; i++)
                ok = isgraph((unsigned char)key[i]) && key[i] != '/' && key[i] != '=';
        }
        if (!ok) {
            snprintf(why, n, "'%.*s' is not NAME or NAME=KEY (a variable name; a key without spaces, / or =)",
                     (int)(len > 64 ? 64 : len), p);
            return 0;
        }
        p += len;
        if (*p == ',')
            p++;
    }
    return 1;
}

int parse_args(int ac, char **av, struct settings *s, char *why, size_t n)
{
    memset(s, 0, sizeof(*s));
    strcpy(s->layout, "files");
    strcpy(s->dir, DEFAULT_DIR);
    for (int i = 0; i < ac; i++) {
        const char *a = av[i];
        const char *v = strchr(a, '=');
        if (!v) {
            snprintf(why, n, "plugin argument '%s' is not NAME=VALUE", a);
            return -1;
        }
        v++;
        size_t name = (size_t)(v - a - 1);
        char *dest = NULL;
        size_t cap = 0;
        if (name == 6 && !strncmp(a, "config", 6)) {
            dest = s->config, cap = sizeof(s->config);
        } else if (name == 4 && !strncmp(a, "keys", 4)) {
            dest = s->keys, cap = sizeof(s->keys);
        } else if (name == 3 && !strncmp(a, "dir", 3)) {
            dest = s->dir, cap = sizeof(s->dir);
        } else if (name == 11 && !strncmp(a, "environment", 11)) {
            dest = s->environment, cap = sizeof(s->environment);
        } else if (name == 6 && !strncmp(a, "layout", 6)) {
            if (strcmp(v, "files") && strcmp(v, "refs")) {
                snprintf(why, n, "plugin argument layout='%s' is not files or refs", v);
                return -1;
            }
            dest = s->layout, cap = sizeof(s->layout);
        } else if (name == 3 && !strncmp(a, "env", 3)) {
            if (strcmp(v, "allow") && strcmp(v, "deny")) {
                snprintf(why, n, "plugin argument env='%s' is not allow or deny", v);
                return -1;
            }
            s->env_allowed = !strcmp(v, "allow");
            continue;
        } else {
            snprintf(why, n, "unknown plugin argument '%.*s' (config, keys, layout, env, dir, environment)", (int)name, a);
            return -1;
        }
        if (strlen(v) >= cap || !*v) {
            snprintf(why, n, "plugin argument %.*s is empty or too long", (int)name, a);
            return -1;
        }
        strcpy(dest, v);
    }
    if (s->keys[0] && !valid_list(s->keys, why, n))
        return -1;
    if ((s->config[0] && s->config[0] != '/') || s->dir[0] != '/' ||
        (s->environment[0] && s->environment[0] != '/')) {
        snprintf(why, n, "plugin arguments config, dir and environment must be absolute paths");
        return -1;
    }
    return 0;
}

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
static char *read_whole(int fd, size_t size)
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
 * not group/other writable, a regular file), or NULL with `why`. */
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
        if (st.st_size > MAX_CONFIG)
            snprintf(why, n, "%s%s is larger than %d bytes", what, path, MAX_CONFIG);
        else if (!(text = read_whole(fd, (size_t)st.st_size)))
            snprintf(why, n, "%s%s: cannot read it", what, path);
    }
    close(fd);
    return text;
}

int memory_backed(const char *path)
{
    struct statfs fs;
    return statfs(path, &fs) == 0 && ((unsigned long)fs.f_type == TMPFS_MAGIC_ || (unsigned long)fs.f_type == RAMFS_MAGIC_);
}

/* DIR/job-ID.NODE: the job's directory on this node (several slurmd on one
 * host each have their own). */
int job_dir(const struct settings *s, uint32_t job, char *out, size_t n)
{
    const char *node = getenv("SLURMD_NODENAME");
    char host[256];
    if (!node || !*node || strchr(node, '/')) {
        if (gethostname(host, sizeof(host)))
            return -1;
        host[sizeof(host) - 1] = 0;
        node = host;
    }
    int len = snprintf(out, n, "%s/job-%u.%s", s->dir, job, node);
    return (len < 0 || (size_t)len >= n) ? -1 : 0;
}

int write_new(const char *path, const char *text, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    ssize_t put = write(fd, text, len);
    close(fd);
    return put == (ssize_t)len ? 0 : -1;
}

/* Reads at most max bytes of a regular file (no links) into a new
 * NUL-terminated buffer; *len its length. */
char *read_small(const char *path, size_t max, size_t *len)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    char *buf = NULL;
    if (!fstat(fd, &st) && S_ISREG(st.st_mode) && (size_t)st.st_size <= max &&
        (buf = read_whole(fd, (size_t)st.st_size)) && len)
        *len = (size_t)st.st_size;
    close(fd);
    return buf;
}

/* Removes the job's directory: its files, files/ and what is in it. Never
 * follows a link (unlinkat removes the link itself). */
void remove_tree(const char *path)
{
    DIR *d = opendir(path);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            if (unlinkat(dirfd(d), e->d_name, 0) && errno == EISDIR) {
                char sub[PATH_MAX];
                if (snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name) < (int)sizeof(sub))
                    remove_tree(sub);
            }
        }
        closedir(d);
    }
    rmdir(path);
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
