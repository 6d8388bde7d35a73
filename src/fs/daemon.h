// Going to the background safely: fork before any thread exists (libvirt's event loop, the live
// drivers' watchers and the FUSE workers would not survive a fork), and let the terminal hear
// whether the mount came up.
#ifndef VMEMFS_FS_DAEMON_H_
#define VMEMFS_FS_DAEMON_H_

namespace vmemfs::fs {

class Daemon {
 public:
  // In the foreground nothing happens. Otherwise forks: the parent waits for the child's word
  // and exits with its status (0 once it serves, 1 if it failed or died first); the child
  // returns from here in a new session and reports with Ready or Failed. Errors before the
  // fork (none expected) leave the process in the foreground.
  explicit Daemon(bool foreground);
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon();

  // The file system is mounted: the parent exits 0; standard streams go to /dev/null and the
  // working directory to /.
  void Ready();
  // Setting up failed (the error is already on stderr, which is still the terminal).
  void Failed();

 private:
  void Report(char status);
  int pipe_ = -1;  // write end, child only
};

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_DAEMON_H_
