/* The Slurm plugin's settings (its plugstack.conf arguments) and the files
 * it reads and writes as root: checked, never through a link, bounded.
 * Plain C, no Slurm or library calls (slurm/st_secrets_spank.c has those):
 * args.c parses the arguments, config.c reads the files they name, jobdir.c
 * keeps the job's directory by descriptors, common.c has what they share. */
#ifndef ST_SECRETS_SPANK_SETTINGS_H
#define ST_SECRETS_SPANK_SETTINGS_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#define DEFAULT_DIR "/run/st-secrets"
#define MAX_LIST 4096
#define BASE_MAX 1024
#define DIR_MAX (BASE_MAX + 300) /* BASE/job-ID.NODE */
#define MAX_CONFIG (1024 * 1024)
#define MAX_VARS (256 * 1024)
#define MAX_VALUE (64 * 1024)
#define WALK_DEPTH 32
#define WALK_BUDGET 4000000L
#define WALK_PASSES 64
#define TOKEN_LIFETIME 900 /* seconds, job_token_lifetime='s default */
#define MAX_TOKEN (64 * 1024)
#define MAX_AUDIENCES 8     /* job_token_audience.NAME= arguments */
#define MAX_AUDIENCE_NAME 32
#define TMPFS_MAGIC_ 0x01021994
#define RAMFS_MAGIC_ 0x858458f6

struct settings {
    char config[PATH_MAX];
    char keys[MAX_LIST];
    char layout[8];
    int env_allowed;
    char dir[BASE_MAX];
    char environment[PATH_MAX];
    /* The job token (job_token.c): the site's signing key (root's, read by
     * nobody else), the issuer, the audience of the store's login, the
     * lifetime in seconds; no token without a key. */
    char token_key[PATH_MAX];
    char token_issuer[512];
    char token_audience[256];
    long token_lifetime;
    /* Tokens for other audiences, each beside the job's as token.NAME
     * (job_token_audience.NAME=AUD): the subject tokens of the library's
     * token exchanges (a vendor takes only a token minted for it). */
    struct {
        char name[MAX_AUDIENCE_NAME + 1];
        char audience[256];
        long lifetime; /* job_token_lifetime.NAME=, else token_lifetime */
    } extra[MAX_AUDIENCES];
    int n_extra;
    /* Vault paths for the job's reads, {user}, {account}, {partition},
     * {cluster} and {qos} its token's claims (job_paths=). */
    char job_paths[MAX_LIST];
};

/* The claims of a job's token that name paths (job_paths=). */
struct job_claims {
    char user[256], account[256], partition[256], cluster[256], qos[256];
};

/* Hidden: slurmstepd's own symbols must neither see nor replace these. */
#pragma GCC visibility push(hidden)

/* A list of NAME[=KEY] items: NAME a variable name, KEY a plain file name
 * without '='; 1, or 0 with why. */
int valid_list(const char *list, char *why, size_t n);
/* The plugin arguments into *s; 0, or -1 with why (naming the argument). */
int parse_args(int ac, char **av, struct settings *s, char *why, size_t n);
/* Whether st is root's and not writable by group or others; 0 with why. */
int root_only(const struct stat *st, const char *what, const char *path, char *why, size_t n);
/* The text of plugin argument arg's file, checked as root_only; NULL with why. */
char *read_root_file(const char *arg, const char *path, char *why, size_t n);
/* The `size` bytes of the open file `fd` in a new NUL-terminated buffer, or
 * NULL (a short read's bytes zeroed first). */
char *read_whole(int fd, size_t size);
/* Plugin argument dir= opened (created 0755 first with `create`): root's,
 * not writable by group or others, on tmpfs or ramfs, not a link; the
 * descriptor everything under it is reached through, or -1 with why. */
int open_base(const struct settings *s, int create, char *why, size_t n);
/* job-ID.NODE, the name of this node's directory for the job in dir=; 0,
 * or -1. */
int job_name(uint32_t job, char *out, size_t n);
/* DIR/job-ID.NODE, its path (for the library and messages); 0, or -1. */
int job_dir(const struct settings *s, uint32_t job, char *out, size_t n);
/* The job's directory `name` in `base` opened (never through a link), if
 * root's and not writable by group or others; the descriptor, or -1. */
int open_job_dir(int base, const char *name);
/* A new file `name` in the directory open at `at` (O_EXCL, never through a
 * link) holding text; 0, or -1 (what was written stays). */
int write_new_at(int at, const char *name, const char *text, size_t len, mode_t mode);
/* `name` in the directory open at `at` replaced at once (a new root's file
 * renamed over it) by one holding text, which the user `uid` alone may read
 * (as hand_files); 0, or -1 with errno (the old file stays). */
int replace_for_user(int at, const char *name, const char *text, size_t len, uid_t uid, gid_t gid);
/* At most max bytes of the regular file `name` in the directory open at
 * `at` (never through a link), NUL-terminated, *len its length and *st its
 * status (each when not NULL); NULL. */
char *read_small_at(int at, const char *name, size_t max, size_t *len, struct stat *st);
/* Removes `name` in the directory open at `parent` and all it holds, only
 * ever relative to descriptors: a link is removed, never followed, a name
 * swapped for a link mid-walk is never entered, and no path is built (no
 * PATH_MAX). Bounded (WALK_BUDGET entries, WALK_PASSES passes); 0 when it
 * is gone, -1. */
int remove_tree(int parent, const char *name);
/* Lets the job's user (uid, gid) read each file of the job's files/ (open at
 * `files`, written root's 0600) and enter each directory in it (a vendor's
 * profile, root's 0700; two levels at most): a POSIX ACL naming the user
 * alone, each entry still root's; where no ACL is kept (ramfs), a file
 * handed to the user (its 0600), a directory root's 0711. 0, or -1 with
 * errno. */
int hand_files(int files, uid_t uid, gid_t gid);
/* The value of the secret file `key` in the job's directory (open at `jd`)
 * files/: one plain name, root's or `uid`'s, its only link, no NUL byte;
 * NULL. */
char *env_value(int jd, const char *key, uid_t uid, size_t *len);
/* An exclusive flock on fd, waiting at most `seconds` for it; 0, or -1. */
int lock_within(int fd, int seconds);
/* job_paths= with each {claim} replaced by the job's; 0, or -1 with why. */
int expand_paths(const char *paths, const struct job_claims *c, char *out, size_t n, char *why, size_t wn);
/* Sets the NAME=VALUE lines of plugin argument environment= in this process. */
int load_environment(const struct settings *s, char *why, size_t n);
/* The next JSON string at *p (a flat object of strings) into out; 0, or -1. */
int json_string(const char **p, char *out, size_t n);

#pragma GCC visibility pop

#endif
