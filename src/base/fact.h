// A fact about a guest or its source, with how it was found: what the `info` file shows.
#ifndef VMEMFS_BASE_FACT_H_
#define VMEMFS_BASE_FACT_H_

#include <string>

namespace vmemfs {

struct Fact {
  std::string key;    // "kaslr-offset"
  std::string value;  // "0x2c000000"
  std::string how;    // "VMCOREINFO KERNELOFFSET"; empty when there is nothing to say
  bool operator==(const Fact&) const = default;
};

}  // namespace vmemfs

#endif  // VMEMFS_BASE_FACT_H_
