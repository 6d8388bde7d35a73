// Generated text files: info, ctl, registers, the /proc-like files of processes, kallsyms.
//
// One kind, one freshness rule, the guest's (vmi/freshness.h): a snapshot's text is made once
// per generation (in practice once per mount) and may be cached by the kernel; a live guest's
// text is made afresh at every open and never cached by the kernel (reads see the text as it
// was at open), and so is a snapshot's once its file may change under the mount
// (Guest::may_change: `info` then says what happened to the file). With a WriteHandler the file is writable: a register to set, a command to run.
#ifndef VMEMFS_FS_TEXT_FILE_H_
#define VMEMFS_FS_TEXT_FILE_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "fs/file.h"
#include "vmi/guest.h"

namespace vmemfs::fs {

using TextGenerator = std::function<Result<std::string>()>;
// What a write(2) does: one call per write with the written text, surrounding whitespace
// removed; its Status answers the write.
using WriteHandler = std::function<Status(std::string_view text)>;

// `guest` decides freshness; null: the text never changes (made once, at first use). A
// generator that fails makes the size 0 and opening the file give its error.
std::unique_ptr<File> MakeTextFile(vmi::Guest* guest, TextGenerator generate,
                                   WriteHandler on_write = nullptr);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_TEXT_FILE_H_
