#include "fs/tree.h"

#include <set>

namespace vmemfs::fs {

Tree::Tree() {
  Node& root = nodes_.emplace_back();
  root.ino = root.parent = kRootIno;
}

Result<Ino> Tree::AddDirectory(Ino parent, std::string name,
                               std::unique_ptr<DirectoryProvider> provider) {
  return Add(parent, std::move(name), Entry::OfDirectory(nullptr, std::move(provider)));
}

Result<Ino> Tree::AddFile(Ino parent, std::string name, std::unique_ptr<File> file) {
  if (!file) return InvalidArgumentError("no file for " + name);
  return Add(parent, std::move(name), Entry::OfFile(std::move(file)));
}

Result<Ino> Tree::Add(Ino parent, std::string name, Entry entry) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return InvalidArgumentError("invalid name '" + name + "'");
  }
  std::unique_lock lock(mu_);
  Node* p = GetMutable(parent);
  if (!p || !p->is_dir()) return InvalidArgumentError("parent of " + name + " is not a directory");
  if (p->children.count(name)) return InvalidArgumentError("duplicate name '" + name + "'");
  Ino ino = nodes_.size() + 1;
  p->children.emplace(name, ino);
  Node& node = nodes_.emplace_back();
  node.ino = ino;
  node.parent = parent;
  node.name = std::move(name);
  node.file = std::move(entry.file);
  node.provider = std::move(entry.provider);
  node.populate = std::move(entry.populate);
  return ino;
}

Node* Tree::GetMutable(Ino ino) {
  if (ino < 1 || ino > nodes_.size()) return nullptr;
  return &nodes_[ino - 1];
}

const Node* Tree::Get(Ino ino) const {
  std::shared_lock lock(mu_);
  if (ino < 1 || ino > nodes_.size()) return nullptr;
  return &nodes_[ino - 1];
}

size_t Tree::size() const {
  std::shared_lock lock(mu_);
  return nodes_.size();
}

// A directory's fixed children are added the first time anyone looks inside it.
Status Tree::Populate(Node& node) {
  std::call_once(node.populate_once, [&] {
    if (node.populate) node.populate_status = node.populate(*this, node.ino);
  });
  return node.populate_status;
}

Result<const Node*> Tree::Lookup(Ino parent, std::string_view name) {
  Node* p = const_cast<Node*>(Get(parent));
  if (!p) return NotFoundError("no inode " + std::to_string(parent));
  if (!p->is_dir()) return Status(ErrorCode::kOs, "not a directory", ENOTDIR);
  VMEMFS_TRY(Populate(*p));
  {
    std::shared_lock lock(mu_);
    auto it = p->children.find(name);
    if (it != p->children.end()) return static_cast<const Node*>(&nodes_[it->second - 1]);
  }
  if (!p->provider) return NotFoundError(std::string(name));
  VMEMFS_ASSIGN_OR_RETURN(std::optional<Entry> entry, p->provider->Make(name));
  if (!entry) return NotFoundError(std::string(name));
  auto ino = Add(parent, std::string(name), std::move(*entry));
  if (!ino) {
    // Another thread made the same name first: use its node.
    std::shared_lock lock(mu_);
    auto it = p->children.find(name);
    if (it == p->children.end()) return ino.error();
    return static_cast<const Node*>(&nodes_[it->second - 1]);
  }
  return Get(*ino);
}

Result<std::vector<DirEntry>> Tree::List(Ino dir) {
  Node* d = const_cast<Node*>(Get(dir));
  if (!d) return NotFoundError("no inode " + std::to_string(dir));
  if (!d->is_dir()) return Status(ErrorCode::kOs, "not a directory", ENOTDIR);
  VMEMFS_TRY(Populate(*d));
  std::vector<DirEntry> entries;
  std::set<std::string, std::less<>> listed;
  if (d->provider) {
    VMEMFS_ASSIGN_OR_RETURN(auto names, d->provider->Names());
    for (auto& name : names) {
      listed.insert(name);
      entries.push_back({std::move(name), 0, false});
    }
  }
  std::shared_lock lock(mu_);
  for (DirEntry& e : entries) {
    if (auto it = d->children.find(e.name); it != d->children.end()) {
      e.ino = it->second;
      e.is_dir = nodes_[it->second - 1].is_dir();
    }
  }
  for (const auto& [name, ino] : d->children) {
    if (!listed.count(name)) entries.push_back({name, ino, nodes_[ino - 1].is_dir()});
  }
  return entries;
}

}  // namespace vmemfs::fs
