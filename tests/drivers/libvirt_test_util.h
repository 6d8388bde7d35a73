// Helpers of the libvirt tests: run virsh and the tools/libvirt scripts, share one booted test
// domain between test processes (ctest runs each test in its own process), skip when libvirtd
// is not running.
#ifndef VMEMFS_TESTS_DRIVERS_LIBVIRT_TEST_UTIL_H_
#define VMEMFS_TESTS_DRIVERS_LIBVIRT_TEST_UTIL_H_

#include <gtest/gtest.h>

#include "vmi/linux/guest_root.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

namespace vmemfs::drivers::testing {

inline constexpr char kUri[] = "qemu:///system";
// The booted guest most tests share; reused while it runs and has printed its truth.
inline constexpr char kSharedDomain[] = "vmemfs-test-lv";

inline std::string ToolsDir() {
  return (std::filesystem::path(__FILE__).parent_path() / "../../tools/libvirt").lexically_normal();
}

// Runs `command` through sh; its stdout (at most 16 MiB), and its exit status in `status`.
inline std::string Run(const std::string& command, int* status = nullptr) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0 && out.size() < (16u << 20)) {
    out.append(buf.data(), n);
  }
  const int rc = pclose(pipe);
  if (status != nullptr) *status = rc;
  return out;
}

inline std::string Virsh(const std::string& args) {
  return Run(std::string("virsh -q -c ") + kUri + " " + args + " 2>&1");
}

inline bool LibvirtdRunning() {
  return std::system((std::string("virsh -c ") + kUri + " list >/dev/null 2>&1").c_str()) == 0;
}

inline std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

inline std::string DomainDir(const std::string& name) { return "/tmp/vmemfs-libvirt/" + name; }

inline bool DomainReady(const std::string& name) {
  if (Trim(Virsh("domstate " + name)) != "running") return false;
  std::ifstream truth(DomainDir(name) + "/truth.log");
  std::string text((std::istreambuf_iterator<char>(truth)), std::istreambuf_iterator<char>());
  return text.find("==VMEMFS-READY==") != std::string::npos;
}

// Starts domain `name` (booted to READY unless `wait` is false). `lifecycle` sets
// define-test-domain.sh's VMEMFS_ON_REBOOT and VMEMFS_ON_CRASH, e.g. "VMEMFS_ON_REBOOT=restart"
// (default: a reset, reboot or crash destroys the domain). False on failure.
inline bool StartDomain(const std::string& name, bool wait, const std::string& lifecycle = "") {
  int status = 0;
  // The kernel and initramfs the guests fixture built.
  std::string image = "VMEMFS_GUEST_IMAGE=" + ::vmemfs::testing::GuestRoot() + "/image ";
  Run(image + (wait ? "" : "VMEMFS_BOOT_WAIT=0 ") + lifecycle + " " + ToolsDir() +
          "/define-test-domain.sh " + name + " qemu64 >/dev/null",
      &status);
  return status == 0;
}

inline void StopDomain(const std::string& name) {
  Run(ToolsDir() + "/undefine-test-domain.sh " + name + " >/dev/null 2>&1");
}

// The shared booted domain, started if needed (20-70 s on a busy 2-core TCG host).
inline bool EnsureSharedDomain() {
  return DomainReady(kSharedDomain) || StartDomain(kSharedDomain, /*wait=*/true);
}

#define VMEMFS_REQUIRE_LIBVIRTD()                                                 \
  do {                                                                            \
    if (!::vmemfs::drivers::testing::LibvirtdRunning()) {                         \
      GTEST_SKIP() << "libvirtd is not running on qemu:///system: start it with " \
                      "tools/libvirt/start-libvirtd.sh (as root)";                \
    }                                                                             \
  } while (0)

}  // namespace vmemfs::drivers::testing

#endif  // VMEMFS_TESTS_DRIVERS_LIBVIRT_TEST_UTIL_H_
