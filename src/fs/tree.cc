#include "fs/tree.h"

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

Result<Ino> Tree::Add(Ino parent, std::string name, Entry entry, bool made_by_provider) {
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
  node.made_by_provider = made_by_provider;
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
  auto ino = Add(parent, std::string(name), std::move(*entry), /*made_by_provider=*/true);
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
  std::vector<std::string> names;
  if (d->provider) {
    VMEMFS_ASSIGN_OR_RETURN(names, d->provider->Names());
  }
  std::vector<DirEntry> entries;
  std::shared_lock lock(mu_);
  for (const auto& [name, ino] : d->children) {
    if (!nodes_[ino - 1].made_by_provider) entries.push_back({name, ino, nodes_[ino - 1].is_dir()});
  }
  for (auto& name : names) {
    auto it = d->children.find(name);
    Ino ino = it == d->children.end() ? 0 : it->second;
    entries.push_back({std::move(name), ino, ino != 0 && nodes_[ino - 1].is_dir()});
  }
  return entries;
}

void Tree::SetRootProvider(std::unique_ptr<DirectoryProvider> provider) {
  std::unique_lock lock(mu_);
  nodes_[kRootIno - 1].provider = std::move(provider);
}

void Tree::Forget(Ino parent, std::string_view name) {
  std::unique_lock lock(mu_);
  Node* p = GetMutable(parent);
  if (!p) return;
  if (auto it = p->children.find(name); it != p->children.end()) p->children.erase(it);
}

}  // namespace vmemfs::fs
