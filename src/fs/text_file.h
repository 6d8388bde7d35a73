// A small generated text file (info, registers), built once and served in slices.
#ifndef VMEMFS_FS_TEXT_FILE_H_
#define VMEMFS_FS_TEXT_FILE_H_

#include <functional>
#include <memory>
#include <string>

#include "fs/file.h"

namespace vmemfs::fs {

// Content fixed at construction: sources whose facts do not change (snapshots).
std::unique_ptr<File> MakeTextFile(std::string text);

// Content made by `generate` the first time anyone asks for the size or opens the file, then
// kept. If it fails, the file is empty and opening it gives the error.
using TextGenerator = std::function<Result<std::string>()>;
std::unique_ptr<File> MakeLazyTextFile(TextGenerator generate);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_TEXT_FILE_H_
