// Serves a Tree over FUSE (libfuse3 low-level API): mount, loop until unmounted or signalled.
#ifndef VMEMFS_FS_FUSE_SERVER_H_
#define VMEMFS_FS_FUSE_SERVER_H_

#include <string>
#include <vector>

#include "base/status.h"
#include "fs/tree.h"

namespace vmemfs::fs {

struct ServeOptions {
  std::string mountpoint;
  std::vector<std::string> fuse_options;  // each as given to -o (comma lists allowed)
  bool foreground = false;
  bool single_threaded = false;
  bool debug = false;
  bool writable = false;   // --rw: memory files get the owner's write bit
  unsigned max_threads = 10;
};

// Blocks until the file system is unmounted or a signal arrives. Errors: mounting failed.
Status Serve(Tree& tree, const ServeOptions& options);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_FUSE_SERVER_H_
