// One thing vmemfs knows about a VM, and how it came to know it: a driver's description of its
// source (Driver::Describe), what an OS layer found. Whoever shows facts decides how; a fact
// does not know about any file.
#ifndef VMEMFS_BASE_FACT_H_
#define VMEMFS_BASE_FACT_H_

#include <string>

namespace vmemfs {

struct Fact {
  std::string key;    // short, lower case, dashes: "pid", "ram-access"
  std::string value;  // "1234"
  // How `value` was found ("from the QMP socket's peer credentials"); may be empty when there
  // is nothing to say, so {key, value} alone is a Fact too.
  std::string how = {};
  bool operator==(const Fact&) const = default;
};

}  // namespace vmemfs

#endif  // VMEMFS_BASE_FACT_H_
