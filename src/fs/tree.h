// The mount's inode table: directories and files, inode number = index + 1 (FUSE_ROOT_ID = 1).
//
// Built completely before the mount and read-only while serving, so lookups take no lock and
// inode numbers are never reused within a mount. (Directories whose entries come and go, such
// as proc/, will need lookup counts and a lock when they arrive.)
#ifndef VMEMFS_FS_TREE_H_
#define VMEMFS_FS_TREE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "fs/file.h"

namespace vmemfs::fs {

using Ino = uint64_t;
inline constexpr Ino kRootIno = 1;

struct Node {
  Ino ino;
  Ino parent;
  std::string name;
  std::unique_ptr<File> file;  // null for a directory
  std::map<std::string, Ino, std::less<>> children;
  bool is_dir() const { return !file; }
};

class Tree {
 public:
  Tree();
  // kInvalidArgument for a bad or duplicate name or a parent that is not a directory.
  Result<Ino> AddDirectory(Ino parent, std::string name);
  Result<Ino> AddFile(Ino parent, std::string name, std::unique_ptr<File> file);

  // nullptr if there is no such inode.
  const Node* Get(Ino ino) const;
  const Node* Lookup(Ino parent, std::string_view name) const;
  size_t size() const { return nodes_.size(); }

 private:
  Result<Ino> Add(Ino parent, std::string name, std::unique_ptr<File> file);
  std::vector<Node> nodes_;
};

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_TREE_H_
