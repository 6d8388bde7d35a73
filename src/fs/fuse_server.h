// Serves a Tree over FUSE (libfuse3 low-level API): mount, loop until unmounted or signalled.
#ifndef VMEMFS_FS_FUSE_SERVER_H_
#define VMEMFS_FS_FUSE_SERVER_H_

#include <functional>
#include <string>
#include <vector>

#include "base/status.h"
#include "fs/tree.h"

namespace vmemfs::fs {

struct ServeOptions {
  std::string mountpoint;
  std::vector<std::string> fuse_options;  // each as given to -o (comma lists allowed)
  bool foreground = false;  // for main: whether to daemonize (fs/daemon.h)
  bool single_threaded = false;
  bool debug = false;
  bool writable = false;  // --write-memory (files know it; here for messages)
  // How long the kernel may trust names and attributes: long for snapshots, short when a live
  // VM's processes come and go.
  double cache_timeout = 60.0;
  unsigned max_threads = 10;
};

// Mounts, calls `on_mounted` (if set), then blocks until the file system is unmounted or a
// signal arrives. Errors: mounting failed.
Status Serve(Tree& tree, const ServeOptions& options,
             const std::function<void()>& on_mounted = nullptr);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_FUSE_SERVER_H_
