// A small generated text file (info, registers), built once and served in slices.
#ifndef VMEMFS_FS_TEXT_FILE_H_
#define VMEMFS_FS_TEXT_FILE_H_

#include <memory>
#include <string>

#include "fs/file.h"

namespace vmemfs::fs {

// Content fixed at construction: sources whose facts do not change (snapshots).
std::unique_ptr<File> MakeTextFile(std::string text);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_TEXT_FILE_H_
