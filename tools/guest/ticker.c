// ticker: a string in .data whose counter changes every 100 ms, for live-memory tests.
//
// Prints once:  TICKER <pid> counter <hex va> <string at start>
// The string is always VMEMFS-TICKER-<pid>-<counter as 20 decimal digits>; the counter starts at
// 0 and increases by one every 100 ms (so a reader sees it change and can estimate staleness).
// The string is rewritten in place, same length, NUL terminated.
#include <stdio.h>
#include <time.h>
#include <unistd.h>

char g_ticker[64] = "placeholder";  // .data, rewritten at run time

int main(void) {
  int pid = getpid();
  unsigned long long counter = 0;
  snprintf(g_ticker, sizeof g_ticker, "VMEMFS-TICKER-%d-%020llu", pid, counter);
  printf("TICKER %d counter %lx %s\n", pid, (unsigned long)g_ticker, g_ticker);
  fflush(stdout);
  const struct timespec period = {0, 100 * 1000 * 1000};
  for (;;) {
    nanosleep(&period, NULL);
    snprintf(g_ticker, sizeof g_ticker, "VMEMFS-TICKER-%d-%020llu", pid, ++counter);
  }
}
