/*
 * st_secrets_spank.so: a Slurm SPANK plugin that hands each job the secrets
 * it names, fetched on every node by the node itself (configured once in
 * plugstack.conf: with the site's identity, or with the job's own token the
 * site signs, so that the store's policies decide per user and account), so
 * nothing of a value reaches Slurm's records, the job script or the user's
 * credentials. The public C API of
 * libst_secrets and Slurm's spank.h (with slurm.h's hostlist functions for
 * the node's index among the job's nodes).
 *
 *   required /PREFIX/lib/slurm/st_secrets_spank.so config=/etc/st-secrets/slurm.json
 *
 * Plugin arguments (plugstack.conf):
 *   config=FILE   the library's JSON configuration for the site (root's,
 *                 not writable by group or others): its chain, Vault or AWS
 *                 address and login; required once a job names a secret
 *   keys=LIST     secrets every job gets (NAME[=KEY],...), before its own
 *   layout=files|refs   the default delivery (files)
 *   env=allow|deny      whether a job may ask for values in its environment
 *                       (--st-secrets-as=env); deny by default
 *   dir=PATH      where the jobs' directories go (/run/st-secrets): root's,
 *                 on tmpfs or ramfs
 *   environment=FILE  NAME=VALUE lines (root's, not writable by group or
 *                 others) set for the library in the prolog and the epilog,
 *                 whose environment Slurm builds afresh: the variables the
 *                 site's identity is given by (AWS_SHARED_CREDENTIALS_FILE,
 *                 AWS_PROFILE, VAULT_ROLE_ID, BAO_CACERT, ...)
 *   job_token_key=FILE, job_token_issuer=URL  the site's RSA key (root's,
 *                 read by nobody else) and the issuer its tokens name: every
 *                 job gets its own token (job_token.c), which a jwt login
 *                 of config= sends (SIMPLETUNER_JOB_TOKEN_FILE)
 *   job_token_audience=AUD  the token's aud (openbao)
 *   job_token_lifetime=SECONDS  60 to 86400 (900), never past the job's
 *                 time limit; renewed by each step at half of it
 *   job_token_audience.NAME=AUD, job_token_lifetime.NAME=SECONDS  a token
 *                 of the job for another audience (a vendor's token
 *                 exchange), beside it as token.NAME (up to 8)
 *
 * (Their parsing: args.c; the files they name: config.c; the job's
 * directory: jobdir.c; the job's end: ending.c. Everything under dir= is
 * reached relative to descriptors, never by a path through a link.)
 *
 * Job options (sbatch, salloc, srun): --st-secrets=NAME[=KEY],... and
 * --st-secrets-as=files|refs|env.
 *
 * Where each part runs (docs/slurm.md, "What runs where"):
 *   job_prolog (root, on each node of the job, before its first step there):
 *     mints the job's token (with job_token_key=) from slurmctld's record
 *     of the job into DIR/job-ID.NODE/token;
 *     fetches the secrets in the node's admission slot (its index in the
 *     job's node list), writes them in DIR/job-ID.NODE/files (root's
 *     files the job's user alone may read, in a directory it cannot add
 *     to), and the variables naming them in .../vars;
 *     every login and lease goes to the job's ledger (.../ledger).
 *     A failure is written to .../error, never fails the prolog (which
 *     would drain the node): the job's tasks fail with it instead.
 *   init_post_opt (slurmstepd, root, each step): sets the variables in the
 *     step's environment; starts the step's renewal of the job's token and
 *     of the files of its short-lived credentials (a token exchange's).
 *   task_init (each task, the user's): a failure of the prolog is printed
 *     on the task's stderr (the job's output) and the task fails.
 *   task_exit, exit (slurmstepd, root, each step): the batch step's end,
 *     or a task's or step's a signal ended while slurmctld ends the job
 *     (scancel, the time limit), revokes every lease and login token of the
 *     job's ledger and removes the directory, without the epilog's wait.
 *   job_epilog (root, each node, however the job ended): the same, for
 *     what no step's end revoked.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "st_secrets.h"
#include "settings.h"
#include "ending.h"
#include "job_token.h"

SPANK_PLUGIN(st_secrets, 1);

static char opt_keys[MAX_LIST];
static char opt_as[8];
/* The prolog's failure for this step's node, printed by each task. */
static char step_error[2048];

