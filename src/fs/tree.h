// The mount's inode table: directories and files. The root is FUSE_ROOT_ID (1); inode numbers
// are never reused within a mount.
//
// A directory is fixed (its children are added once: up front, or by `populate` the first time
// anyone looks inside) or computed: a DirectoryProvider lists names and makes an entry the
// first time a name is looked up, so a mount costs nothing for entries nobody visits.
//
// Freshness: a computed entry records its provider's generation (the guest's, freshness.h) and
// an identity. When the generation has moved on, the next lookup asks the provider again: the
// same identity keeps the node and its inode number, another identity replaces it (a pid reused
// by a new process, a new kernel's proc/), none removes it. A listing drops entries the
// provider no longer lists (an exited process).
//
// Lifetime: the kernel's lookup count (FUSE lookup/forget) keeps a node. A computed node the
// kernel has forgotten is freed (it is made again if looked up again), and so is a node cut
// from the tree once the kernel forgets it, so a long-lived mount of a busy guest does not
// grow. Fixed nodes live as long as the tree.
//
// Thread safety: all methods may be called concurrently. A node's file and provider are
// immutable once it exists; the kernel does not forget an inode while it uses it, so a Node*
// handed out for an inode the kernel knows stays valid while the kernel uses it.
#ifndef VMEMFS_FS_TREE_H_
#define VMEMFS_FS_TREE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
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
  // Tells this entry from another one of the same name made later (see the freshness note).
  uint64_t identity = 0;

  static Entry OfFile(std::unique_ptr<File> file, uint64_t identity = 0) {
    return {std::move(file), nullptr, nullptr, identity};
  }
  static Entry OfDirectory(std::function<Status(Tree&, Ino)> populate,
                           std::unique_ptr<DirectoryProvider> provider = nullptr,
                           uint64_t identity = 0) {
    return {nullptr, std::move(populate), std::move(provider), identity};
  }
};

class DirectoryProvider {
 public:
  virtual ~DirectoryProvider() = default;
  // The names this directory lists, in order.
  virtual Result<std::vector<std::string>> Names() = 0;
  // The entry for `name` now, or nullopt if there is none.
  virtual Result<std::optional<Entry>> Make(std::string_view name) = 0;
  // The generation entries are made in; an entry made in another one is confirmed by Make on
  // its next lookup. Default: entries never go stale.
  virtual uint64_t generation() { return 0; }
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
  bool attached = true;           // GUARDED_BY(Tree::mu_): reachable from the root
  uint64_t identity = 0;
  std::atomic<uint64_t> generation{0};  // the provider's generation when made or confirmed
  std::atomic<uint64_t> lookups{0};     // the kernel's lookup count
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
  ~Tree();
  // kInvalidArgument for a bad or duplicate name or a parent that is not a directory.
  Result<Ino> AddDirectory(Ino parent, std::string name,
                           std::unique_ptr<DirectoryProvider> provider = nullptr);
  Result<Ino> AddFile(Ino parent, std::string name, std::unique_ptr<File> file);

  // nullptr if there is no such inode.
  const Node* Get(Ino ino) const;
  // The child `name` of `parent`, made or confirmed by the parent's provider if needed;
  // kNotFound if none. Counts one kernel lookup of the child (Forget undoes it).
  Result<const Node*> Lookup(Ino parent, std::string_view name);
  // ".", ".." not included: the fixed children, then the provider's names. Entries the provider
  // no longer lists are cut from the tree.
  Result<std::vector<DirEntry>> List(Ino dir);
  // Gives the root directory a provider (the VMs of a hypervisor connection).
  // REQUIRES: before the tree is served.
  void SetRootProvider(std::unique_ptr<DirectoryProvider> provider);
  // The kernel dropped `count` lookups of `ino` (FUSE forget).
  void Forget(Ino ino, uint64_t count);
  // Nodes in the table (for tests).
  size_t size() const;

 private:
  Result<Ino> Add(Ino parent, std::string name, Entry entry, bool made_by_provider = false);
  Status Populate(Node& node);
  Node* Find(Ino ino) const;  // REQUIRES: mu_ held
  void Detach(Node& node);        // REQUIRES: mu_ held exclusively
  void Unlink(Node& node);        // REQUIRES: mu_ held exclusively
  void FreeIfUnused(Node& node);  // REQUIRES: mu_ held exclusively
  // Counts a kernel lookup of `node`; kNotFound if it is null. REQUIRES: mu_ held.
  static Result<const Node*> Counted(Node* node, std::string_view name);

  mutable std::shared_mutex mu_;
  std::unordered_map<Ino, std::unique_ptr<Node>> nodes_;  // GUARDED_BY(mu_)
  Ino next_ino_ = kRootIno + 1;                           // GUARDED_BY(mu_)
};

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_TREE_H_
