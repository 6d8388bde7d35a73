// VMCOREINFO discovery on a snapshot file: the page-table finder (kernel_finder.h) against the
// whole-RAM scan (vmcoreinfo_scan.h), cold and warm.
//
//   discovery_bench SNAPSHOT [vCPU-registers.txt]
//
// "Cold" drops the file from the page cache first (posix_fadvise DONTNEED: only pages no other
// process maps are dropped); "touched" is how much of the file is in the page cache afterwards
// (mincore), i.e. what the method pulled from disk, readahead included. Figures are printed,
// never asserted.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "drivers/snapshot_driver.h"
#include "vmi/guest.h"
#include "vmi/linux/kernel_finder.h"
#include "vmi/linux/vmcoreinfo_scan.h"

namespace vmemfs::bench {
namespace {

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "discovery_bench: %s\n", what.c_str());
  std::exit(1);
}

void DropFromPageCache(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) Die("open " + path);
  posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
}

// Bytes of the file in the page cache.
uint64_t Resident(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) Die("open " + path);
  const size_t size = st.st_size;
  void* p = mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) Die("mmap " + path);
  const long page = sysconf(_SC_PAGESIZE);
  std::vector<unsigned char> vec((size + page - 1) / page);
  if (mincore(p, size, vec.data()) != 0) Die("mincore");
  munmap(p, size);
  uint64_t n = 0;
  for (unsigned char c : vec) n += c & 1;
  return n * page;
}

class DriverMemory : public vmi::PhysicalMemory {
 public:
  explicit DriverMemory(drivers::Driver& d) : driver_(d) {}
  Status Read(uint64_t pa, std::span<std::byte> out) override {
    for (uint64_t p = pa >> 12; !out.empty() && p <= (pa + out.size() - 1) >> 12; ++p) {
      pages.insert(p);
    }
    return driver_.ReadPhys(pa, out);
  }
  std::set<uint64_t> pages;  // 4 KiB pages read

 private:
  drivers::Driver& driver_;
};

std::vector<vmi::linux_os::RegisterRoot> Registers(const std::string& file) {
  std::map<int, std::map<std::string, uint64_t>> regs;
  std::ifstream in(file);
  int vcpu;
  std::string name, hex;
  while (in >> vcpu >> name >> hex) regs[vcpu][name] = std::stoull(hex, nullptr, 16);
  std::vector<vmi::linux_os::RegisterRoot> out;
  for (auto& [cpu, r] : regs) {
    if (auto mode = vmi::PagingModeFromRegisters(r["cr0"], r["cr4"], r["efer"])) {
      out.push_back({*mode, r["cr3"], "vCPU " + std::to_string(cpu) + " CR3"});
    }
  }
  return out;
}

// Runs `method` on a freshly opened snapshot; returns its note text.
std::string Measure(const char* name, const std::string& path, bool cold,
                    const std::function<std::string(vmi::Guest&, drivers::Driver&)>& method) {
  if (cold) DropFromPageCache(path);
  const uint64_t before = Resident(path);
  auto driver = drivers::OpenSnapshot(path, {});
  if (!driver) Die(driver.error().ToString());
  drivers::Driver* d = driver->get();
  auto guest = vmi::Guest::Open(std::move(*driver));
  if (!guest) Die(guest.error().ToString());
  const auto start = std::chrono::steady_clock::now();
  std::string text = method(**guest, *d);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  const uint64_t after = Resident(path);
  std::printf("%-12s %-5s %9.2f ms  page cache %7.1f -> %7.1f MiB of %s\n", name,
              cold ? "cold" : "warm", ms, before / 1048576.0, after / 1048576.0, path.c_str());
  return text;
}

}  // namespace
}  // namespace vmemfs::bench

int main(int argc, char** argv) {
  using namespace vmemfs;
  if (argc < 2) bench::Die("usage: discovery_bench SNAPSHOT [registers.txt]");
  const std::string path = argv[1];
  const auto regs =
      argc > 2 ? bench::Registers(argv[2]) : std::vector<vmi::linux_os::RegisterRoot>{};
  auto finder = [&](vmi::Guest& guest, drivers::Driver& d) {
    bench::DriverMemory mem(d);
    auto f = vmi::linux_os::FindKernelVmcoreInfo({mem, d.ranges(), regs, nullptr, {}});
    if (!f) bench::Die(f.error().ToString());
    std::printf("  finder: %s; read %.1f KiB in %zu distinct pages\n", f->how.c_str(),
                f->cost.bytes_read / 1024.0, mem.pages.size());
    return f->text;
  };
  auto scan = [](vmi::Guest& guest, drivers::Driver&) {
    auto loc = vmi::linux_os::LocateVmcoreInfo(guest);
    if (!loc) bench::Die(loc.error().ToString());
    return loc->text;
  };
  for (bool cold : {true, false}) {
    std::string a = bench::Measure("kernel_finder", path, cold, finder);
    std::string b = bench::Measure("ram_scan", path, cold, scan);
    if (a != b) bench::Die("the two methods found different notes");
  }
  return 0;
}
