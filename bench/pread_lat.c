// Random small-read latency of a file: the filesystem half of "read 4 bytes of guest memory".
//
//   pread_lat FILE [COUNT] [SIZE] [--buffered]
//
// Does COUNT (default 20000) preads of SIZE (default 4) bytes at uniformly random SIZE-aligned
// offsets below st_size, after 1000 untimed ones, and prints one line:
//   us_per_op=<mean> p50_us=<median> p99_us=<99th percentile> errors=<failed preads>
// The file is opened with O_DIRECT unless --buffered: through FUSE that sends every pread to
// the daemon, so the figure is the daemon's round trip, not a page-cache hit.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { kWarmup = 1000 };

static uint64_t NowNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

// xorshift64*: cheap and good enough to spread offsets; not the thing being measured.
static uint64_t NextRandom(uint64_t* state) {
  *state ^= *state >> 12;
  *state ^= *state << 25;
  *state ^= *state >> 27;
  return *state * 2685821657736338717ull;
}

static int CompareU64(const void* a, const void* b) {
  uint64_t x = *(const uint64_t*)a, y = *(const uint64_t*)b;
  return (x > y) - (x < y);
}

// Times `count` preads into `lat_ns` (may be NULL); returns the number that failed.
static long ReadRandom(int fd, uint64_t slots, size_t size, long count, uint64_t* seed,
                       uint64_t* lat_ns) {
  static _Alignas(4096) char buf[1 << 16];
  long errors = 0;
  for (long i = 0; i < count; ++i) {
    off_t off = (off_t)((NextRandom(seed) % slots) * size);
    uint64_t t0 = NowNs();
    ssize_t n = pread(fd, buf, size, off);
    if (lat_ns != NULL) lat_ns[i] = NowNs() - t0;
    if (n != (ssize_t)size) ++errors;
  }
  return errors;
}

int main(int argc, char* argv[]) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s FILE [COUNT] [SIZE] [--buffered]\n", argv[0]);
    return 2;
  }
  long count = argc > 2 ? atol(argv[2]) : 20000;
  size_t size = argc > 3 ? (size_t)atol(argv[3]) : 4;
  int buffered = argc > 4 && strcmp(argv[4], "--buffered") == 0;
  if (count <= 0 || size == 0 || size > (1 << 16)) {
    fprintf(stderr, "pread_lat: COUNT must be > 0 and SIZE in 1..65536\n");
    return 2;
  }
  int fd = open(argv[1], O_RDONLY | (buffered ? 0 : O_DIRECT));
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0 || (uint64_t)st.st_size < size) {
    fprintf(stderr, "pread_lat: %s: %s\n", argv[1], fd < 0 ? strerror(errno) : "too small");
    return 1;
  }
  uint64_t slots = (uint64_t)st.st_size / size;
  uint64_t seed = 0x9e3779b97f4a7c15ull;
  uint64_t* lat = malloc(sizeof(uint64_t) * (size_t)count);
  if (lat == NULL) return 1;
  ReadRandom(fd, slots, size, kWarmup, &seed, NULL);
  uint64_t t0 = NowNs();
  long errors = ReadRandom(fd, slots, size, count, &seed, lat);
  double mean_us = (double)(NowNs() - t0) / 1e3 / (double)count;
  qsort(lat, (size_t)count, sizeof(uint64_t), CompareU64);
  printf("us_per_op=%.3f p50_us=%.3f p99_us=%.3f errors=%ld\n", mean_us,
         (double)lat[count / 2] / 1e3, (double)lat[count * 99 / 100] / 1e3, errors);
  free(lat);
  close(fd);
  return errors == count ? 1 : 0;
}
