// marker NAME: plants known strings in four kinds of memory of this process and prints where.
//
// Output, one line per marker:
//   MARKER <pid> <kind> <hex va> <string>
// Then it watches its heap marker: when someone outside the guest rewrites it (vmemfs --write-memory), it
// prints, once per change, on the console (ttyS0, the host's console.log):
//   VMEMFS-SEEN <pid> heap <the new string>
// kind is heap (malloc), mmap (anonymous mapping; the string starts 20 bytes before a page
// boundary and continues on the next page), data (a global in .data) and stack (main's frame).
// The string is VMEMFS-MARKER-<NAME>-<pid>-<kind>-<16 hex digits>, the hex digits are a hash of
// name, pid and kind so every marker in a guest is unique.
//
// Commands: a new heap string that starts with MAP or EXIT is also a command, carried out once
// the 128 heap bytes have stayed the same for one more poll (so a half-written string is never
// acted on). seq counts the commands of this process from 1. Each report is one write(2) to
// ttyS0, so reports of different processes never interleave.
//   MAP[ <pages>]  (pages 1..4096, default 3): maps pages+2 anonymous private pages PROT_NONE and
//                  makes the middle <pages> read-write, so the region is a VMA of its own (the
//                  guard pages keep the kernel from merging it with a neighbour). Page i of the
//                  region is filled with the line "<S>-<i>\n" repeated (cut at the page end),
//                  S = VMEMFS-MAPPED-<NAME>-<pid>-<seq>-<16 hex digits>, the hex digits a hash
//                  of name, pid, seq and the kernel's boot_id (unique across resets). Then it
//                  prints
//                    ==VMEMFS-MAP-BEGIN <pid> <seq>==
//                    MAPPED <pid> <seq> <hex start> <hex end> <pages> <S>
//                    <its /proc/self/maps, verbatim, read after the region was filled>
//                    ==VMEMFS-MAP-END <pid> <seq>==
//                  Regions are never unmapped.
//   EXIT           prints "VMEMFS-EXIT <pid> <seq>" and exits with status 0.
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

enum { kMarkerSize = 128 };

// Initialised so it lands in .data (not .bss); the marker is written at run time so the
// binary's file image never contains a marker string.
char g_data_marker[kMarkerSize] = "placeholder";

static uint64_t Fnv1a(const char* s, uint64_t h) {
  for (; *s; ++s) h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
  return h;
}

static void Plant(char* dst, const char* name, int pid, const char* kind) {
  char key[kMarkerSize];
  snprintf(key, sizeof key, "%s/%d/%s", name, pid, kind);
  unsigned long long tag = Fnv1a(key, 0xcbf29ce484222325ull);
  snprintf(dst, kMarkerSize, "VMEMFS-MARKER-%s-%d-%s-%016llx", name, pid, kind, tag);
  printf("MARKER %d %s %lx %s\n", pid, kind, (unsigned long)dst, dst);
}

// Writes all of buf with as few write(2) calls as possible (one, for a tty).
static void WriteAll(int fd, const char* buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w <= 0) return;
    buf += w;
    n -= (size_t)w;
  }
}

// Appends printf output to the report buffer (truncated at its end).
static size_t Append(char* buf, size_t used, size_t cap, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t Append(char* buf, size_t used, size_t cap, const char* fmt, ...) {
  if (used >= cap) return used;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf + used, cap - used, fmt, ap);
  va_end(ap);
  if (n < 0) return used;
  return used + (size_t)n < cap ? used + (size_t)n : cap - 1;
}

