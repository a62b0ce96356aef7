/* The plugin's arguments (its plugstack.conf line): parsed and checked,
 * and the Vault paths of job_paths= expanded with a job's claims. See
 * settings.h. */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
