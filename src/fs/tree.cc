#include "fs/tree.h"

namespace vmemfs::fs {

Tree::Tree() { nodes_.push_back(Node{kRootIno, kRootIno, "", nullptr, {}}); }

Result<Ino> Tree::AddDirectory(Ino parent, std::string name) {
  return Add(parent, std::move(name), nullptr);
}

Result<Ino> Tree::AddFile(Ino parent, std::string name, std::unique_ptr<File> file) {
  if (!file) return InvalidArgumentError("no file for " + name);
  return Add(parent, std::move(name), std::move(file));
}

Result<Ino> Tree::Add(Ino parent, std::string name, std::unique_ptr<File> file) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
    return InvalidArgumentError("invalid name '" + name + "'");
  }
  const Node* p = Get(parent);
  if (!p || !p->is_dir()) return InvalidArgumentError("parent of " + name + " is not a directory");
  if (p->children.count(name)) return InvalidArgumentError("duplicate name '" + name + "'");
  Ino ino = nodes_.size() + 1;
  nodes_[parent - 1].children.emplace(name, ino);
  nodes_.push_back(Node{ino, parent, std::move(name), std::move(file), {}});
  return ino;
}

const Node* Tree::Get(Ino ino) const {
  if (ino < 1 || ino > nodes_.size()) return nullptr;
  return &nodes_[ino - 1];
}

const Node* Tree::Lookup(Ino parent, std::string_view name) const {
  const Node* p = Get(parent);
  if (!p) return nullptr;
  auto it = p->children.find(name);
  return it == p->children.end() ? nullptr : Get(it->second);
}

}  // namespace vmemfs::fs