// MAP command: a new anonymous region of `pages` pages, filled and reported (format above).
static void MapRegion(int console, const char* name, int pid, int seq, long pages) {
  long page = sysconf(_SC_PAGESIZE);
  char* base = mmap(NULL, (size_t)(pages + 2) * page, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS,
                    -1, 0);
  if (base == MAP_FAILED) {
    dprintf(console, "VMEMFS-MAP-FAILED %d %d mmap\n", pid, seq);
    return;
  }
  char* start = base + page;
  if (mprotect(start, (size_t)pages * page, PROT_READ | PROT_WRITE) != 0) {
    dprintf(console, "VMEMFS-MAP-FAILED %d %d mprotect\n", pid, seq);
    return;
  }
  // The boot_id makes S differ between boots: a reset does not clear RAM, and the same pid and
  // seq come again after it.
  char boot_id[64] = "";
  int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY);
  if (fd >= 0) {
    ssize_t n = read(fd, boot_id, sizeof boot_id - 1);
    boot_id[n > 0 ? n : 0] = 0;
    boot_id[strcspn(boot_id, "\n")] = 0;
    close(fd);
  }
  char key[kMarkerSize + 64], s[kMarkerSize];
  snprintf(key, sizeof key, "%s/%d/map/%d/%s", name, pid, seq, boot_id);
  unsigned long long tag = Fnv1a(key, 0xcbf29ce484222325ull);
  snprintf(s, sizeof s, "VMEMFS-MAPPED-%s-%d-%d-%016llx", name, pid, seq, tag);
  for (long i = 0; i < pages; ++i) {
    char line[kMarkerSize + 16];
    int len = snprintf(line, sizeof line, "%s-%ld\n", s, i);
    char* p = start + i * page;
    for (long off = 0; off < page; ++off) p[off] = line[off % len];
  }
  static char report[64 * 1024];
  size_t used = Append(report, 0, sizeof report, "==VMEMFS-MAP-BEGIN %d %d==\n", pid, seq);
  used = Append(report, used, sizeof report, "MAPPED %d %d %lx %lx %ld %s\n", pid, seq,
                (unsigned long)start, (unsigned long)(start + pages * page), pages, s);
  int maps = open("/proc/self/maps", O_RDONLY);
  const size_t end_room = 64;  // keep space for the END line
  if (maps >= 0) {
    ssize_t n;
    while (used + end_room < sizeof report &&
           (n = read(maps, report + used, sizeof report - end_room - used)) > 0) {
      used += (size_t)n;
    }
    close(maps);
  }
  used = Append(report, used, sizeof report, "==VMEMFS-MAP-END %d %d==\n", pid, seq);
  WriteAll(console, report, used);
}

// Carries out the command in the heap string `now` (format above); returns unless it was EXIT.
static void RunCommand(int console, const char* now, const char* name, int pid, int* seq) {
  if (strncmp(now, "MAP", 3) == 0) {
    const char* p = now + 3;
    while (*p == ' ') ++p;
    long pages = 3;
    if (*p >= '0' && *p <= '9') pages = strtol(p, NULL, 10);
    if (pages < 1 || pages > 4096) pages = 3;
    MapRegion(console, name, pid, ++*seq, pages);
  } else if (strncmp(now, "EXIT", 4) == 0) {
    dprintf(console, "VMEMFS-EXIT %d %d\n", pid, ++*seq);
    exit(0);
  }
}

// Polls the heap marker every 100 ms and reports changes on the console. `volatile`: the
// change comes from outside the program, so every poll must read memory.
static void WatchHeap(const char* heap, const char* name, int pid) {
  char seen[kMarkerSize];
  memcpy(seen, heap, kMarkerSize);
  FILE* console = fopen("/dev/ttyS0", "w");
  const struct timespec period = {0, 100 * 1000 * 1000};
  int pending = 0;  // a change was reported; act on it if it is still there at the next poll
  int seq = 0;
  for (;;) {
    nanosleep(&period, NULL);
    char now[kMarkerSize];
    for (int i = 0; i < kMarkerSize; ++i) now[i] = ((const volatile char*)heap)[i];
    now[kMarkerSize - 1] = 0;
    if (console == NULL) continue;
    if (memcmp(now, seen, kMarkerSize) == 0) {
      if (pending) RunCommand(fileno(console), now, name, pid, &seq);
      pending = 0;
      continue;
    }
    memcpy(seen, now, kMarkerSize);
    fprintf(console, "VMEMFS-SEEN %d heap %s\n", pid, now);
    fflush(console);
    pending = 1;
  }
}

int main(int argc, char** argv) {
  if (argc != 2 || strlen(argv[1]) > 40) {
    fprintf(stderr, "usage: marker NAME (at most 40 chars)\n");
    return 2;
  }
  const char* name = argv[1];
  int pid = getpid();
  long page = sysconf(_SC_PAGESIZE);

  char* heap = malloc(kMarkerSize);
  char* map = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  volatile char stack[kMarkerSize];  // volatile: keep it in memory, in this frame
  if (heap == NULL || map == MAP_FAILED) {
    perror("marker: allocation");
    return 1;
  }
  Plant(heap, name, pid, "heap");
  Plant(map + page - 20, name, pid, "mmap");
  Plant(g_data_marker, name, pid, "data");
  Plant((char*)stack, name, pid, "stack");
  fflush(stdout);
  WatchHeap(heap, name, pid);
}
