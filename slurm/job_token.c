/* The job's own token: see job_token.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "st_secrets.h"
#include "ending.h"
#include "job_token.h"

/* Whether `v` may go between JSON quotes as it is: the library refuses a
 * claim that is not a plain name anyway; this keeps the request whole. */
static int plain(const char *v)
{
    if (!v || !*v)
        return 0;
    for (const unsigned char *c = (const unsigned char *)v; *c; c++)
        if (*c == '"' || *c == '\\' || *c < 0x20 || *c == 0x7f)
            return 0;
    return 1;
}

/* The job part of the library's mint requests for `job` ("job":{...}),
 * every claim from slurmctld's record of it and the user's name from the
 * node's user database; 0, or -1 with why. */
static int job_part(uint32_t job, struct job_claims *c, char *out, size_t n, char *why, size_t wn)
{
    slurm_job_info_t *j;
    job_info_msg_t *msg = load_job(job, &j);
    if (!msg) {
        snprintf(why, wn, "the job's record could not be read from slurmctld: %s",
                 slurm_strerror(slurm_get_errno()));
        return -1;
    }
    int rc = -1;
    char pwbuf[4096], task[40] = "", qos[320] = "", end[48] = "";
    struct passwd pw, *found = NULL;
    const char *what = NULL;
    if (!j)
        what = "record";
    else if (getpwuid_r(j->user_id, &pw, pwbuf, sizeof(pwbuf), &found) || !found || !plain(pw.pw_name))
        what = "user's name";
    else if (!plain(j->cluster))
        what = "cluster";
    else if (!plain(j->account))
        what = "account (is accounting on?)";
    else if (!plain(j->partition))
        what = "partition";
    else if (j->qos && *j->qos && !plain(j->qos))
        what = "QOS";
    if (what) {
        snprintf(why, wn, "job %u: slurmctld's record gives no plain %s for the job's token", job, what);
        goto out;
    }
    snprintf(c->user, sizeof(c->user), "%s", pw.pw_name);
    snprintf(c->account, sizeof(c->account), "%s", j->account);
    snprintf(c->partition, sizeof(c->partition), "%s", j->partition);
    snprintf(c->cluster, sizeof(c->cluster), "%s", j->cluster);
    snprintf(c->qos, sizeof(c->qos), "%s", j->qos ? j->qos : "");
    uint32_t id = j->job_id;
    if (j->array_task_id != NO_VAL && j->array_job_id) {
        id = j->array_job_id;
        snprintf(task, sizeof(task), ",\"array_task_id\":%u", j->array_task_id);
    }
    if (j->qos && *j->qos)
        snprintf(qos, sizeof(qos), ",\"qos\":\"%s\"", j->qos);
    if (j->time_limit != INFINITE && j->time_limit != NO_VAL && j->end_time > 0)
        snprintf(end, sizeof(end), ",\"end\":%lld", (long long)j->end_time);
    int len = snprintf(out, n,
                       "\"job\":{\"cluster\":\"%s\",\"job_id\":%u%s,\"run\":%u,\"user\":\"%s\",\"uid\":%u,"
                       "\"account\":\"%s\",\"partition\":\"%s\"%s%s}",
                       j->cluster, id, task, (unsigned)j->restart_cnt, pw.pw_name,
                       (unsigned)j->user_id, j->account, j->partition, qos, end);
    if (len > 0 && (size_t)len < n)
        rc = 0;
    else
        snprintf(why, wn, "job %u: the job's claims are too long for its token", job);
out:
    slurm_free_job_info_msg(msg);
    return rc;
}

/* Mints one token of the job (its claims `job`) for `audience`, living
 * `lifetime` seconds (never past the job's end), into the directory as
 * `name`; 0, or -1 with why. */
static int mint_one(const struct settings *s, int jd, const char *job, const char *audience, long lifetime,
                    const char *name, uid_t uid, gid_t gid, char *why, size_t n)
{
    char request[4608];
    st_buf *token = NULL;
    st_error *err = NULL;
    int len = snprintf(request, sizeof(request), "{\"issuer\":\"%s\",\"audience\":\"%s\",\"lifetime\":%ld,%s}",
                       s->token_issuer, audience, lifetime, job);
    if (len < 0 || (size_t)len >= sizeof(request)) {
        snprintf(why, n, "the job's claims are too long for its token");
        return -1;
    }
    int rc = -1;
    if (st_job_token_mint(s->token_key, request, &token, &err) != ST_OK)
        snprintf(why, n, "the job's token for %s (plugin argument job_token_key=%s): %s", audience, s->token_key,
                 st_error_message(err));
    else if (replace_for_user(jd, name, (const char *)st_buf_data(token), st_buf_len(token), uid, gid))
        snprintf(why, n, "cannot write the job's %s: %s", name, strerror(errno));
    else
        rc = 0;
    st_buf_free(token); /* zeroed */
    free_error(err);
    return rc;
}

