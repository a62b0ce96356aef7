/* The Slurm plugin's root-side file code (slurm/jobdir.c and the files
 * beside it, plain C): the removal of a job's directory never leaves it,
 * whatever a process of the job's user does to the names inside while
 * root walks them; a chain of names longer than PATH_MAX is removed whole;
 * the files it writes and reads are never reached through a link. Runs as
 * any user (the race needs none: a removal that follows a link empties the
 * canary either way). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "../../slurm/settings.h"

static char root[64];

/* A file `name` in the directory open at `at`. */
static void touch_at(int at, const char *name)
{
    int fd = openat(at, name, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
}

/* How many entries the directory `path` holds (-1: gone). */
static int entries(const char *path)
{
    char cmd[PATH_MAX + 64];
    snprintf(cmd, sizeof(cmd), "ls -A '%s' 2>/dev/null | wc -l", path);
    FILE *p = popen(cmd, "r");
    int n = -1;
    if (p) {
        if (fscanf(p, "%d", &n) != 1)
            n = -1;
        pclose(p);
    }
    struct stat st;
    return stat(path, &st) ? -1 : n;
}

/* A canary directory (root's data elsewhere on the node) of three files. */
static void make_canary(const char *canary)
{
    mkdir(canary, 0700);
    int fd = open(canary, O_RDONLY | O_DIRECTORY);
    touch_at(fd, "a");
    touch_at(fd, "b");
    touch_at(fd, "c");
    close(fd);
}

/* Links to the canary (as a directory and a file) inside the tree: removed
 * as links, never followed. */
static void test_links_are_removed_not_followed(int base, const char *canary)
{
    char target[PATH_MAX + 8];
    mkdirat(base, "job", 0711);
    int jd = openat(base, "job", O_RDONLY | O_DIRECTORY);
    mkdirat(jd, "files", 0700);
    int files = openat(jd, "files", O_RDONLY | O_DIRECTORY);
    CHECK(symlinkat(canary, files, "dir-link") == 0);
    snprintf(target, sizeof(target), "%s/a", canary);
    CHECK(symlinkat(target, files, "file-link") == 0);
    CHECK(linkat(AT_FDCWD, target, files, "hard-link", 0) == 0 || errno == EPERM);
    mkdirat(files, "sub", 0700);
    close(files);
    close(jd);
    CHECK(remove_tree(base, "job") == 0);
    CHECK(faccessat(base, "job", F_OK, AT_SYMLINK_NOFOLLOW) != 0);
    CHECK(entries(canary) == 3);
}

/* A process swapping a directory of the tree with a link to the canary
 * (renameat2 RENAME_EXCHANGE) over and over while root removes the tree,
 * for many trees: the canary keeps its files. */
static void test_a_swap_mid_removal_never_leaves_the_tree(int base, const char *canary)
{
    long rounds = st_test_scale(100);
    for (long r = 0; r < rounds; r++) {
        mkdirat(base, "job", 0711);
        int jd = openat(base, "job", O_RDONLY | O_DIRECTORY);
        mkdirat(jd, "files", 0777);
        int files = openat(jd, "files", O_RDONLY | O_DIRECTORY);
        for (int i = 0; i < 8; i++) {
            char name[16];
            snprintf(name, sizeof(name), "d%d", i);
            mkdirat(files, name, 0700);
            int d = openat(files, name, O_RDONLY | O_DIRECTORY);
            touch_at(d, "x");
            touch_at(d, "y");
            close(d);
        }
        symlinkat(canary, files, "swap");
        pid_t child = fork();
        if (child == 0) {
            for (;;) {
                symlinkat(canary, files, "swap"); /* again, once the walk removed it */
                for (int i = 0; i < 8; i++) {
                    char name[16];
                    snprintf(name, sizeof(name), "d%d", i);
                    renameat2(files, name, files, "swap", RENAME_EXCHANGE);
                }
            }
        }
        remove_tree(base, "job");
        kill(child, SIGKILL);
        waitpid(child, NULL, 0);
        remove_tree(base, "job");
        close(files);
        close(jd);
        if (entries(canary) != 3) {
            CHECK(!"the canary lost files");
            make_canary(canary);
            break;
        }
    }
    CHECK(faccessat(base, "job", F_OK, AT_SYMLINK_NOFOLLOW) != 0);
}

/* A chain of directories whose path is far past PATH_MAX, made relative to
 * descriptors as a user's process can: removed whole. */
static void test_a_chain_past_path_max_is_removed(int base)
{
    char name[201];
    memset(name, 'n', 200);
    name[200] = 0;
    mkdirat(base, "job", 0711);
    int fd = openat(base, "job", O_RDONLY | O_DIRECTORY);
    int depth = 0;
    for (; depth < 3 * PATH_MAX / 200 && fd >= 0; depth++) {
        touch_at(fd, "f");
        if (mkdirat(fd, name, 0700))
            break;
        int sub = openat(fd, name, O_RDONLY | O_DIRECTORY);
        close(fd);
        fd = sub;
    }
    if (fd >= 0)
        close(fd);
    CHECK(depth * 201 > 2 * PATH_MAX);
    CHECK(remove_tree(base, "job") == 0);
    CHECK(faccessat(base, "job", F_OK, AT_SYMLINK_NOFOLLOW) != 0);
}

/* The files the plugin writes and reads in a job's directory: never
 * through a link, never over a name already there. */
static void test_files_are_never_reached_through_a_link(int base, const char *canary)
{
    char target[PATH_MAX + 8];
    snprintf(target, sizeof(target), "%s/a", canary);
    mkdirat(base, "job", 0711);
    int jd = openat(base, "job", O_RDONLY | O_DIRECTORY);
    CHECK(symlinkat(target, jd, "error") == 0);
    CHECK(write_new_at(jd, "error", "x", 1, 0600) == -1);
    CHECK(read_small_at(jd, "error", 100, NULL, NULL) == NULL);
    CHECK(write_new_at(jd, "vars", "v", 1, 0600) == 0);
    CHECK(write_new_at(jd, "vars", "w", 1, 0600) == -1);
    size_t len = 0;
    struct stat st;
    char *v = read_small_at(jd, "vars", 100, &len, &st);
    CHECK(v && len == 1 && v[0] == 'v' && (st.st_mode & 0777) == 0600);
    free(v);
    CHECK(read_small_at(jd, "vars", 0, NULL, NULL) == NULL);
    close(jd);
    CHECK(remove_tree(base, "job") == 0);
    CHECK(entries(canary) == 3);
}

/* The job token's plugin arguments, and job_paths= filled in from the
 * token's claims. */
static void test_job_token_arguments_and_paths(int base)
{
    struct settings s;
    char why[512], out[64];
    char *good[] = {"job_token_key=/etc/k.pem", "job_token_issuer=https://slurm.example", "job_token_lifetime=60",
                    "job_paths=users/{user},accounts/{account}"};
    CHECK(parse_args(4, good, &s, why, sizeof(why)) == 0);
    CHECK(s.token_lifetime == 60 && !strcmp(s.token_audience, "openbao"));
    char *lone[] = {"job_token_key=/etc/k.pem"};
    CHECK(parse_args(1, lone, &s, why, sizeof(why)) == -1 && strstr(why, "go together"));
    char *paths_alone[] = {"job_paths=users/{user}"};
    CHECK(parse_args(1, paths_alone, &s, why, sizeof(why)) == -1);
    char *relative[] = {"job_token_key=k.pem", "job_token_issuer=https://x"};
    CHECK(parse_args(2, relative, &s, why, sizeof(why)) == -1 && strstr(why, "absolute"));
    for (int i = 0; i < 4; i++) {
        char *life[] = {(char *[]){"job_token_lifetime=59", "job_token_lifetime=86401", "job_token_lifetime=1m",
                                   "job_token_lifetime="}[i]};
        CHECK(parse_args(1, life, &s, why, sizeof(why)) == -1 && strstr(why, "60 to 86400"));
    }
    struct job_claims c = {"alice", "vision", "gpu", "st", ""};
    CHECK(expand_paths("users/{user},accounts/{account}/{cluster}", &c, out, sizeof(out), why, sizeof(why)) == 0);
    CHECK(!strcmp(out, "users/alice,accounts/vision/st"));
    CHECK(expand_paths("q/{qos}", &c, out, sizeof(out), why, sizeof(why)) == -1 && strstr(why, "{qos}"));
    CHECK(expand_paths("x/{home}", &c, out, sizeof(out), why, sizeof(why)) == -1 && strstr(why, "{home}"));
    CHECK(expand_paths("x/{user", &c, out, sizeof(out), why, sizeof(why)) == -1);
    const char *many = "{account}{account}{account}{account}{account}{account}{account}{account}{account}"
                       "{account}{account}";
    CHECK(expand_paths(many, &c, out, sizeof(out), why, sizeof(why)) == -1 && strstr(why, "longer"));
    /* The token replaced at once for the user: a new root's file renamed
     * over the old, never through a link. */
    CHECK(mkdirat(base, "tok", 0711) == 0);
    int jd = openat(base, "tok", O_RDONLY | O_DIRECTORY);
    CHECK(replace_for_user(jd, "token", "one", 3, getuid(), getgid()) == 0);
    CHECK(replace_for_user(jd, "token", "two!", 4, getuid(), getgid()) == 0);
    size_t len = 0;
    char *t = read_small_at(jd, "token", 100, &len, NULL);
    CHECK(t && len == 4 && !memcmp(t, "two!", 4));
    free(t);
    CHECK(faccessat(jd, ".token.new", F_OK, AT_SYMLINK_NOFOLLOW) != 0);
    close(jd);
    CHECK(remove_tree(base, "tok") == 0);
}

int main(void)
{
    char canary[128];
    snprintf(root, sizeof(root), "/tmp/st-spank-files.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(canary, sizeof(canary), "%s/canary", root);
    make_canary(canary);
    char dir[128];
    snprintf(dir, sizeof(dir), "%s/base", root);
    mkdir(dir, 0755);
    int base = open(dir, O_RDONLY | O_DIRECTORY);
    test_links_are_removed_not_followed(base, canary);
    test_a_swap_mid_removal_never_leaves_the_tree(base, canary);
    test_a_chain_past_path_max_is_removed(base);
    test_files_are_never_reached_through_a_link(base, canary);
    test_job_token_arguments_and_paths(base);
    close(base);
    CHECK(remove_tree(AT_FDCWD, root) == 0);
    return st_test_finish("test_spank_files");
}
