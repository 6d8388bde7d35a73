#include "fs/tree.h"

namespace vmemfs::fs {

Tree::Tree() {
  auto root = std::make_unique<Node>();
  root->ino = root->parent = kRootIno;
  nodes_.emplace(kRootIno, std::move(root));
}

Tree::~Tree() = default;

Result<Ino> Tree::AddDirectory(Ino parent, std::string name,
                               std::unique_ptr<DirectoryProvider> provider) {
  return Add(parent, std::move(name), Entry::OfDirectory(nullptr, std::move(provider)));
}

Result<Ino> Tree::AddFile(Ino parent, std::string name, std::unique_ptr<File> file) {
  if (!file) return InvalidArgumentError("no file for " + name);
  return Add(parent, std::move(name), Entry::OfFile(std::move(file)));
}

Node* Tree::Find(Ino ino) const {
  auto it = nodes_.find(ino);
  return it == nodes_.end() ? nullptr : it->second.get();
}

Result<Ino> Tree::Add(Ino parent, std::string name, Entry entry, bool made_by_provider) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return InvalidArgumentError("invalid name '" + name + "'");
  }
  uint64_t generation = 0;
  std::unique_lock lock(mu_);
  Node* p = Find(parent);
  if (!p || !p->is_dir()) return InvalidArgumentError("parent of " + name + " is not a directory");
  if (p->children.count(name)) return InvalidArgumentError("duplicate name '" + name + "'");
  if (made_by_provider && p->provider) generation = p->provider->generation();
  Ino ino = next_ino_++;
  auto node = std::make_unique<Node>();
  node->ino = ino;
  node->parent = parent;
  node->name = name;
  node->file = std::move(entry.file);
  node->provider = std::move(entry.provider);
  node->populate = std::move(entry.populate);
  node->made_by_provider = made_by_provider;
  node->attached = p->attached;
  node->identity = entry.identity;
  node->generation = generation;
  p->children.emplace(std::move(name), ino);
  nodes_.emplace(ino, std::move(node));
  return ino;
}

const Node* Tree::Get(Ino ino) const {
  std::shared_lock lock(mu_);
  return Find(ino);
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

Result<const Node*> Tree::Counted(Node* node, std::string_view name) {
  if (!node) return NotFoundError(std::string(name));  // freed by a concurrent listing
  node->lookups.fetch_add(1, std::memory_order_relaxed);
  return static_cast<const Node*>(node);
}

Result<const Node*> Tree::Lookup(Ino parent, std::string_view name) {
  Node* p;
  {
    std::shared_lock lock(mu_);
    p = Find(parent);
  }
  if (!p) return NotFoundError("no inode " + std::to_string(parent));
  if (!p->is_dir()) return Status(ErrorCode::kOs, "not a directory", ENOTDIR);
  VMEMFS_TRY(Populate(*p));
  Ino stale = 0;
  {
    std::shared_lock lock(mu_);
    auto it = p->children.find(name);
    Node* child = it == p->children.end() ? nullptr : Find(it->second);
    // A fixed child, or a computed one of the current generation: counted under the lock, so
    // it cannot be freed in between.
    if (child && !(child->made_by_provider && p->provider &&
                   child->generation.load() != p->provider->generation())) {
      return Counted(child, name);
    }
    if (child) stale = child->ino;
  }
  if (!p->provider) return NotFoundError(std::string(name));
  const uint64_t generation = p->provider->generation();
  VMEMFS_ASSIGN_OR_RETURN(std::optional<Entry> entry, p->provider->Make(name));
  if (stale != 0) {
    std::unique_lock lock(mu_);
    auto it = p->children.find(name);
    Node* child = it != p->children.end() && it->second == stale ? Find(stale) : nullptr;
    if (child && entry && entry->identity == child->identity) {
      child->generation = generation;  // confirmed: the same object
      return Counted(child, name);
    }
    if (child) {
      Detach(*child);  // gone, or another object under the same name
      FreeIfUnused(*child);
    }
  }
  if (!entry) return NotFoundError(std::string(name));
  auto ino = Add(parent, std::string(name), std::move(*entry), /*made_by_provider=*/true);
  std::shared_lock lock(mu_);
  // Another thread may have made the same name first: use its node.
  auto it = p->children.find(name);
  if (it == p->children.end()) return ino ? NotFoundError(std::string(name)) : ino.error();
  return Counted(Find(it->second), name);
}

Result<std::vector<DirEntry>> Tree::List(Ino dir) {
  Node* d;
  {
    std::shared_lock lock(mu_);
    d = Find(dir);
  }
  if (!d) return NotFoundError("no inode " + std::to_string(dir));
  if (!d->is_dir()) return Status(ErrorCode::kOs, "not a directory", ENOTDIR);
  VMEMFS_TRY(Populate(*d));
  std::vector<std::string> names;
  if (d->provider) {
    VMEMFS_ASSIGN_OR_RETURN(names, d->provider->Names());
  }
  std::vector<DirEntry> entries;
  std::unique_lock lock(mu_);
  std::map<std::string_view, bool> listed;
  for (const std::string& name : names) listed.emplace(name, true);
  std::vector<Node*> gone;
  for (const auto& [name, ino] : d->children) {
    Node* child = Find(ino);
    if (!child) continue;
    if (!child->made_by_provider) {
      entries.push_back({name, ino, child->is_dir()});
    } else if (!listed.count(name)) {
      gone.push_back(child);
    }
  }
  for (Node* child : gone) {
    Detach(*child);
    FreeIfUnused(*child);
  }
  for (auto& name : names) {
    auto it = d->children.find(name);
    Ino ino = it == d->children.end() ? 0 : it->second;
    Node* child = ino ? Find(ino) : nullptr;
    entries.push_back({std::move(name), child ? ino : 0, child && child->is_dir()});
  }
  return entries;
}

void Tree::SetRootProvider(std::unique_ptr<DirectoryProvider> provider) {
  std::unique_lock lock(mu_);
  Find(kRootIno)->provider = std::move(provider);
}

// Cuts `node` from its parent; it and everything below it are unreachable from now on.
void Tree::Detach(Node& node) {
  Unlink(node);
  std::vector<Node*> stack = {&node};
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    n->attached = false;
    for (const auto& [name, ino] : n->children) {
      if (Node* c = Find(ino)) stack.push_back(c);
    }
  }
}

void Tree::Unlink(Node& node) {
  if (Node* p = Find(node.parent)) {
    auto it = p->children.find(node.name);
    if (it != p->children.end() && it->second == node.ino) p->children.erase(it);
  }
}

// Frees `node` and the nodes below it that nobody needs: the kernel holds none of them, and
// each is cut from the tree or can be made again by its provider.
void Tree::FreeIfUnused(Node& node) {
  if (node.ino == kRootIno || node.lookups.load() != 0) return;
  if (node.attached && !node.made_by_provider) return;
  Detach(node);
  std::vector<Ino> children;
  for (const auto& [name, ino] : node.children) children.push_back(ino);
  for (Ino ino : children) {
    if (Node* c = Find(ino)) FreeIfUnused(*c);
  }
  nodes_.erase(node.ino);
}

void Tree::Forget(Ino ino, uint64_t count) {
  std::unique_lock lock(mu_);
  Node* node = Find(ino);
  if (!node) return;
  uint64_t lookups = node->lookups.load();
  node->lookups = lookups > count ? lookups - count : 0;
  FreeIfUnused(*node);
}

}  // namespace vmemfs::fs
