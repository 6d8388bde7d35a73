// Test helpers for the task walkers: a synthetic kernel (flat RAM, 4-level page tables with a
// direct map, task_structs laid out by a hand-made TaskLayout) and the real test guests.
#ifndef VMEMFS_TESTS_VMI_LINUX_TASKS_TEST_GUEST_H_
#define VMEMFS_TESTS_VMI_LINUX_TASKS_TEST_GUEST_H_

#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "drivers/snapshot_driver.h"
#include "testing/memory_driver.h"
#include "truth/guest_truth.h"
#include "vmi/guest.h"
#include "vmi/linux/guest_root.h"
#include "vmi/linux/kernel_memory.h"
#include "vmi/linux/linux_os.h"
#include "vmi/os_registry.h"
#include "vmi/linux/kernel_types.h"
#include "vmi/linux/task_layout.h"

namespace vmemfs::vmi::linux_os::testing {

// 8 MiB of RAM. Kernel VA kDirectMap + x and user VA x both map PA x (2 MiB pages); the page
// tables are at PA 0x1000..0x5fff, so a test puts its objects at PA >= 0x10000.
class SyntheticKernel {
 public:
  static constexpr uint64_t kRam = 8 << 20;
  static constexpr uint64_t kDirectMap = 0xffff888000000000;
  static constexpr uint64_t kPml4 = 0x1000;

  SyntheticKernel() {
    auto driver = std::make_unique<::vmemfs::testing::MemoryDriver>(kRam);
    driver_ = driver.get();
    Put64(kPml4 + 273 * 8, 0x2000 | 3);  // kernel half: PML4[273] -> PDPT 0x2000
    Put64(0x2000, 0x3000 | 3);
    Put64(kPml4, 0x4000 | 7);  // user half: PML4[0] -> PDPT 0x4000
    Put64(0x4000, 0x5000 | 7);
    for (uint64_t i = 0; i < kRam >> 21; ++i) {
      Put64(0x3000 + i * 8, (i << 21) | 0x83);  // present, writable, 2 MiB
      Put64(0x5000 + i * 8, (i << 21) | 0x87);  // + user
    }
    guest_ = std::move(*Guest::Open(std::move(driver)));
    mem_ = std::make_unique<KernelMemory>(*guest_, AddressSpace{PagingMode::kIa32e4, kPml4});
  }

  static uint64_t Kva(uint64_t pa) { return kDirectMap + pa; }
  KernelMemory& mem() { return *mem_; }
  Guest& guest() { return *guest_; }

  void Put(uint64_t pa, const void* data, size_t n) { driver_->Put(pa, data, n); }
  void Put64(uint64_t pa, uint64_t v) { Put(pa, &v, 8); }
  void Put32(uint64_t pa, uint32_t v) { Put(pa, &v, 4); }
  // Writes by kernel VA.
  void K64(uint64_t kva, uint64_t v) { Put64(kva - kDirectMap, v); }
  void K32(uint64_t kva, uint32_t v) { Put32(kva - kDirectMap, v); }
  // Links the list_heads at kernel VAs nodes[0] (the head), nodes[1], ... into a ring.
  void Ring(const std::vector<uint64_t>& nodes) {
    for (size_t i = 0; i < nodes.size(); ++i) {
      K64(nodes[i], nodes[(i + 1) % nodes.size()]);
      K64(nodes[i] + 8, nodes[(i + nodes.size() - 1) % nodes.size()]);
    }
  }

