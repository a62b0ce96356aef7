/* fork() while other threads use the library, as launchers do (DataLoader
   workers, multiprocessing's fork start method, Gunicorn): 100 children are
   forked while 4 threads of the parent use a cache, a file-backed manager, the
   default manager and a Vault provider against a local server that answers
   slowly (so fetches are in flight at the forks). Every child must
   finish every call within its alarm, with the right answers, and the server
   must never see a garbled request (parent and children sharing one pooled
   connection interleave their requests on the wire). Each child also reads
   and writes a store the parent opened and used before the fork.

   The server is a small HTTP responder in this process, not OpenBao: it is
   the fault needed on demand (every answer 5 ms late, every request checked
   byte for byte); docs/testing.md lists it among the fake servers. */
#define _XOPEN_SOURCE 700
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <strings.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include "secrets_util.h"

#define THREADS 4

static atomic_int stop_threads;
static atomic_long bad_requests;
static atomic_long good_requests;
static int listen_fd;
static int port;

/* ---- the server: KV v2 reads of any path, 5 ms late; anything else 404 ---- */

static int read_line(int fd, char *buf, size_t cap) {
  size_t n = 0;
  while (n + 1 < cap) {
    char c;
    ssize_t r = recv(fd, &c, 1, 0);
    if (r <= 0) return -1;
    buf[n++] = c;
    if (c == '\n') break;
  }
  buf[n] = 0;
  return (n >= 2 && buf[n - 2] == '\r' && buf[n - 1] == '\n') ? (int)n : -2;
}

static void *serve_connection(void *arg) {
  int fd = (int)(long)arg;
  char line[2048];
  for (;;) {
    int n = read_line(fd, line, sizeof line);
    if (n == -1) break; /* closed */
    char method[8], path[1024], version[16];
    if (n < 0 || sscanf(line, "%7s %1023s %15s", method, path, version) != 3 ||
        strcmp(version, "HTTP/1.1") != 0 || strncmp(path, "/v1/", 4) != 0) {
      atomic_fetch_add(&bad_requests, 1);
      break;
    }
    long body = 0;
    int ok = 1;
    for (;;) {
      n = read_line(fd, line, sizeof line);
      if (n < 0) {
        ok = 0;
        break;
      }
      if (n == 2) break; /* end of headers */
      if (!strchr(line, ':')) {
        ok = 0;
        break;
      }
      if (strncasecmp(line, "content-length:", 15) == 0) body = atol(line + 15);
    }
    if (!ok) {
      atomic_fetch_add(&bad_requests, 1);
      break;
    }
    for (long i = 0; i < body; i++) {
      char c;
      if (recv(fd, &c, 1, 0) != 1) break;
    }
    sleep_ms(5);
    const char *payload = strstr(path, "/data/")
                              ? "{\"data\":{\"data\":{\"FORK_KEY\":\"from-vault\"},"
                                "\"metadata\":{\"version\":1}}}"
                              : "{\"errors\":[]}";
    int status = strstr(path, "/data/") ? 200 : 404;
    char response[512];
    int len = snprintf(response, sizeof response,
                       "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
                       "Content-Length: %zu\r\n\r\n%s",
                       status, strlen(payload), payload);
    if (send(fd, response, (size_t)len, MSG_NOSIGNAL) != len) break;
    atomic_fetch_add(&good_requests, 1);
  }
  close(fd);
  return NULL;
}

static void *accept_loop(void *arg) {
  (void)arg;
  for (;;) {
    int fd = accept(listen_fd, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR) continue;
      return NULL; /* closed: the test is over */
    }
    pthread_t t;
    if (pthread_create(&t, NULL, serve_connection, (void *)(long)fd) == 0)
      pthread_detach(t);
    else
      close(fd);
  }
}

