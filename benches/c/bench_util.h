/* Timing helpers shared by the C benchmark programs. */
#ifndef ST_BENCH_UTIL_H
#define ST_BENCH_UTIL_H

#include <stdlib.h>
#include <time.h>

#define BATCHES 31

static inline double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* The median of BATCHES per-operation times (sorts them). */
static inline double median(double *per_op) {
  qsort(per_op, BATCHES, sizeof *per_op, cmp_double);
  return per_op[BATCHES / 2];
}

#endif
