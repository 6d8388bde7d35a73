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

// What a write(2) to a live text file does: one call per write with the written text,
// surrounding whitespace removed; its Status answers the write.
using WriteHandler = std::function<Status(std::string_view text)>;

// Content made afresh at every open (and for every size query), never cached by the kernel:
// facts of a running VM (registers, state). Reads see the text as it was at open. With
// `on_write` the file is writable (a register to set, a command to run).
std::unique_ptr<File> MakeLiveTextFile(TextGenerator generate, WriteHandler on_write = nullptr);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_TEXT_FILE_H_