int mint_job_token(const struct settings *s, int jd, uint32_t job, uid_t uid, gid_t gid,
                   struct job_claims *claims, char *why, size_t n)
{
    char part[4096], name[8 + MAX_AUDIENCE_NAME];
    struct job_claims own;
    if (!plain(s->token_issuer) || !plain(s->token_audience)) {
        snprintf(why, n, "plugin arguments job_token_issuer and job_token_audience must be plain text");
        return -1;
    }
    for (int e = 0; e < s->n_extra; e++)
        if (!plain(s->extra[e].audience)) {
            snprintf(why, n, "plugin argument job_token_audience.%s must be plain text", s->extra[e].name);
            return -1;
        }
    if (job_part(job, claims ? claims : &own, part, sizeof(part), why, n))
        return -1;
    /* The other audiences' first: `token` written last, its time the one
     * the renewal goes by. */
    for (int e = 0; e < s->n_extra; e++) {
        snprintf(name, sizeof(name), "token.%s", s->extra[e].name);
        if (mint_one(s, jd, part, s->extra[e].audience, s->extra[e].lifetime, name, uid, gid, why, n))
            return -1;
    }
    return mint_one(s, jd, part, s->token_audience, s->token_lifetime, "token", uid, gid, why, n);
}

/* ------------------------------------------------------------ the renewal */

/* One renewal per slurmstepd: what it renews, and its stop. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    int running, stop;
    struct settings s;
    int jd;
    uint32_t job;
    uid_t uid;
    gid_t gid;
    /* The job's files of short-lived credentials (a token exchange's): the
     * site's manager, the job's list and layout, files/'s path, and when to
     * look at them next (0: never). */
    st_secrets *m;
    char keys[MAX_LIST], layout[8], files[DIR_MAX + 8];
    time_t files_at;
} renewal = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

/* Waits until `when` (Unix seconds) or the stop; 1 when stopped. */
static int wait_until(time_t when)
{
    struct timespec at = {when, 0};
    pthread_mutex_lock(&renewal.lock);
    while (!renewal.stop && time(NULL) < when)
        if (pthread_cond_timedwait(&renewal.wake, &renewal.lock, &at) == ETIMEDOUT)
            break;
    int stop = renewal.stop;
    pthread_mutex_unlock(&renewal.lock);
    return stop;
}

/* When the tokens in the directory are due: half the shortest lifetime
 * after `token` (written last) was written (now when it is missing); never
 * without a job_token_key=. */
static time_t due(void)
{
    struct stat st;
    if (!renewal.s.token_key[0])
        return (time_t)INT64_MAX;
    long shortest = renewal.s.token_lifetime;
    for (int e = 0; e < renewal.s.n_extra; e++)
        if (renewal.s.extra[e].lifetime < shortest)
            shortest = renewal.s.extra[e].lifetime;
    if (fstatat(renewal.jd, "token", &st, AT_SYMLINK_NOFOLLOW))
        return time(NULL);
    return st.st_mtime + shortest / 2;
}

/* Rewrites the job's files whose credentials the library renewed
 * (st_secrets_refresh_files: each atomically, with the ACL of the one it
 * replaces) and sets when to look again from its answer; 0, or -1 with
 * why. */
static int refresh_files(char *why, size_t n)
{
    st_buf *out = NULL;
    st_error *err = NULL;
    if (st_secrets_refresh_files(renewal.m, renewal.keys, renewal.files, renewal.layout, &out, &err) != ST_OK) {
        snprintf(why, n, "its files not refreshed: %s", st_error_message(err));
        free_error(err);
        return -1;
    }
    const char *at = strstr(st_buf_str(out), "\"next_in\":");
    long in = at ? strtol(at + 10, NULL, 10) : 0;
    renewal.files_at = in > 0 ? time(NULL) + in : 0; /* null: nothing short-lived */
    st_buf_free(out);
    return 0;
}

