#include "fs/symbol_file_directories.h"

#include <algorithm>

#include "fs/text_file.h"

namespace vmemfs::fs {

std::vector<std::string> SymbolFileDirectoryNames(const vmi::KernelView& view) {
  std::vector<std::string> names;
  for (const vmi::SymbolFile& f : view.os->SymbolFiles()) {
    if (std::find(names.begin(), names.end(), f.directory) == names.end()) {
      names.push_back(f.directory);
    }
  }
  return names;
}

std::optional<Entry> MakeSymbolFileDirectory(std::shared_ptr<const vmi::KernelView> view,
                                             std::string_view name) {
  std::vector<vmi::SymbolFile> files;
  for (vmi::SymbolFile& f : view->os->SymbolFiles()) {
    if (f.directory == name) files.push_back(std::move(f));
  }
  if (files.empty()) return std::nullopt;
  auto populate = [files = std::move(files)](Tree& tree, Ino dir) -> Status {
    for (const vmi::SymbolFile& f : files) {
      // No guest: the text belongs to this kernel and never changes, so it is made once.
      VMEMFS_TRY(tree.AddFile(dir, f.name, MakeTextFile(nullptr, f.make)).status());
    }
    return Status();
  };
  return Entry::OfDirectory(std::move(populate), nullptr, view->id);
}

}  // namespace vmemfs::fs