static int set_opt_keys(int val, const char *optarg, int remote);
static int set_opt_as(int val, const char *optarg, int remote);

static struct spank_option opt_secrets = {
    "st-secrets", "NAME[=KEY],...",
    "Secrets for the job's tasks, fetched on each node (st-secrets)", 1, 0, set_opt_keys};
static struct spank_option opt_secrets_as = {
    "st-secrets-as", "files|refs|env",
    "How the tasks get them: files (NAME_FILE, HF_TOKEN_PATH, ...), refs (NAME=st://KEY) or env", 1,
    0, set_opt_as};

/* ---------------------------------------------------------------- checks */

static int set_opt_keys(int val, const char *optarg, int remote)
{
    char why[256];
    (void)val;
    (void)remote;
    if (!optarg || strlen(optarg) >= sizeof(opt_keys) || !valid_list(optarg, why, sizeof(why))) {
        slurm_error("st-secrets: --st-secrets: %s", optarg ? why : "a list is required");
        return -1;
    }
    strcpy(opt_keys, optarg);
    return 0;
}

static int set_opt_as(int val, const char *optarg, int remote)
{
    (void)val;
    (void)remote;
    if (!optarg || (strcmp(optarg, "files") && strcmp(optarg, "refs") && strcmp(optarg, "env"))) {
        slurm_error("st-secrets: --st-secrets-as: '%s' is not one of files, refs, env",
                    optarg ? optarg : "");
        return -1;
    }
    strcpy(opt_as, optarg);
    return 0;
}

/* The prolog's failure, into the job's directory (open at `jd`) for its
 * steps. A record that could not be written whole reads as a failure too
 * (init_post_opt). */
static void record_error(int jd, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    slurm_error("st-secrets: %s", msg);
    unlinkat(jd, "error", 0);
    if (write_new_at(jd, "error", msg, strlen(msg), 0600))
        slurm_error("st-secrets: cannot record the job's failure for its steps: %s", strerror(errno));
}

/* ------------------------------------------------------------- the options */

/* What this job asks for: the site's keys, then the job's; and how. */
static int job_request(spank_t sp, const struct settings *s, char *keys, size_t n, char *as)
{
    char *arg = NULL;
    keys[0] = 0;
    strcpy(as, s->layout);
    if (s->keys[0])
        snprintf(keys, n, "%s", s->keys);
    /* The callbacks' values where Slurm called them (srun, sbatch,
     * slurmstepd); spank_option_getopt in the prolog and epilog. */
    if (*opt_keys)
        arg = opt_keys;
    else if (spank_option_getopt(sp, &opt_secrets, &arg) != ESPANK_SUCCESS)
        arg = NULL;
    /* The job's items after the site's, but for a variable the site's
     * list already names (the site's item wins). */
    for (const char *p = arg ? arg : ""; *p;) {
        size_t len = strcspn(p, ","), name = strcspn(p, "=,");
        int named = 0;
        for (const char *q = s->keys; *q && !named;) {
            size_t ql = strcspn(q, ","), qn = strcspn(q, "=,");
            named = qn == name && !strncmp(p, q, name);
            q += ql + (q[ql] == ',');
        }
        size_t used = strlen(keys);
        if (!named) {
            if (used + len + 2 > n)
                return -1;
            snprintf(keys + used, n - used, "%s%.*s", used ? "," : "", (int)len, p);
        }
        p += len + (p[len] == ',');
    }
    arg = NULL;
    if (*opt_as)
        snprintf(as, 8, "%s", opt_as);
    else if (spank_option_getopt(sp, &opt_secrets_as, &arg) == ESPANK_SUCCESS && arg && *arg)
        snprintf(as, 8, "%s", arg);
    return 0;
}

int slurm_spank_init(spank_t sp, int ac, char **av)
{
    spank_context_t ctx = spank_context();
    struct settings s;
    char why[512];
    if (ctx == S_CTX_LOCAL || ctx == S_CTX_ALLOCATOR || ctx == S_CTX_REMOTE) {
        if (spank_option_register(sp, &opt_secrets) != ESPANK_SUCCESS ||
            spank_option_register(sp, &opt_secrets_as) != ESPANK_SUCCESS)
            slurm_error("st-secrets: cannot register the job options");
    }
    if (parse_args(ac, av, &s, why, sizeof(why))) {
        slurm_error("st-secrets: %s", why);
        return -1;
    }
    return 0;
}

