// Where tools/guest/guest.py prepared the real test guests: $VMEMFS_GUESTS, else the build's
// guests directory (ctest's "guests" fixture boots them there first).
#ifndef VMEMFS_TESTS_VMI_LINUX_GUEST_ROOT_H_
#define VMEMFS_TESTS_VMI_LINUX_GUEST_ROOT_H_

#include <cstdlib>
#include <string>

namespace vmemfs::testing {

inline std::string GuestRoot() {
  const char* env = getenv("VMEMFS_GUESTS");
  return env && *env ? env : VMEMFS_DEFAULT_GUESTS;
}

}  // namespace vmemfs::testing

#endif  // VMEMFS_TESTS_VMI_LINUX_GUEST_ROOT_H_
