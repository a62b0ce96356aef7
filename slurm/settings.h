/* The Slurm plugin's settings (its plugstack.conf arguments) and the files
 * it reads and writes as root: checked, never through a link, bounded.
 * Plain C, no Slurm or library calls (slurm/st_secrets_spank.c has those). */
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
#define TMPFS_MAGIC_ 0x01021994
#define RAMFS_MAGIC_ 0x858458f6

struct settings {
    char config[PATH_MAX];
    char keys[MAX_LIST];
    char layout[8];
    int env_allowed;
    char dir[BASE_MAX];
    char environment[PATH_MAX];
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
/* Whether path is on tmpfs or ramfs. */
int memory_backed(const char *path);
/* DIR/job-ID.NODE, this node's directory for the job; 0, or -1. */
int job_dir(const struct settings *s, uint32_t job, char *out, size_t n);
/* A new file (O_EXCL, never through a link) holding text; 0, or -1. */
int write_new(const char *path, const char *text, size_t len, mode_t mode);
/* At most max bytes of a regular file, NUL-terminated, *len its length; NULL. */
char *read_small(const char *path, size_t max, size_t *len);
/* Removes a directory and what it holds, links themselves never followed. */
void remove_tree(const char *path);
/* An exclusive flock on fd, waiting at most `seconds` for it; 0, or -1. */
int lock_within(int fd, int seconds);
/* Sets the NAME=VALUE lines of plugin argument environment= in this process. */
int load_environment(const struct settings *s, char *why, size_t n);
/* The next JSON string at *p (a flat object of strings) into out; 0, or -1. */
int json_string(const char **p, char *out, size_t n);

#pragma GCC visibility pop

#endif
