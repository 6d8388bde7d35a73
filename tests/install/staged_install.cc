#include "staged_install.h"

#include <stdlib.h>

#include "shell.h"

namespace vmemfs::testing {

const std::string& StagedPrefix(std::string* error) {
  static std::string output;
  static const std::string prefix = [] {
    char dir[] = "/tmp/vmemfs-install-XXXXXX";
    if (!mkdtemp(dir)) return std::string();
    ShellResult r = Shell("cmake --install " + Quoted(BuildDir()) + " --prefix " + Quoted(dir));
    output = r.out;
    if (r.status != 0) return std::string();
    // Left for the process's lifetime; removed at exit.
    static std::string remove = std::string("rm -rf ") + Quoted(dir);
    atexit([] { (void)!system(remove.c_str()); });
    return std::string(dir);
  }();
  if (error) *error = output;
  return prefix;
}

std::string StagedBinary() { return StagedPrefix() + "/bin/vmemfs"; }

}  // namespace vmemfs::testing
