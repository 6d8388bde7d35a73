// pstruth: prints every process in /proc as one tab-separated line (format in README.md):
//   pid ppid tgid state uid gid threads comm cmdline
// `pstruth tasks` prints each process's credentials and threads instead:
//   pid uid gid threads tids
// uid and gid are the four ids of /proc/<pid>/status (real effective saved fs, space-separated),
// tids the entries of /proc/<pid>/task in ascending order, space-separated.
// uid/gid are the real ids from /proc/<pid>/status. comm is taken between the first '(' and the
// last ')' of /proc/<pid>/stat. cmdline has its NUL separators shown as spaces (trailing NULs
// dropped, empty for kernel threads). In comm and cmdline, '\\', tab, newline and other
// non-printable bytes are escaped as \\, \t, \n and \xNN.
#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t ReadFile(const char* path, char* buf, size_t cap) {
  FILE* f = fopen(path, "r");
  if (f == NULL) return 0;
  size_t n = fread(buf, 1, cap - 1, f);
  fclose(f);
  buf[n] = '\0';
  return n;
}

static void PutEscaped(const char* s, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = (unsigned char)s[i];
    if (c == '\\') fputs("\\\\", stdout);
    else if (c == '\t') fputs("\\t", stdout);
    else if (c == '\n') fputs("\\n", stdout);
    else if (!isprint(c)) printf("\\x%02x", c);
    else putchar(c);
  }
}

static long StatusField(const char* status, const char* key) {
  const char* p = strstr(status, key);
  return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static void PrintProcess(const char* pid) {
  char path[64], stat[1024], status[4096], cmdline[4096];
  snprintf(path, sizeof path, "/proc/%s/stat", pid);
  if (ReadFile(path, stat, sizeof stat) == 0) return;  // exited meanwhile
  snprintf(path, sizeof path, "/proc/%s/status", pid);
  if (ReadFile(path, status, sizeof status) == 0) return;
  snprintf(path, sizeof path, "/proc/%s/cmdline", pid);
  size_t cmd_len = ReadFile(path, cmdline, sizeof cmdline);

  char* open = strchr(stat, '(');
  char* close = strrchr(stat, ')');
  if (open == NULL || close == NULL || close < open) return;
  char state = 0;
  int ppid = -1;
  sscanf(close + 1, " %c %d", &state, &ppid);
  while (cmd_len > 0 && cmdline[cmd_len - 1] == '\0') --cmd_len;
  for (size_t i = 0; i < cmd_len; ++i)
    if (cmdline[i] == '\0') cmdline[i] = ' ';

  printf("%s\t%d\t%ld\t%c\t%ld\t%ld\t%ld\t", pid, ppid, StatusField(status, "\nTgid:"), state,
         StatusField(status, "\nUid:"), StatusField(status, "\nGid:"),
         StatusField(status, "\nThreads:"));
  PutEscaped(open + 1, (size_t)(close - open - 1));
  putchar('\t');
  PutEscaped(cmdline, cmd_len);
  putchar('\n');
}

// The four ids after `key` ("\nUid:") with their tabs as spaces; "?" when absent.
static void PutIds(const char* status, const char* key) {
  const char* p = strstr(status, key);
  if (p == NULL) {
    putchar('?');
    return;
  }
  p += strlen(key);
  while (*p == '\t') ++p;
  for (; *p != '\0' && *p != '\n'; ++p) putchar(*p == '\t' ? ' ' : *p);
}

static int ByNumber(const struct dirent** a, const struct dirent** b) {
  return atoi((*a)->d_name) - atoi((*b)->d_name);
}

static int IsPid(const struct dirent* d) { return isdigit((unsigned char)d->d_name[0]); }

static void PrintTasks(const char* pid) {
  char path[64], status[4096];
  snprintf(path, sizeof path, "/proc/%s/status", pid);
  if (ReadFile(path, status, sizeof status) == 0) return;  // exited meanwhile
  snprintf(path, sizeof path, "/proc/%s/task", pid);
  struct dirent** tids;
  int n = scandir(path, &tids, IsPid, ByNumber);
  if (n < 0) return;
  printf("%s\t", pid);
  PutIds(status, "\nUid:");
  putchar('\t');
  PutIds(status, "\nGid:");
  printf("\t%ld\t", StatusField(status, "\nThreads:"));
  for (int i = 0; i < n; ++i) {
    printf(i ? " %s" : "%s", tids[i]->d_name);
    free(tids[i]);
  }
  free(tids);
  putchar('\n');
}

int main(int argc, char** argv) {
  struct dirent** entries;
  int n = scandir("/proc", &entries, IsPid, ByNumber);
  if (n < 0) {
    perror("pstruth: /proc");
    return 1;
  }
  if (argc > 1 && strcmp(argv[1], "tasks") == 0) {
    puts("pid\tuid\tgid\tthreads\ttids");
    for (int i = 0; i < n; ++i) PrintTasks(entries[i]->d_name);
    return 0;
  }
  puts("pid\tppid\ttgid\tstate\tuid\tgid\tthreads\tcomm\tcmdline");
  for (int i = 0; i < n; ++i) PrintProcess(entries[i]->d_name);
  return 0;
}
