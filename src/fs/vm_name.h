// What may name a VM's directory: a SOURCE's NAME, a libvirt domain's name. Scripts read the
// names from `ls` and from `info` lines, so a name is one harmless path component.
#ifndef VMEMFS_FS_VM_NAME_H_
#define VMEMFS_FS_VM_NAME_H_

#include <string_view>

#include "base/status.h"

namespace vmemfs::fs {

// kInvalidArgument (saying what is wrong) for an empty name, "." or "..", a name with '/', a
// control character (newline, tab, ...) or more than 255 bytes; OK otherwise.
Status CheckVmName(std::string_view name);

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_VM_NAME_H_
