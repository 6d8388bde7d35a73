// `cmake --install` of this build into a temporary prefix, once per test binary: the files a
// user gets, for the tests of the man page, the completion, mount -t and the unit.
#ifndef VMEMFS_TESTS_INSTALL_STAGED_INSTALL_H_
#define VMEMFS_TESTS_INSTALL_STAGED_INSTALL_H_

#include <string>

namespace vmemfs::testing {

// The prefix it was installed to ("" and *error set if the install failed).
const std::string& StagedPrefix(std::string* error = nullptr);
// PREFIX/bin/vmemfs of the staged install.
std::string StagedBinary();

}  // namespace vmemfs::testing

#endif  // VMEMFS_TESTS_INSTALL_STAGED_INSTALL_H_
