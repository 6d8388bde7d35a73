// bigmap: one large anonymous mapping filled with a known pattern, for benchmarks that stream a
// whole VMA (proc/<pid>/vmem/) and tests that check it byte for byte.
//
// Usage: bigmap MIB.  Prints once:  BIGMAP <pid> <hex va> <bytes>
// Byte i of the mapping is (i * 131 + i / 4096) & 0xff; every page is touched, so resident.
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char** argv) {
  size_t mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 32;
  size_t bytes = mib << 20;
  unsigned char* p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return 1;
  for (size_t i = 0; i < bytes; ++i) p[i] = (unsigned char)((i * 131 + i / 4096) & 0xff);
  printf("BIGMAP %d %lx %zu\n", getpid(), (unsigned long)p, bytes);
  fflush(stdout);
  for (;;) pause();
}
