// The mount's inode table: directories and files, inode number = creation index + 1
// (FUSE_ROOT_ID = 1). Inode numbers are never reused within a mount.
//
// Small directories are built up front. Large or computed ones (proc/, symbols/kernel/) have a
// DirectoryProvider that lists names and makes an entry the first time a name is looked up, so
// a mount costs nothing for entries nobody visits.
//
// Thread safety: all methods may be called concurrently. Node fields other than the children
// are immutable once the node exists; the children are reached only through Lookup and List.
#ifndef VMEMFS_FS_TREE_H_
#define VMEMFS_FS_TREE_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "fs/file.h"

namespace vmemfs::fs {

using Ino = uint64_t;
inline constexpr Ino kRootIno = 1;

class Tree;
class DirectoryProvider;

// What a provider makes for a name: a file, or a directory whose fixed children `populate`
// adds (and/or whose further children a provider makes).
struct Entry {
  std::unique_ptr<File> file;
  std::function<Status(Tree&, Ino)> populate;
  std::unique_ptr<DirectoryProvider> provider;

  static Entry OfFile(std::unique_ptr<File> file) { return {std::move(file), nullptr, nullptr}; }
  static Entry OfDirectory(std::function<Status(Tree&, Ino)> populate,
                           std::unique_ptr<DirectoryProvider> provider = nullptr) {
    return {nullptr, std::move(populate), std::move(provider)};
  }
};

class DirectoryProvider {
 public:
  virtual ~DirectoryProvider() = default;
  // The names this directory lists, in order.
  virtual Result<std::vector<std::string>> Names() = 0;
  // The entry for `name`, or nullopt if there is none. Called at most once per name.
  virtual Result<std::optional<Entry>> Make(std::string_view name) = 0;
};

struct Node {
  Ino ino;
  Ino parent;
  std::string name;
  std::unique_ptr<File> file;                   // null for a directory
  std::unique_ptr<DirectoryProvider> provider;  // directories only, may be null
  bool is_dir() const { return !file; }

 private:
  friend class Tree;
  std::map<std::string, Ino, std::less<>> children;  // GUARDED_BY(Tree::mu_)
  bool made_by_provider = false;  // listed through the parent's provider, not as fixed child
  std::function<Status(Tree&, Ino)> populate;  // run once, under populate_once
  std::once_flag populate_once;
  Status populate_status;
};

struct DirEntry {
  std::string name;
  Ino ino;      // 0 if not made yet
  bool is_dir;  // meaningful only when ino != 0
};

class Tree {
 public:
  Tree();
  // kInvalidArgument for a bad or duplicate name or a parent that is not a directory.
  Result<Ino> AddDirectory(Ino parent, std::string name,
                           std::unique_ptr<DirectoryProvider> provider = nullptr);
  Result<Ino> AddFile(Ino parent, std::string name, std::unique_ptr<File> file);

  // nullptr if there is no such inode.
  const Node* Get(Ino ino) const;
  // The child `name` of `parent`, made by the parent's provider if needed; kNotFound if none.
  Result<const Node*> Lookup(Ino parent, std::string_view name);
  // ".", ".." not included: the fixed children, then the provider's names (so an entry the
  // provider no longer lists, such as an exited process, drops out).
  Result<std::vector<DirEntry>> List(Ino dir);
  // Gives the root directory a provider (the VMs of a hypervisor connection).
  // REQUIRES: before the tree is served.
  void SetRootProvider(std::unique_ptr<DirectoryProvider> provider);
  // Forgets the child `name` of `parent` so that the next lookup asks the provider again (a VM
  // that stopped and may start anew). The node itself lives on for requests in flight; its
  // inode number is never reused.
  void Forget(Ino parent, std::string_view name);
  size_t size() const;

 private:
  Result<Ino> Add(Ino parent, std::string name, Entry entry, bool made_by_provider = false);
  Status Populate(Node& node);
  Node* GetMutable(Ino ino);

  mutable std::shared_mutex mu_;
  std::deque<Node> nodes_;  // GUARDED_BY(mu_) for growth; elements never move
};

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_TREE_H_