 private:
  ::vmemfs::testing::MemoryDriver* driver_;
  std::unique_ptr<Guest> guest_;
  std::unique_ptr<KernelMemory> mem_;
};

// --- Real test guests ---

const std::string kGuestRoot = ::vmemfs::testing::GuestRoot();
// The guests' own ground truth (tests/truth/guest_truth.h).
using ::vmemfs::testing::ReadTruthPs;
using ::vmemfs::testing::ReadTruthSymbol;
using ::vmemfs::testing::Unescape;

// A snapshot of a real guest with its kernel found as vmemfs finds it (vmi::OsFinders).
struct RealKernel {
  std::unique_ptr<Guest> guest;
  std::shared_ptr<const KernelView> view;  // view->space and view->os are set
  std::unique_ptr<KernelMemory> mem;       // through the kernel's page tables
  LinuxOs& os() const { return static_cast<LinuxOs&>(*view->os); }
};

// Opens the snapshot `path` and finds its Linux kernel; nullptr (and *why set) when the file
// is absent or no kernel is found.
inline std::unique_ptr<RealKernel> OpenRealKernel(const std::string& path, std::string* why,
                                                  const OsOverrides& overrides = {}) {
  auto driver = drivers::OpenSnapshot(path, {});
  if (!driver) {
    *why = "no test guest snapshot " + path + " (tools/guest/guest.py prepare --root " +
           kGuestRoot + "): " + driver.error().ToString();
    return nullptr;
  }
  auto finders = OsFinders::Create(overrides);
  if (!finders) return *why = finders.error().ToString(), nullptr;
  auto guest = Guest::Open(std::move(*driver), {.os_finders = *finders});
  if (!guest) return *why = guest.error().ToString(), nullptr;
  auto k = std::make_unique<RealKernel>();
  k->guest = std::move(*guest);
  k->view = k->guest->Kernel();
  if (!k->view->space || !k->view->os) {
    *why = "no kernel found in " + path;
    for (const Fact& f : k->view->facts) *why += "; " + f.key + ": " + f.value + " " + f.how;
    return nullptr;
  }
  k->mem = std::make_unique<KernelMemory>(*k->guest, *k->view->space);
  return k;
}

struct RealGuest {
  std::string dir;
  std::unique_ptr<RealKernel> kernel;
  KernelMemory* mem = nullptr;
  std::unique_ptr<KernelTypes> types;
  TaskLayout layout;
  uint64_t init_task = 0;
};

// Opens <root>/<name>/core.elf and resolves the task layout, once per guest; nullptr (and
// *why set) when the guest is absent.
inline RealGuest* OpenRealGuest(const std::string& name, std::string* why) {
  static std::map<std::string, std::unique_ptr<RealGuest>> cache;
  auto [it, inserted] = cache.try_emplace(name);
  if (!inserted) {
    if (!it->second) *why = "guest " + name + " could not be opened before";
    return it->second.get();
  }
  auto g = std::make_unique<RealGuest>();
  g->dir = kGuestRoot + "/" + name;
  g->kernel = OpenRealKernel(g->dir + "/core.elf", why);
  if (!g->kernel) return nullptr;
  g->mem = g->kernel->mem.get();
  uint64_t start = ReadTruthSymbol(g->dir, "__start_BTF"), stop = ReadTruthSymbol(g->dir, "__stop_BTF");
  g->init_task = ReadTruthSymbol(g->dir, "init_task");
  std::vector<std::byte> btf(stop > start ? stop - start : 0);
  if (btf.empty() || !g->mem->Read(start, btf).ok()) return *why = "BTF unreadable", nullptr;
  auto types = KernelTypes::FromBtf(btf);
  if (!types) return *why = types.error().ToString(), nullptr;
  g->types = std::move(*types);
  auto layout = ResolveTaskLayout(*g->types);
  if (!layout) return *why = layout.error().ToString(), nullptr;
  g->layout = *layout;
  it->second = std::move(g);
  return it->second.get();
}


// /proc/<pid>/cmdline as ps.tsv shows it: NULs as spaces, trailing NULs dropped.
inline std::string TruthStyleCmdline(std::string raw) {
  while (!raw.empty() && raw.back() == '\0') raw.pop_back();
  for (char& c : raw) c = c == '\0' ? ' ' : c;
  return raw;
}

}  // namespace vmemfs::vmi::linux_os::testing

#endif  // VMEMFS_TESTS_VMI_LINUX_TASKS_TEST_GUEST_H_
