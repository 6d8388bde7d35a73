// marker NAME: plants known strings in four kinds of memory of this process and prints where.
//
// Output, one line per marker:
//   MARKER <pid> <kind> <hex va> <string>
// Then it watches its heap marker: when someone outside the guest rewrites it (vmemfs --rw), it
// prints, once per change, on the console (ttyS0, the host's console.log):
//   VMEMFS-SEEN <pid> heap <the new string>
// kind is heap (malloc), mmap (anonymous mapping; the string starts 20 bytes before a page
// boundary and continues on the next page), data (a global in .data) and stack (main's frame).
// The string is VMEMFS-MARKER-<NAME>-<pid>-<kind>-<16 hex digits>, the hex digits are a hash of
// name, pid and kind so every marker in a guest is unique.
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

// Polls the heap marker every 100 ms and reports changes on the console. `volatile`: the
// change comes from outside the program, so every poll must read memory.
static void WatchHeap(const char* heap, int pid) {
  char seen[kMarkerSize];
  memcpy(seen, heap, kMarkerSize);
  FILE* console = fopen("/dev/ttyS0", "w");
  const struct timespec period = {0, 100 * 1000 * 1000};
  for (;;) {
    nanosleep(&period, NULL);
    char now[kMarkerSize];
    for (int i = 0; i < kMarkerSize; ++i) now[i] = ((const volatile char*)heap)[i];
    now[kMarkerSize - 1] = 0;
    if (memcmp(now, seen, kMarkerSize) == 0 || console == NULL) continue;
    memcpy(seen, now, kMarkerSize);
    fprintf(console, "VMEMFS-SEEN %d heap %s\n", pid, now);
    fflush(console);
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
  WatchHeap(heap, pid);
}
