/* The job's end, and the library's manager for the site: see ending.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "st_secrets.h"
#include "ending.h"

void free_error(st_error *e)
{
    if (e)
        st_error_free(e);
}

st_secrets *site_manager(const struct settings *s, const char *dir, char *why, size_t n)
{
    st_secrets *m = NULL;
    st_error *err = NULL;
    char path[PATH_MAX];
    char *config = read_root_file("config", s->config, why, n);
    if (!config)
        return NULL;
    if (strstr(config, "\"node_cache_dir\"")) {
        snprintf(why, n, "plugin argument config=%s sets node_cache_dir: the plugin keeps a job's node cache in "
                 "the job's own directory (removed at its end); remove it", s->config);
    } else if (s->job_paths[0] && strstr(config, "\"vault_path\"")) {
        snprintf(why, n, "plugin argument config=%s sets vault_path, which would hide job_paths=: remove it",
                 s->config);
    } else if (!load_environment(s, why, n)) {
        setenv("SIMPLETUNER_NODE_CACHE", "1", 1);
        snprintf(path, sizeof(path), "%s/node-cache", dir);
        setenv("SIMPLETUNER_NODE_CACHE_DIR", path, 1);
        if (s->token_key[0]) {
            snprintf(path, sizeof(path), "%s/token", dir);
            setenv("SIMPLETUNER_JOB_TOKEN_FILE", path, 1);
        }
        if (st_secrets_new(config, &m, &err) != ST_OK)
            snprintf(why, n, "plugin argument config=%s: %s", s->config, st_error_message(err));
        free_error(err);
    }
    explicit_bzero(config, strlen(config));
    free(config);
    return m;
}

void end_job(const struct settings *s, uint32_t job, const char *when, int wait)
{
    char why[512], ledger[PATH_MAX], dir[DIR_MAX], name[300];
    struct stat st;
    int base = -1, jd = -1;
    if (job_dir(s, job, dir, sizeof(dir)) || job_name(job, name, sizeof(name)) ||
        (base = open_base(s, 0, why, sizeof(why))) < 0 || (jd = open_job_dir(base, name)) < 0) {
        if (base >= 0)
            close(base);
        return;
    }
    snprintf(ledger, sizeof(ledger), "%s/ledger", dir);
    int fd = openat(jd, "ledger", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    close(jd);
    if (fd >= 0 && lock_within(fd, wait)) {
        close(fd); /* another step's end is revoking it, and removes the directory */
        close(base);
        return;
    }
    int listed = fd >= 0 && !fstat(fd, &st) && S_ISREG(st.st_mode) && st.st_size > 0;
    if ((listed || s->token_key[0]) && s->config[0]) {
        /* With the job's own token, its entity is disabled even when this node
         * logged in for nothing: a copy of the token is refused from now on. */
        st_secrets *m = site_manager(s, dir, why, sizeof(why));
        if (s->token_key[0])
            setenv("SIMPLETUNER_VAULT_DISABLE_JOB_ENTITY", "1", 1);
        st_error *err = NULL;
        st_buf *report = NULL;
        if (!m) {
            slurm_error("st-secrets: job %u: nothing revoked %s: %s", job, when, why);
        } else if (st_secrets_revoke_ledger(m, ledger, &report, &err) != ST_OK) {
            slurm_error("st-secrets: job %u: nothing revoked %s: %s", job, when, st_error_message(err));
        } else {
            const char *r = (const char *)st_buf_data(report);
            if (strstr(r, "\"failed\":[]"))
                slurm_info("st-secrets: job %u: revoked %s: %s", job, when, r);
            else
                slurm_error("st-secrets: job %u: not all revoked %s: %s", job, when, r);
        }
        unsetenv("SIMPLETUNER_VAULT_DISABLE_JOB_ENTITY");
        if (m)
            st_secrets_free(m);
        st_buf_free(report);
        free_error(err);
    }
    if (remove_tree(base, name))
        slurm_error("st-secrets: job %u: %s not wholly removed %s", job, dir, when);
    close(base);
    if (fd >= 0)
        close(fd);
}

int job_of(spank_t sp, const struct settings *s, uint32_t *job)
{
    char why[512], name[300];
    if (spank_get_item(sp, S_JOB_ID, job) != ESPANK_SUCCESS || job_name(*job, name, sizeof(name)))
        return -1;
    int base = open_base(s, 0, why, sizeof(why));
    int jd = base < 0 ? -1 : open_job_dir(base, name);
    if (jd >= 0)
        close(jd);
    if (base >= 0)
        close(base);
    return jd < 0 ? -1 : 0;
}

job_info_msg_t *load_job(uint32_t job, slurm_job_info_t **record)
{
    job_info_msg_t *msg = NULL;
    *record = NULL;
    if (slurm_load_job(&msg, job, SHOW_ALL) != SLURM_SUCCESS || !msg)
        return NULL;
    for (uint32_t i = 0; i < msg->record_count; i++)
        if (msg->job_array[i].job_id == job)
            *record = &msg->job_array[i];
    return msg;
}

int job_over(uint32_t job)
{
    slurm_job_info_t *j;
    job_info_msg_t *msg = load_job(job, &j);
    if (!msg) {
        slurm_info("st-secrets: job %u: slurmctld not asked whether the job is over: %s", job,
                   slurm_strerror(slurm_get_errno()));
        return 0;
    }
    int over = j && ((j->job_state & JOB_STATE_BASE) != JOB_RUNNING || (j->job_state & JOB_COMPLETING));
    slurm_free_job_info_msg(msg);
    return over;
}
