// One line of an `info` file: `key: value`, then ` # how` when there is something to say. A
// value or an explanation may come from a hostile guest or a file name: control characters in
// them are written as escapes (\n, \t, \xNN), so every fact stays one line.
#ifndef VMEMFS_FS_INFO_LINE_H_
#define VMEMFS_FS_INFO_LINE_H_

#include <string>
#include <string_view>

#include "base/fact.h"

namespace vmemfs::fs {

// `text` with each control character (C0 and DEL) escaped.
std::string OneLine(std::string_view text);
// "key: value # how\n" (" # how" only when `how` is not empty), each part OneLine'd.
std::string InfoLine(const Fact& fact);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_INFO_LINE_H_
