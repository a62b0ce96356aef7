/* The library's manager for the site, and the job's end on a node: its
 * ledger revoked and its directory removed. Slurm's API and the library's. */
#ifndef ST_SECRETS_SPANK_ENDING_H
#define ST_SECRETS_SPANK_ENDING_H

#include <stdint.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "st_secrets.h"
#include "settings.h"

#pragma GCC visibility push(hidden)

void free_error(st_error *e);
/* The library's manager for the job whose directory is `dir`: plugin
 * argument config='s file, read after environment='s variables are set; the
 * node cache on (unless config= turns it off) in the job's directory
 * (removed with it; a config= naming node_cache_dir is refused), so that
 * the prolog and each step's renewal share one credential; the job's
 * token (SIMPLETUNER_JOB_TOKEN_FILE) the identity a jwt login sends when
 * the site mints one. NULL with why. */
st_secrets *site_manager(const struct settings *s, const char *dir, char *why, size_t n);
/* Revokes what the job's ledger lists, then removes the job's directory on
 * this node. Whoever holds the ledger's lock is revoking it: `wait` seconds
 * for it (the epilog, which must not remove what another is reading), else
 * none. `when` is said in slurmd's log. */
void end_job(const struct settings *s, uint32_t job, const char *when, int wait);
/* The job, if the prolog made this node a directory for it (root's); 0, or
 * -1. */
int job_of(spank_t sp, const struct settings *s, uint32_t *job);
/* slurmctld's record of `job` (*record, NULL when it has none) in the
 * message to free with slurm_free_job_info_msg; NULL when it cannot be
 * asked. */
job_info_msg_t *load_job(uint32_t job, slurm_job_info_t **record);
/* Whether slurmctld says the job is over (cancelled, timed out,
 * completing); not when it cannot be asked (said in slurmd's log: the
 * epilog follows). */
int job_over(uint32_t job);

#pragma GCC visibility pop

#endif
