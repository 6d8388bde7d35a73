#include "fs/daemon.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace vmemfs::fs {

Daemon::Daemon(bool foreground) {
  if (foreground) return;
  int fds[2];
  if (pipe(fds) != 0) return;
  pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return;
  }
  if (pid > 0) {  // the parent: the child's status byte, or its death, decides the exit code
    close(fds[1]);
    char status = 0;
    ssize_t n;
    do {
      n = read(fds[0], &status, 1);
    } while (n < 0 && errno == EINTR);
    if (n != 1) fprintf(stderr, "vmemfs: the daemon ended before the mount came up\n");
    _exit(n == 1 && status == '0' ? 0 : 1);
  }
  close(fds[0]);
  pipe_ = fds[1];
  setsid();
}

Daemon::~Daemon() {
  if (pipe_ >= 0) close(pipe_);
}

void Daemon::Report(char status) {
  if (pipe_ < 0) return;
  ssize_t n;
  do {
    n = write(pipe_, &status, 1);
  } while (n < 0 && errno == EINTR);
  close(pipe_);
  pipe_ = -1;
}

void Daemon::Ready() {
  if (pipe_ < 0) return;
  if (chdir("/") != 0) {
  }  // "/" always exists; nothing else to do
  int null = open("/dev/null", O_RDWR);
  if (null >= 0) {
    dup2(null, STDIN_FILENO);
    dup2(null, STDOUT_FILENO);
    dup2(null, STDERR_FILENO);
    if (null > STDERR_FILENO) close(null);
  }
  Report('0');
}

void Daemon::Failed() { Report('1'); }

}  // namespace vmemfs::fs
