/* The job's directory under dir=, reached only through descriptors root
 * opened: made, written, handed to the job's user, removed. See
 * settings.h. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/vfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "settings.h"

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
