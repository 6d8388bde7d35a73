// The directories of an OS's files for analysis tools (vmi::SymbolFile), e.g. isf/ holding
// the kernel's Volatility 3 ISF. One directory per SymbolFile::directory; each file is made
// once per kernel when first used (stat or open), never when a directory is listed.
#ifndef VMEMFS_FS_SYMBOL_FILE_DIRECTORIES_H_
#define VMEMFS_FS_SYMBOL_FILE_DIRECTORIES_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "fs/tree.h"
#include "vmi/guest.h"

namespace vmemfs::fs {

// The directory names the kernel `view` has files for. REQUIRES: view.os.
std::vector<std::string> SymbolFileDirectoryNames(const vmi::KernelView& view);

// The entry `name` (nullopt when the OS has no files there); its identity is the view's, so
// a new kernel gets a new directory and new files. REQUIRES: view->os.
std::optional<Entry> MakeSymbolFileDirectory(std::shared_ptr<const vmi::KernelView> view,
                                             std::string_view name);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_SYMBOL_FILE_DIRECTORIES_H_
