// Runs shell commands for the installation tests, and parses what vmemfs --help and the man
// page say about the options.
#ifndef VMEMFS_TESTS_INSTALL_SHELL_H_
#define VMEMFS_TESTS_INSTALL_SHELL_H_

#include <set>
#include <string>
#include <vector>

namespace vmemfs::testing {

struct ShellResult {
  int status;       // the exit status, or -1 if the command did not exit normally
  std::string out;  // stdout and stderr, interleaved
};
ShellResult Shell(const std::string& command);
// `s` quoted for sh.
std::string Quoted(const std::string& s);

std::string SourceDir();  // the source tree
std::string BuildDir();   // the build tree vmemfs was built in

// The option names (-f, --foreground, ...) of the Options section of `vmemfs --help`.
std::set<std::string> HelpOptions(const std::string& help);
// The option names of the man page's OPTIONS section (its .TP headings).
std::set<std::string> ManOptions(const std::string& roff);
// The commands under the "Examples:" heading at the end of --help, one string each.
std::vector<std::string> HelpExamples(const std::string& help);

}  // namespace vmemfs::testing

#endif  // VMEMFS_TESTS_INSTALL_SHELL_H_