/* Renews the token when due, and rewrites the files of short-lived
 * credentials when due, the directory's lock held so that the other
 * steps' slurmstepd on the node (each has a renewal) skip it; a failure
 * (slurmctld away, the user's privileges in force a moment, a token
 * endpoint away) is said in slurmd's log and tried again 10 s on, until
 * the step ends. */
static void *renew(void *unused)
{
    (void)unused;
    time_t next = time(NULL) + 5; /* past the step's forks of its tasks */
    int said = 0;
    while (!wait_until(next)) {
        time_t at = due();
        if (renewal.files_at && renewal.files_at < at)
            at = renewal.files_at;
        if (at > time(NULL)) {
            next = at < time(NULL) + 3600 ? at : time(NULL) + 3600;
            continue;
        }
        char why[1024] = "";
        if (flock(renewal.jd, LOCK_EX | LOCK_NB)) {
            next = time(NULL) + 1;
            continue;
        }
        int rc = due() > time(NULL) ? 0
                 : mint_job_token(&renewal.s, renewal.jd, renewal.job, renewal.uid, renewal.gid, NULL, why,
                                  sizeof(why));
        if (!rc && renewal.files_at && renewal.files_at <= time(NULL))
            rc = refresh_files(why, sizeof(why));
        flock(renewal.jd, LOCK_UN);
        if (rc && !said++)
            slurm_error("st-secrets: job %u: (tried again every 10 s): %s", renewal.job, why);
        if (!rc)
            said = 0;
        next = time(NULL) + (rc ? 10 : 1);
    }
    return NULL;
}

/* The job's list and layout from its vars (open at `jd`: "AS\nKEYS\n..."),
 * and the site's manager for its files; 0 when there are none to keep. */
static int files_to_keep(const struct settings *s, int jd, const char *dir)
{
    char why[512], ledger[DIR_MAX + 8], *text = read_small_at(jd, "vars", MAX_VARS, NULL, NULL);
    const char *keys = text ? strchr(text, '\n') : NULL;
    size_t kl = keys ? strcspn(keys + 1, "\n") : 0;
    int ok = keys && kl && kl < sizeof(renewal.keys) &&
             snprintf(renewal.files, sizeof(renewal.files), "%s/files", dir) < (int)sizeof(renewal.files);
    if (ok) {
        snprintf(renewal.layout, sizeof(renewal.layout), "%s", strncmp(text, "files\n", 6) ? "refs" : "files");
        memcpy(renewal.keys, keys + 1, kl);
        renewal.keys[kl] = 0;
        /* A login an exchange makes (an OpenBao subject) goes to the job's
         * ledger, revoked at its end as the prolog's are. */
        snprintf(ledger, sizeof(ledger), "%s/ledger", dir);
        setenv("SIMPLETUNER_JOB_LEDGER", ledger, 1);
        if (!(renewal.m = site_manager(s, dir, why, sizeof(why)))) {
            slurm_error("st-secrets: the job's files will not be refreshed: %s", why);
            ok = 0;
        }
    }
    free(text);
    return ok;
}

void start_renewal(const struct settings *s, int jd, const char *dir, uint32_t job, uid_t uid, gid_t gid)
{
    if (renewal.running)
        return;
    renewal.s = *s;
    renewal.job = job;
    renewal.uid = uid;
    renewal.gid = gid;
    renewal.stop = 0;
    /* The first look at the files with the token's: they are left as they
     * are until a credential is another. */
    renewal.files_at = files_to_keep(s, jd, dir) ? time(NULL) + 5 : 0;
    if ((!renewal.files_at && !s->token_key[0]) || (renewal.jd = fcntl(jd, F_DUPFD_CLOEXEC, 0)) < 0)
        goto none;
    int e = pthread_create(&renewal.thread, NULL, renew, NULL);
    if (e) {
        close(renewal.jd);
        slurm_error("st-secrets: job %u: its token's renewal did not start: %s", job, strerror(e));
        goto none;
    }
    renewal.running = 1;
    return;
none:
    if (renewal.m)
        st_secrets_free(renewal.m);
    renewal.m = NULL;
}

void stop_renewal(void)
{
    if (!renewal.running)
        return;
    pthread_mutex_lock(&renewal.lock);
    renewal.stop = 1;
    pthread_cond_signal(&renewal.wake);
    pthread_mutex_unlock(&renewal.lock);
    pthread_join(renewal.thread, NULL);
    close(renewal.jd);
    if (renewal.m)
        st_secrets_free(renewal.m);
    renewal.m = NULL;
    renewal.running = 0;
}