/* In srun, sbatch and salloc: refuse what the site does not allow before
 * the job is submitted. */
static int check_submission(int ac, char **av)
{
    struct settings s;
    char why[512];
    if (parse_args(ac, av, &s, why, sizeof(why)))
        return -1;
    if (!strcmp(opt_as, "env") && !s.env_allowed) {
        slurm_error("st-secrets: --st-secrets-as=env: this site keeps values out of the "
                    "environment (plugin argument env=deny)");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------- the prolog */

/* This node's place among the job's nodes, for the library's admission:
 * SLURM_NODEID and SLURM_NNODES from the job's node list. */
static void set_node_rank(void)
{
    const char *list = getenv("SLURM_NODELIST"); /* the prolog's name for the job's nodes */
    const char *node = getenv("SLURMD_NODENAME");
    if (!list || !node || getenv("SLURM_NODEID"))
        return;
    hostlist_t hl = slurm_hostlist_create(list);
    if (!hl)
        return;
    int index = slurm_hostlist_find(hl, node);
    int count = slurm_hostlist_count(hl);
    slurm_hostlist_destroy(hl);
    if (index >= 0 && count > 0) {
        char a[16], b[16];
        snprintf(a, sizeof(a), "%d", index);
        snprintf(b, sizeof(b), "%d", count);
        setenv("SLURM_NODEID", a, 1);
        setenv("SLURM_NNODES", b, 1);
    }
}

/* Fetches and writes the job's secrets into `dir` (open at `jd`, created,
 * root's): files/ is root's (mode 0750, the job's group: the user lists it
 * and adds nothing), each file root's and readable by the user alone.
 * Returns 0, or -1 with the reason recorded in dir/error. */
static int prepare(const struct settings *s, int jd, const char *dir, const char *keys, const char *as,
                   uid_t uid, gid_t gid)
{
    char path[PATH_MAX], files[PATH_MAX], why[512];
    st_secrets *m = NULL;
    st_error *err = NULL;
    st_buf *vars = NULL;
    int rc = -1, fd = -1;
    if (!s->config[0]) {
        record_error(jd, "the job names secrets (%s) but plugstack.conf gives no config=FILE", keys);
        return -1;
    }
    snprintf(path, sizeof(path), "%s/ledger", dir);
    snprintf(files, sizeof(files), "%s/files", dir);
    if (write_new_at(jd, "ledger", "", 0, 0600) || mkdirat(jd, "files", 0750) ||
        (fd = openat(jd, "files", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fchown(fd, 0, gid)) {
        record_error(jd, "cannot create the job's ledger or files in %s: %s", dir, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* Both paths run through root's directories only (dir=, the job's, its
     * files/): the library may name them. */
    setenv("SIMPLETUNER_JOB_LEDGER", path, 1);
    set_node_rank();
    if (!(m = site_manager(s, dir, why, sizeof(why)))) {
        record_error(jd, "%s", why);
        close(fd);
        return -1;
    }
    const char *layout = strcmp(as, "files") ? "refs" : "files";
    if (st_secrets_write_files(m, keys, files, layout, -1, -1, &vars, &err) != ST_OK) {
        record_error(jd, "%s", st_error_message(err));
        goto out;
    }
    if (hand_files(fd, uid, gid)) {
        record_error(jd, "cannot let the job's user read the files in %s: %s", files, strerror(errno));
        goto out;
    }
    /* vars: what init_post_opt sets; for env, the values are read there. */
    char head[MAX_LIST + 16];
    snprintf(head, sizeof(head), "%s\n%s\n", as, keys);
    size_t hl = strlen(head), vl = st_buf_len(vars);
    char *text = malloc(hl + vl);
    if (!text)
        goto out;
    memcpy(text, head, hl);
    memcpy(text + hl, st_buf_data(vars), vl);
    rc = write_new_at(jd, "vars", text, hl + vl, 0600);
    free(text);
    if (rc)
        record_error(jd, "cannot write %s/vars: %s", dir, strerror(errno));
out:
    close(fd);
    if (m)
        st_secrets_free(m);
    st_buf_free(vars);
    free_error(err);
    return rc;
}

int slurm_spank_job_prolog(spank_t sp, int ac, char **av)
{
    struct settings s;
    char why[512], keys[MAX_LIST], as[8], dir[DIR_MAX], name[300], paths[MAX_LIST];
    struct job_claims claims;
    uint32_t job = 0;
    uid_t uid;
    gid_t gid;
    if (parse_args(ac, av, &s, why, sizeof(why))) {
        slurm_error("st-secrets: %s", why);
        return 0; /* the steps fail with it (init_post_opt), the node stays up */
    }
    int too_long = job_request(sp, &s, keys, sizeof(keys), as);
    if (!too_long && !keys[0] && !s.token_key[0])
        return 0; /* with a job_token_key=, every job gets its token */
    if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS ||
        spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS ||
        spank_get_item(sp, S_JOB_GID, &gid) != ESPANK_SUCCESS || job_dir(&s, job, dir, sizeof(dir)) ||
        job_name(job, name, sizeof(name))) {
        slurm_error("st-secrets: the job's id or user is not known in the prolog");
        return 0;
    }
    int base = open_base(&s, 1, why, sizeof(why));
    if (base < 0) {
        slurm_error("st-secrets: %s", why);
        return 0;
    }
    remove_tree(base, name); /* a requeued job's, if its epilog never ran */
    int jd = -1;
    if (mkdirat(base, name, 0711) || (jd = open_job_dir(base, name)) < 0) {
        slurm_error("st-secrets: cannot create %s: %s", dir, strerror(errno));
        close(base);
        return 0;
    }
    if (too_long)
        record_error(jd, "the site's keys= and the job's --st-secrets together are longer than %d bytes: "
                         "name fewer secrets", MAX_LIST - 1);
    else if (!strcmp(as, "env") && !s.env_allowed)
        record_error(jd, "--st-secrets-as=env: this site keeps values out of the environment "
                         "(plugin argument env=deny)");
    else if (s.token_key[0] && mint_job_token(&s, jd, job, uid, gid, &claims, why, sizeof(why)))
        record_error(jd, "%s", why);
    else if (s.job_paths[0] && expand_paths(s.job_paths, &claims, paths, sizeof(paths), why, sizeof(why)))
        record_error(jd, "%s", why);
    else if (keys[0] && (!s.job_paths[0] || !setenv("SIMPLETUNER_VAULT_PATH", paths, 1)))
        prepare(&s, jd, dir, keys, as, uid, gid);
    close(jd);
    close(base);
    return 0;
}

/* ------------------------------------------------------- each step's setup */

/* Whether every item this step names (--st-secrets of an srun in the job)
 * is among those prepared for the job on this node (`list`, `n` bytes); if
 * not, the step's error names the first one missing. */
static int prepared_keys(spank_t sp, const char *list, size_t n)
{
    /* In slurmstepd the step's options reach the plugin through its
     * callback (set_opt_keys), not spank_option_getopt. */
    char *arg = opt_keys;
    if (!*arg && (spank_option_getopt(sp, &opt_secrets, &arg) != ESPANK_SUCCESS || !arg || !*arg))
        return 0;
    for (const char *p = arg; *p;) {
        size_t len = strcspn(p, ",");
        int found = 0;
        for (const char *q = list; q < list + n && !found;) {
            size_t ql = strcspn(q, ",\n");
            found = ql == len && !strncmp(p, q, len);
            q += ql + 1;
        }
        if (!found) {
            snprintf(step_error, sizeof(step_error),
                     "--st-secrets of this step names %.*s, which the job did not ask for when it "
                     "started on this node (its list: %.*s): give it to sbatch or salloc",
                     (int)len, p, (int)n, list);
            return -1;
        }
        p += len + (p[len] == ',');
    }
    return 0;
}

/* Sets the job's variables from its directory's vars (open at `jd`) in the
 * step's environment; for `env`, each secret's value read from its file.
 * With the site's job token (`dir`, the directory's path, given), its file
 * as SIMPLETUNER_JOB_TOKEN_FILE, and no vars when the job named no secret. */
static int set_step_env(spank_t sp, int jd, const char *dir)
{
    uid_t uid = 0;
    struct stat st;
    char path[PATH_MAX];
    if (spank_get_item(sp, S_JOB_UID, &uid) != ESPANK_SUCCESS)
        return -1;
    if (dir) {
        snprintf(path, sizeof(path), "%s/token", dir);
        if (fstatat(jd, "token", &st, AT_SYMLINK_NOFOLLOW) ||
            spank_setenv(sp, "SIMPLETUNER_JOB_TOKEN_FILE", path, 1) != ESPANK_SUCCESS)
            return -1;
    }
    char *text = read_small_at(jd, "vars", MAX_VARS, NULL, NULL);
    if (!text)
        return dir && fstatat(jd, "vars", &st, AT_SYMLINK_NOFOLLOW) && errno == ENOENT ? 0 : -1;
    char as[8] = "";
    const char *p = strchr(text, '\n');
    const char *keys_end = p ? strchr(p + 1, '\n') : NULL;
    if (!p || p - text >= (long)sizeof(as) || !keys_end) {
        free(text);
        return -1;
    }
    memcpy(as, text, (size_t)(p - text));
    if (prepared_keys(sp, p + 1, (size_t)(keys_end - p - 1))) {
        free(text);
        return -1;
    }
    p = keys_end;
    int env = !strcmp(as, "env"), rc = 0;
    char name[256], value[PATH_MAX + 256];
    while (strchr(p, '"')) {
        if (json_string(&p, name, sizeof(name)) || (p = strchr(p, ':')) == NULL ||
            json_string(&p, value, sizeof(value))) {
            rc = -1;
            break;
        }
        if (env && !strcmp(name, "SIMPLETUNER_SECRETS_DIRS"))
            continue;
        if (env && !strncmp(value, "st://", 5)) {
            size_t len = 0;
            char *secret = env_value(jd, value + 5, uid, &len);
            if (!secret) {
                snprintf(step_error, sizeof(step_error), "%s: its value cannot be an environment variable", name);
                rc = -1;
            } else if (spank_setenv(sp, name, secret, 1) != ESPANK_SUCCESS) {
                rc = -1;
            }
            if (secret) {
                explicit_bzero(secret, len);
                free(secret);
            }
            if (rc)
                break;
            continue;
        }
        if (spank_setenv(sp, name, value, 1) != ESPANK_SUCCESS) {
            rc = -1;
            break;
        }
    }
    free(text);
    return rc;
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
    struct settings s;
    char why[512], dir[DIR_MAX], name[300];
    uint32_t job = 0;
    spank_context_t ctx = spank_context();
    if (ctx == S_CTX_LOCAL || ctx == S_CTX_ALLOCATOR)
        return check_submission(ac, av);
    if (ctx != S_CTX_REMOTE)
        return 0;
    if (parse_args(ac, av, &s, why, sizeof(why))) {
        snprintf(step_error, sizeof(step_error), "%s", why);
        return 0;
    }
    if (spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS || job_dir(&s, job, dir, sizeof(dir)) ||
        job_name(job, name, sizeof(name)))
        return 0;
    int base = open_base(&s, 0, why, sizeof(why));
    int jd = base < 0 ? -1 : open_job_dir(base, name), failed = errno;
    if (base >= 0)
        close(base);
    if (jd < 0) {
        /* No directory: the job named nothing, unless this step does (the
         * batch step never sees sbatch's options; srun's steps do), or the
         * prolog could not make it (dir= refused: the reason, as the
         * prolog's, is dir='s state, checked again here). */
        char keys[MAX_LIST], as[8];
        int asked = !job_request(sp, &s, keys, sizeof(keys), as) && keys[0];
        if (base >= 0 && failed != ENOENT)
            snprintf(step_error, sizeof(step_error), "cannot open the job's directory %s: %s", dir,
                     strerror(failed));
        else if (asked && base < 0)
            snprintf(step_error, sizeof(step_error), "the secrets %s could not be prepared on this node: %s",
                     keys, why);
        else if (asked)
            snprintf(step_error, sizeof(step_error),
                     "the secrets %s were not prepared on this node (%s missing: is the plugin in this "
                     "node's plugstack.conf?)", keys, dir);
        return 0;
    }
    /* A record of the prolog's failure, whole or not (a full dir= leaves
     * it empty or cut short): the step fails. */
    size_t len = 0;
    struct stat st;
    char *error = read_small_at(jd, "error", sizeof(step_error) - 1, &len, NULL);
    if (error && len) {
        snprintf(step_error, sizeof(step_error), "%s", error);
    } else if (error || fstatat(jd, "error", &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT) {
        snprintf(step_error, sizeof(step_error),
                 "the prolog failed on this node and its reason could not be recorded in %s/error (is "
                 "plugin argument dir= full?): see the node's slurmd log", dir);
    } else if (set_step_env(sp, jd, s.token_key[0] ? dir : NULL)) {
        if (!step_error[0])
            snprintf(step_error, sizeof(step_error), "cannot read the job's variables in %s", dir);
    } else {
        uid_t uid = 0;
        gid_t gid = 0;
        if (spank_get_item(sp, S_JOB_UID, &uid) == ESPANK_SUCCESS &&
            spank_get_item(sp, S_JOB_GID, &gid) == ESPANK_SUCCESS)
            start_renewal(&s, jd, dir, job, uid, gid);
    }
    free(error);
    close(jd);
    return 0;
}

int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
    (void)sp;
    (void)ac;
    (void)av;
    if (!step_error[0])
        return 0;
    fprintf(stderr, "st-secrets: %s\n", step_error);
    fflush(stderr);
    return -1;
}

/* ---------------------------------------------------------- the job's end */

/* Set when a task of this step ended by a signal: the job may be ending
 * (scancel, the time limit), which the step's end asks slurmctld; and when
 * a task ended at all (a step whose tasks never started, cancelled while it
 * launched them, asks too). */
static int task_signalled, task_exited;

/* A task's end (slurmstepd, root): the first a signal ended, while
 * slurmctld ends the job (scancel, the time limit), revokes at once, before
 * slurmstepd tells srun of the task's end (srun gone, that takes seconds). */
int slurm_spank_task_exit(spank_t sp, int ac, char **av)
{
    struct settings s;
    char why[512];
    uint32_t job = 0;
    int status = 0;
    task_exited = 1;
    if (task_signalled || spank_get_item(sp, S_TASK_EXIT_STATUS, &status) != ESPANK_SUCCESS ||
        !WIFSIGNALED(status))
        return 0;
    task_signalled = 1;
    if (!parse_args(ac, av, &s, why, sizeof(why)) && !job_of(sp, &s, &job) && job_over(job)) {
        stop_renewal();
        end_job(&s, job, "at the end of its signalled task", 0);
    }
    return 0;
}

/* The end of a step (slurmstepd, root): the batch step's end is the job's,
 * and so is a step's whose tasks were signalled, or never started, while
 * slurmctld ends the job, asked again (it may have been running at the
 * task's end).
 * Neither waits for the epilog, which Slurm runs after a pause for the
 * job's steps. */
int slurm_spank_exit(spank_t sp, int ac, char **av)
{
    struct settings s;
    char why[512];
    uint32_t job = 0, step = 0;
    if (spank_context() == S_CTX_REMOTE)
        stop_renewal();
    if (spank_context() != S_CTX_REMOTE || parse_args(ac, av, &s, why, sizeof(why)) ||
        spank_get_item(sp, S_JOB_STEPID, &step) != ESPANK_SUCCESS || job_of(sp, &s, &job))
        return 0;
    if (step == SLURM_BATCH_SCRIPT)
        end_job(&s, job, "at the end of its batch step", 0);
    else if (step == SLURM_EXTERN_CONT)
        end_job(&s, job, "at the end of its extern step", 0);
    else if ((task_signalled || !task_exited) && job_over(job))
        end_job(&s, job, task_exited ? "at the end of its signalled step" : "at the end of its cancelled step", 0);
    return 0;
}

/* The backstop, however the job ended: a node's slurmd restarted, a job
 * with no batch step (salloc), a step's revocation that failed. */
int slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
    struct settings s;
    char why[512];
    uint32_t job = 0;
    if (!parse_args(ac, av, &s, why, sizeof(why)) && !job_of(sp, &s, &job))
        end_job(&s, job, "in the epilog", 120);
    return 0;
}
