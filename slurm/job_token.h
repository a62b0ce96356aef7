/* The job's own token: a JWT the site signs for each job from slurmctld's
 * record of it (never from the job's environment), delivered in the job's
 * directory as `token` (root's, readable by the job's user alone), the
 * identity the job's reads log in with, and renewed by each step's
 * slurmstepd before it ends. Slurm's API and the library's; see
 * docs/job-token.md. */
#ifndef ST_SECRETS_SPANK_JOB_TOKEN_H
#define ST_SECRETS_SPANK_JOB_TOKEN_H

#include <stdint.h>
#include <sys/types.h>

#include "settings.h"

#pragma GCC visibility push(hidden)

/* Mints the job's token into the job's directory (open at `jd`) as `token`
 * for the job's user (uid, gid), and one for each job_token_audience.NAME=
 * as token.NAME, its claims into *claims when not NULL; 0, or -1 with why
 * (never a value). */
int mint_job_token(const struct settings *s, int jd, uint32_t job, uid_t uid, gid_t gid,
                   struct job_claims *claims, char *why, size_t n);
/* Starts this slurmstepd's renewal of the job's token (once; a copy of
 * `s`, `jd` duplicated): a new one when half the lifetime of the one in the
 * directory has passed, the first check a few seconds on. With it, the
 * files of the job's short-lived credentials (a token exchange's, in the
 * job's directory `dir`) are rewritten as the library renews them, with
 * the site's manager made here (main thread: it sets the library's
 * variables). Nothing starts when there is neither. */
void start_renewal(const struct settings *s, int jd, const char *dir, uint32_t job, uid_t uid, gid_t gid);
/* Stops it and waits for it (at the step's end). */
void stop_renewal(void);

#pragma GCC visibility pop

#endif
