/* The Slurm plugin's settings and files: see settings.h. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
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

/* A token lifetime argument's value: 60 to 86400 seconds, else -1. */
static long lifetime_arg(const char *v)
{
    char *end = NULL;
    errno = 0;
    long secs = strtol(v, &end, 10);
    return errno || end == v || *end || secs < 60 || secs > 86400 ? -1 : secs;
}

/* The NAME of a `prefix.NAME=` argument `a` (its name `len` long) into
 * out: 1 to MAX_AUDIENCE_NAME letters, digits, '-' or '_'; 0 when not. */
static int audience_name(const char *a, size_t len, size_t prefix, char *out)
{
    if (len <= prefix || len - prefix > MAX_AUDIENCE_NAME)
        return 0;
    for (size_t c = prefix; c < len; c++)
        if (!isalnum((unsigned char)a[c]) && a[c] != '-' && a[c] != '_')
            return 0;
    memcpy(out, a + prefix, len - prefix);
    out[len - prefix] = 0;
    return 1;
}

int parse_args(int ac, char **av, struct settings *s, char *why, size_t n)
{
    struct {
        char name[MAX_AUDIENCE_NAME + 1];
        long secs;
    } lifetimes[MAX_AUDIENCES];
    int n_lifetimes = 0;
    memset(s, 0, sizeof(*s));
    strcpy(s->layout, "files");
    strcpy(s->dir, DEFAULT_DIR);
    strcpy(s->token_audience, "openbao");
    s->token_lifetime = TOKEN_LIFETIME;
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
        } else if (name == 13 && !strncmp(a, "job_token_key", 13)) {
            dest = s->token_key, cap = sizeof(s->token_key);
        } else if (name == 16 && !strncmp(a, "job_token_issuer", 16)) {
            dest = s->token_issuer, cap = sizeof(s->token_issuer);
        } else if (name == 18 && !strncmp(a, "job_token_audience", 18)) {
            dest = s->token_audience, cap = sizeof(s->token_audience);
        } else if (name > 19 && !strncmp(a, "job_token_audience.", 19)) {
            char got[MAX_AUDIENCE_NAME + 1];
            int ok = s->n_extra < MAX_AUDIENCES && audience_name(a, name, 19, got);
            for (int e = 0; ok && e < s->n_extra; e++)
                ok = strcmp(s->extra[e].name, got) != 0;
            if (!ok) {
                snprintf(why, n, "plugin argument %.*s: NAME must be 1 to %d letters, digits, '-' or '_', "
                         "each once, at most %d of them", (int)name, a, MAX_AUDIENCE_NAME, MAX_AUDIENCES);
                return -1;
            }
            strcpy(s->extra[s->n_extra].name, got);
            dest = s->extra[s->n_extra].audience, cap = sizeof(s->extra[0].audience);
            s->n_extra++;
        } else if (name > 19 && !strncmp(a, "job_token_lifetime.", 19)) {
            if (n_lifetimes >= MAX_AUDIENCES || !audience_name(a, name, 19, lifetimes[n_lifetimes].name) ||
                (lifetimes[n_lifetimes].secs = lifetime_arg(v)) < 0) {
                snprintf(why, n, "plugin argument %.*s='%.32s' is not 60 to 86400 seconds for a NAME of "
                         "job_token_audience.NAME", (int)name, a, v);
                return -1;
            }
            n_lifetimes++;
            continue;
        } else if (name == 18 && !strncmp(a, "job_token_lifetime", 18)) {
            if ((s->token_lifetime = lifetime_arg(v)) < 0) {
                snprintf(why, n, "plugin argument job_token_lifetime='%.32s' is not 60 to 86400 seconds", v);
                return -1;
            }
            continue;
        } else if (name == 9 && !strncmp(a, "job_paths", 9)) {
            dest = s->job_paths, cap = sizeof(s->job_paths);
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
            snprintf(why, n, "unknown plugin argument '%.*s' (config, keys, layout, env, dir, environment, "
                     "job_token_key, job_token_issuer, job_token_audience, job_token_audience.NAME, "
                     "job_token_lifetime, job_token_lifetime.NAME, job_paths)",
                     (int)name, a);
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
    for (int e = 0; e < s->n_extra; e++)
        s->extra[e].lifetime = s->token_lifetime;
    for (int l = 0; l < n_lifetimes; l++) {
        int e = 0;
        while (e < s->n_extra && strcmp(s->extra[e].name, lifetimes[l].name))
            e++;
        if (e == s->n_extra) {
            snprintf(why, n, "plugin argument job_token_lifetime.%s names no job_token_audience.%s",
                     lifetimes[l].name, lifetimes[l].name);
            return -1;
        }
        s->extra[e].lifetime = lifetimes[l].secs;
    }
    if ((s->config[0] && s->config[0] != '/') || s->dir[0] != '/' ||
        (s->environment[0] && s->environment[0] != '/') || (s->token_key[0] && s->token_key[0] != '/')) {
        snprintf(why, n, "plugin arguments config, dir, environment and job_token_key must be absolute paths");
        return -1;
    }
    if (!s->token_key[0] != !s->token_issuer[0] || ((s->job_paths[0] || s->n_extra) && !s->token_key[0])) {
        snprintf(why, n, "plugin arguments job_token_key and job_token_issuer go together, and job_paths "
                 "and job_token_audience.NAME need them (their claims are the token's)");
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

int open_base(const struct settings *s, int create, char *why, size_t n)
{
    const char *what = "plugin argument dir=";
    struct stat st;
    struct statfs fs;
    if (create && mkdir(s->dir, 0755) && errno != EEXIST) {
        snprintf(why, n, "%s%s: %s", what, s->dir, strerror(errno));
        return -1;
    }
    int fd = open(s->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, n, "%s%s: %s", what, s->dir, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) || !root_only(&st, what, s->dir, why, n) || fstatfs(fd, &fs) ||
        ((unsigned long)fs.f_type != TMPFS_MAGIC_ && (unsigned long)fs.f_type != RAMFS_MAGIC_)) {
        snprintf(why, n, "%s%s must be root's directory, not writable by group or others, on tmpfs or ramfs",
                 what, s->dir);
        close(fd);
        return -1;
    }
    return fd;
}

/* DIR/job-ID.NODE: the job's directory on this node (several slurmd on one
 * host each have their own). */
int job_name(uint32_t job, char *out, size_t n)
{
    const char *node = getenv("SLURMD_NODENAME");
    char host[256];
    if (!node || !*node || strchr(node, '/') || !strcmp(node, ".") || !strcmp(node, "..")) {
        if (gethostname(host, sizeof(host)))
            return -1;
        host[sizeof(host) - 1] = 0;
        node = host;
    }
    int len = snprintf(out, n, "job-%u.%s", job, node);
    return (len < 0 || (size_t)len >= n || strchr(out, '/')) ? -1 : 0;
}

int job_dir(const struct settings *s, uint32_t job, char *out, size_t n)
{
    char name[300];
    if (job_name(job, name, sizeof(name)))
        return -1;
    int len = snprintf(out, n, "%s/%s", s->dir, name);
    return (len < 0 || (size_t)len >= n) ? -1 : 0;
}

int open_job_dir(int base, const char *name)
{
    struct stat st;
    int fd = openat(base, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0 && (fstat(fd, &st) || st.st_uid != 0 || (st.st_mode & 022))) {
        close(fd);
        errno = EPERM;
        return -1;
    }
    return fd;
}

int write_new_at(int at, const char *name, const char *text, size_t len, mode_t mode)
{
    int fd = openat(at, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return -1;
    size_t put = 0;
    while (put < len) {
        ssize_t w = write(fd, text + put, len - put);
        if (w <= 0 && errno != EINTR)
            break;
        if (w > 0)
            put += (size_t)w;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return put == len ? 0 : -1;
}

char *read_small_at(int at, const char *name, size_t max, size_t *len, struct stat *st)
{
    struct stat own;
    st = st ? st : &own;
    int fd = openat(at, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return NULL;
    char *buf = NULL;
    if (!fstat(fd, st) && S_ISREG(st->st_mode) && (size_t)st->st_size <= max &&
        (buf = read_whole(fd, (size_t)st->st_size)) && len)
        *len = (size_t)st->st_size;
    close(fd);
    return buf;
}

/* A removal's state: the directory it removes (where a chain deeper than
 * WALK_DEPTH is moved up to), names given to those, and the entries it may
 * still visit. */
struct walk {
    int top;
    unsigned hoisted;
    long budget;
};

/* Empties the directory open at `fd` (closed here), `depth` levels below
 * the top: each entry is unlinked relative to `fd`; a directory is opened
 * relative to it with O_NOFOLLOW (a link or a swapped name is never
 * entered) and emptied first, or, WALK_DEPTH levels down, moved up into
 * the top to be emptied there: any depth, WALK_DEPTH descriptors. */
static void empty_at(struct walk *w, int fd, int depth)
{
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while (w->budget > 0 && (e = readdir(d))) {
        const char *name = e->d_name;
        w->budget--;
        if (!strcmp(name, ".") || !strcmp(name, ".."))
            continue;
        if (!unlinkat(fd, name, 0) || (errno != EISDIR && errno != EPERM))
            continue;
        if (depth >= WALK_DEPTH) {
            char up[32];
            snprintf(up, sizeof(up), ".deep-%u", w->hoisted++);
            renameat(fd, name, w->top, up);
            continue;
        }
        int sub = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (sub >= 0) {
            empty_at(w, sub, depth + 1);
            unlinkat(fd, name, AT_REMOVEDIR);
        }
    }
    closedir(d);
}

int remove_tree(int parent, const char *name)
{
    struct walk w = {-1, 0, WALK_BUDGET};
    int rc = -1;
    for (int pass = 0; pass < WALK_PASSES && w.budget > 0; pass++) {
        if (!unlinkat(parent, name, AT_REMOVEDIR) || errno == ENOENT) {
            rc = 0;
            break;
        }
        if (errno == ENOTDIR) {
            rc = unlinkat(parent, name, 0);
            break;
        }
        if (errno != ENOTEMPTY && errno != EEXIST)
            break;
        int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
            break;
        if (w.top < 0 && (w.top = dup(fd)) < 0) {
            close(fd);
            break;
        }
        empty_at(&w, fd, 0);
    }
    if (w.top >= 0)
        close(w.top);
    return rc;
}

/* Lets the job's user read one file of files/ (open at `fd`, root's 0600),
 * or list and enter one directory of it (root's 0700, `dir` set), and
 * nothing else: a POSIX ACL naming the user (read, and search for a
 * directory), the entry still root's, so the user can neither write it nor
 * change its mode. Where the filesystem keeps no ACL (ramfs, a tmpfs built
 * without them) a file is handed to the user instead (its 0600) and a
 * directory stays root's, 0711 (entered, not listed, and never a place the
 * user could swap a name for a link under root's next rewrite). 0, or
 * -1. */
static int let_read(int fd, uid_t uid, gid_t gid, int dir)
{
    /* The xattr's layout (linux/posix_acl_xattr.h): a version, then
     * (tag, perm, id) entries in tag order, little-endian. */
    static const uint16_t tags[] = {0x01, 0x02, 0x04, 0x10, 0x20}; /* owner, user, group, mask, other */
    const uint16_t read = dir ? 5 : 4;
    const uint16_t perms[] = {dir ? 7 : 6, read, 0, read, 0};
    unsigned char acl[4 + 5 * 8];
    uint32_t version = htole32(2);
    memcpy(acl, &version, 4);
    for (int i = 0; i < 5; i++) {
        uint16_t tag = htole16(tags[i]), perm = htole16(perms[i]);
        uint32_t id = htole32(tags[i] == 0x02 ? (uint32_t)uid : UINT32_MAX);
        memcpy(acl + 4 + i * 8, &tag, 2);
        memcpy(acl + 6 + i * 8, &perm, 2);
        memcpy(acl + 8 + i * 8, &id, 4);
    }
    if (uid != 0 && !fsetxattr(fd, "system.posix_acl_access", acl, sizeof(acl), 0))
        return 0;
    if (uid != 0 && errno != EOPNOTSUPP && errno != ENOTSUP)
        return -1;
    return dir ? fchmod(fd, 0711) : fchown(fd, uid, gid);
}

int replace_for_user(int at, const char *name, const char *text, size_t len, uid_t uid, gid_t gid)
{
    char tmp[320];
    if (snprintf(tmp, sizeof(tmp), ".%s.new", name) >= (int)sizeof(tmp))
        return errno = ENAMETOOLONG, -1;
    unlinkat(at, tmp, 0); /* one left by a writer killed mid-way */
    if (write_new_at(at, tmp, text, len, 0600))
        return -1;
    int fd = openat(at, tmp, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    int rc = fd < 0 || let_read(fd, uid, gid, 0) || renameat(at, tmp, at, name) ? -1 : 0;
    int saved = errno;
    if (fd >= 0)
        close(fd);
    if (rc)
        unlinkat(at, tmp, 0);
    errno = saved;
    return rc;
}

/* Lets the job's user read each file the library wrote into the directory
 * open at `at` and enter each directory (a vendor's profile), `depth`
 * levels below files/; 0, or -1 with errno. */
static int hand_at(int at, uid_t uid, gid_t gid, int depth)
{
    int fd = dup(at);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    int rc = 0;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    rewinddir(d);
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int f = openat(at, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        struct stat st;
        rc = f < 0 || fstat(f, &st) || st.st_uid != 0 ? -1 : 0;
        if (!rc && S_ISDIR(st.st_mode))
            rc = depth >= 2 || let_read(f, uid, gid, 1) || hand_at(f, uid, gid, depth + 1) ? -1 : 0;
        else if (!rc)
            rc = !S_ISREG(st.st_mode) || let_read(f, uid, gid, 0) ? -1 : 0;
        if (f >= 0)
            close(f);
    }
    closedir(d);
    return rc;
}

int hand_files(int files, uid_t uid, gid_t gid)
{
    return hand_at(files, uid, gid, 0);
}

/* The value of secret file `key` of the job's files/ (in `jd`) for the
 * environment: one plain name, root's (or, where no ACL is kept, the job
 * user's), one link to it (never another job's file linked in); NULL. */
char *env_value(int jd, const char *key, uid_t uid, size_t *len)
{
    struct stat st;
    int files = openat(jd, "files", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (files < 0)
        return NULL;
    char *value = strchr(key, '/') || key[0] == '.' ? NULL : read_small_at(files, key, MAX_VALUE, len, &st);
    close(files);
    if (value && (st.st_nlink != 1 || (st.st_uid != 0 && st.st_uid != uid) || memchr(value, 0, *len))) {
        explicit_bzero(value, *len);
        free(value);
        value = NULL;
    }
    return value;
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

int expand_paths(const char *paths, const struct job_claims *c, char *out, size_t n, char *why, size_t wn)
{
    static const char *names[] = {"user", "account", "partition", "cluster", "qos"};
    const char *values[] = {c->user, c->account, c->partition, c->cluster, c->qos};
    size_t o = 0;
    for (const char *p = paths; *p;) {
        const char *add = p;
        size_t len = 1;
        if (*p == '{') {
            size_t name = strcspn(p + 1, "}");
            int i = 0;
            while (i < 5 && (strlen(names[i]) != name || strncmp(p + 1, names[i], name)))
                i++;
            if (p[1 + name] != '}' || i == 5 || !values[i][0]) {
                snprintf(why, wn, "plugin argument job_paths: '{%.*s}' is not a claim the job's token has "
                         "(user, account, partition, cluster, qos)", (int)(name > 32 ? 32 : name), p + 1);
                return -1;
            }
            add = values[i], len = strlen(values[i]);
            p += name + 2;
        } else {
            p++;
        }
        if (o + len >= n) {
            snprintf(why, wn, "plugin argument job_paths: longer than %zu bytes with the job's claims", n - 1);
            return -1;
        }
        memcpy(out + o, add, len);
        o += len;
    }
    out[o] = 0;
    return 0;
}