static pthread_t start_server(void) {
  listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  CHECK(listen_fd >= 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(bind(listen_fd, (struct sockaddr *)&a, sizeof a) == 0);
  CHECK(listen(listen_fd, 256) == 0);
  socklen_t alen = sizeof a;
  CHECK(getsockname(listen_fd, (struct sockaddr *)&a, &alen) == 0);
  port = ntohs(a.sin_port);
  pthread_t t;
  CHECK(pthread_create(&t, NULL, accept_loop, NULL) == 0);
  return t;
}

/* ---- what the threads and the children use ---- */

static st_cache *cache;
static st_secrets *file_manager;
static st_secrets *vault_manager;
static st_store *store;

static st_result compute(void *user, const char *key, st_sink *sink) {
  (void)user;
  return st_sink_write(sink, (const uint8_t *)key, strlen(key));
}

static int in_child;
/* What a child is doing, for the message when its alarm goes off. */
static const char *volatile stage = "start";

static void on_alarm(int sig) {
  (void)sig;
  const char *s = stage;
  (void)!write(2, "child hung in: ", 15);
  (void)!write(2, s, strlen(s));
  (void)!write(2, "\n", 1);
  if (getenv("ST_TEST_HANG_PAUSE")) pause(); /* attach a debugger to the hung child */
  signal(SIGALRM, SIG_DFL);
  raise(SIGALRM);
}

#define STAGE(name) (stage = (name))

/* Counts a wrong answer; a child says which. */
#define WRONG(what)                                                      \
  do {                                                                   \
    wrong++;                                                             \
    if (in_child) fprintf(stderr, "child %d: wrong: %s\n", who, what);   \
  } while (0)

/* One round of every kind of call but the store's; returns how many answers
   were wrong. */
static int one_round(int who, int i) {
  int wrong = 0;
  char key[32];
  snprintf(key, sizeof key, "k%d", i % 8);
  st_buf *b = NULL;
  STAGE("st_cache_set");
  if (st_cache_set(cache, key, (const uint8_t *)"v", 1, -1, NULL) != ST_OK) WRONG("cache set");
  STAGE("st_cache_get");
  if (st_cache_get(cache, key, &b, NULL) == ST_OK) st_buf_free(b);
  b = NULL;
  snprintf(key, sizeof key, "c%d-%d", who, i % 16);
  STAGE("st_cache_delete");
  st_cache_delete(cache, key);
  STAGE("st_cache_get_or_set");
  if (st_cache_get_or_set(cache, key, compute, NULL, 0.05, &b, NULL) != ST_OK) WRONG("get_or_set");
  st_buf_free(b);
  STAGE("file manager get");
  if (!value_is(file_manager, "FILE_KEY", "from-file")) WRONG("file");
  STAGE("default manager get");
  if (!value_is(NULL, "ST_FORK_ENV", "from-env")) WRONG("default manager");
  STAGE("vault manager get");
  st_result rc = ST_OK;
  const char *v = value_of(vault_manager, "FORK_KEY", &rc);
  if (!v || strcmp(v, "from-vault") != 0) {
    WRONG("vault");
    if (in_child) fprintf(stderr, "  %s\n", st_result_name((int)rc));
  }
  return wrong;
}

/* Scaled down (under valgrind, which runs one thread at a time): the
   workers pause between rounds so the server in this process answers the
   children in time. */
static int scaled;

static void *worker(void *arg) {
  int who = (int)(long)arg;
  for (int i = 0; !atomic_load(&stop_threads); i++) {
    if (scaled) sleep_ms(2);
    switch (who) {
      case 0: one_round(who, i); break;
      case 1: st_secrets_clear_cache(file_manager); value_is(file_manager, "FILE_KEY", NULL); break;
      case 2: st_secrets_clear_cache(vault_manager); value_is(vault_manager, "FORK_KEY", NULL); break;
      default: one_round(who, i);
    }
  }
  return NULL;
}

static void child(int n) {
  signal(SIGALRM, on_alarm);
  alarm(scaled ? 300 : 30); /* a hang is a SIGALRM death */
  in_child = 1;
  int who = n, wrong = 0;
  for (int i = 0; i < 3; i++) wrong += one_round(100 + n, i);
  /* The store the parent opened (and used, but not at the fork): the child
     reads and writes it over a connection of its own. */
  st_buf *b = NULL;
  STAGE("store read");
  if (st_store_get_provider_config(store, "forked", &b, NULL) != ST_OK) WRONG("store read");
  st_buf_free(b);
  st_error *err = NULL;
  STAGE("store write");
  if (st_store_save_provider_config(store, "forked", "{\"child\": true}", &err) != ST_OK) {
    WRONG("store write");
    fprintf(stderr, "  %s\n", st_error_message(err));
  }
  st_error_free(err);
  char key[32];
  snprintf(key, sizeof key, "CHILD_%d", n);
  STAGE("file save");
  if (st_secrets_set(file_manager, key, "x", NULL) != ST_OK) WRONG("file save");
  _exit(wrong ? 1 : 0);
}

int main(void) {
  const char *dir = make_temp_dir();
  char file[512], db[512], config[1024];
  snprintf(file, sizeof file, "%s/secrets.json", dir);
  snprintf(db, sizeof db, "%s/jobs.db", dir);
  write_file(file, "{\"FILE_KEY\": \"from-file\"}");
  setenv("ST_FORK_ENV", "from-env", 1);
  setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  pthread_t server = start_server();

  file_manager = manager_on(file, NULL);
  snprintf(config, sizeof config,
           "{\"providers\": [\"vault\"], \"vault_url\": \"http://127.0.0.1:%d\","
           " \"vault_token\": \"s.fork-test\", \"vault_path\": \"fork\","
           " \"vault_kv_version\": 2, \"cache_ttl\": 0.01, \"retries\": 0,"
           " \"request_timeout\": %d}",
           port, st_test_scale(100) < 100 ? 60 : 10);
  scaled = st_test_scale(100) < 100;
  st_error *err = NULL;
  if (st_secrets_new(config, &vault_manager, &err) != ST_OK) {
    fprintf(stderr, "vault manager: %s\n", st_error_message(err));
    st_error_free(err);
    return 1;
  }
  CHECK_RC(st_cache_new(60, 100, 60, &cache, NULL), ST_OK);
  CHECK_RC(st_store_open(db, &store, NULL), ST_OK);
  CHECK_RC(st_store_save_provider_config(store, "forked", "{\"parent\": true}", NULL), ST_OK);
  CHECK(one_round(0, 0) == 0);

  pthread_t threads[THREADS];
  for (long t = 0; t < THREADS; t++) pthread_create(&threads[t], NULL, worker, (void *)t);
  sleep_ms(50);

  int children = (int)st_test_scale(100), hung = 0, failed = 0;
  for (int n = 0; n < children; n++) {
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) child(n);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
      hung++;
    else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
      failed++;
    sleep_ms(2);
  }
  atomic_store(&stop_threads, 1);
  for (int t = 0; t < THREADS; t++) pthread_join(threads[t], NULL);
  fprintf(stderr, "fork: %d children, %d hung, %d failed; server: %ld requests, %ld garbled\n",
          children, hung, failed, atomic_load(&good_requests), atomic_load(&bad_requests));
  CHECK(hung == 0);
  CHECK(failed == 0);
  CHECK(atomic_load(&bad_requests) == 0);
  CHECK(one_round(0, 1) == 0);

  st_secrets_free(vault_manager);
  st_secrets_free(file_manager);
  st_cache_free(cache);
  st_store_free(store);
  shutdown(listen_fd, SHUT_RDWR);
  close(listen_fd);
  pthread_join(server, NULL);
  st_test_remove_temp_dirs();
  return st_test_failures ? 1 : 0;
}
