// threads: a process whose credentials and thread group are not the defaults every other
// process of the guest has (root, one thread), so ids and thread lists read from memory can be
// told from zeros and from the group leader alone.
//
// Sets distinct real, effective, saved and filesystem ids (gid 2001 2002 2003 2004, then uid
// 1001 1002 1003 1001: after dropping root, fsuid may only take one of the other three), then
// starts 3 threads that sleep forever and prints once:
//   THREADS <pid> <tid> <tid> <tid>
// The ids and tids are in the truth too (pstruth's tasks table); this line only says all are
// running.
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/fsuid.h>
#include <sys/syscall.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t started = PTHREAD_COND_INITIALIZER;
static int tids[3], count;

static void* Sleeper(void* arg) {
  (void)arg;
  pthread_mutex_lock(&lock);
  tids[count++] = (int)syscall(SYS_gettid);
  pthread_cond_signal(&started);
  pthread_mutex_unlock(&lock);
  for (;;) pause();
  return NULL;
}

int main(void) {
  // Order matters: setfsgid to a gid outside the three needs CAP_SETGID (before dropping root),
  // setfsuid after it only one of the current uids. Both return the previous id, so each is
  // checked by asking again (an invalid id changes nothing and returns the current one).
  if (setresgid(2001, 2002, 2003) != 0) return perror("threads: setresgid"), 1;
  setfsgid(2004);
  if (setresuid(1001, 1002, 1003) != 0) return perror("threads: setresuid"), 1;
  setfsuid(1001);
  if (setfsgid(-1) != 2004 || setfsuid(-1) != 1001) {
    fputs("threads: setfs[ug]id refused\n", stderr);
    return 1;
  }
  pthread_t t[3];
  for (int i = 0; i < 3; ++i) {
    if (pthread_create(&t[i], NULL, Sleeper, NULL) != 0) return 1;
  }
  pthread_mutex_lock(&lock);
  while (count < 3) pthread_cond_wait(&started, &lock);
  pthread_mutex_unlock(&lock);
  printf("THREADS %d %d %d %d\n", getpid(), tids[0], tids[1], tids[2]);
  fflush(stdout);
  for (;;) pause();
}
