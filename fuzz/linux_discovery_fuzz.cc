// Fuzzes the whole Linux path a mount takes, on a real guest's memory under hostile patches:
// find the kernel (the carried VMCOREINFO note, page-table roots from registers, the real-mode
// trampoline, the last-resort scan), check it, read kallsyms and BTF, walk tasks, VMAs, files
// and modules, and describe it all, as `info`, `proc/` and `proc/modules` would.
//
// Base memory: the test guest in $VMEMFS_FUZZ_GUEST (a directory holding core.elf, QEMU's ELF
// dump with registers and the VMCOREINFO note, and raw.mem, the same RAM without either);
// tools/fuzz.sh passes build/guests/l4. At start-up the unpatched discovery runs once and every
// page it reads is recorded: patches land only on those pages, where discovery looks.
//
// Input: [mode:1] then patches [page:2][offset in page:2][length:1][bytes...]. Mode bit 0: the
// raw RAM (no registers, no note: the trampoline and scan paths) instead of the ELF core; bit 1:
// hide the ELF's note (the register path). Checks that nothing crashes or hangs, that answers
// keep their caps, and that no walk reads without bound.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "drivers/snapshot_driver.h"
#include "invariant.h"
#include "vmi/guest.h"
#include "vmi/os_registry.h"

namespace vmemfs::fuzz {
namespace {

constexpr uint64_t kPage = 4096;
// A mount's first look, for any kernel, reads far less than this; the last-resort scan reads
// all RAM (256 MiB for the test guest) once more.
constexpr uint64_t kReadBudget = 2ull << 30;

// The base snapshot with patches over it. Everything goes through ReadPhys (no zero copy), so
// every read is seen, recorded and patched.
class PatchedDriver : public drivers::Driver {
 public:
  PatchedDriver(drivers::Driver& base, const std::map<uint64_t, std::vector<std::byte>>& pages,
                bool hide_note, std::set<uint64_t>* record)
      : base_(base), pages_(pages), hide_note_(hide_note), record_(record) {}

  std::string_view kind() const override { return base_.kind(); }
  std::span<const drivers::PhysRange> ranges() const override { return base_.ranges(); }
  Status ReadPhys(uint64_t pa, std::span<std::byte> out) override {
    bytes_read += out.size();
    VMEMFS_TRY(base_.ReadPhys(pa, out));
    const uint64_t end = pa + out.size();
    if (record_ != nullptr) {
      for (uint64_t p = pa & ~(kPage - 1); p < end && record_->size() < 65536; p += kPage) {
        record_->insert(p);
      }
    }
    for (auto it = pages_.lower_bound(pa & ~(kPage - 1)); it != pages_.end() && it->first < end;
         ++it) {
      const uint64_t lo = std::max(pa, it->first), hi = std::min(end, it->first + kPage);
      std::memcpy(out.data() + (lo - pa), it->second.data() + (lo - it->first), hi - lo);
    }
    return Status();
  }
  unsigned vcpu_count() const override { return base_.vcpu_count(); }
  Result<drivers::RegisterSet> Registers(unsigned vcpu) override { return base_.Registers(vcpu); }
  std::vector<Fact> Describe() const override { return base_.Describe(); }
  std::optional<std::string> VmcoreInfo() const override {
    return hide_note_ ? std::nullopt : base_.VmcoreInfo();
  }

  uint64_t bytes_read = 0;

 private:
  drivers::Driver& base_;
  const std::map<uint64_t, std::vector<std::byte>>& pages_;
  const bool hide_note_;
  std::set<uint64_t>* record_;
};

struct Base {
  std::unique_ptr<drivers::Driver> elf, raw;
  std::shared_ptr<const vmi::OsFinders> finders;
  std::vector<uint64_t> pages;  // read by the unpatched discovery, in address order
};

// What a mount does with a guest, bounded: the kernel, then a few processes' every file.
void Exercise(vmi::Guest& guest) {
  for (const Fact& fact : guest.Describe()) CHECK_INVARIANT(fact.value.size() < (1u << 20));
  auto view = guest.Kernel();
  if (!view->os) return;
  vmi::OperatingSystem& os = *view->os;
  (void)os.Describe();
  if (auto text = os.ModulesText(); text.has_value()) CHECK_INVARIANT(text->size() < (64u << 20));
  auto pids = os.ProcessIds();
  if (!pids.has_value()) return;
  int visited = 0;
  for (int32_t pid : *pids) {
    if (++visited > 12) break;
    auto process = os.Process(pid);
    if (!process.has_value()) continue;
    vmi::Process& p = **process;
    if (auto comm = p.Comm(); comm.has_value()) CHECK_INVARIANT(comm->size() <= 64);
    (void)p.Cmdline();
    (void)p.Environ();
    (void)p.StatusText();
    (void)p.ExePath();
    (void)p.MapsText();
    (void)os.ThreadIds(p.tgid());
  }
}

uint64_t RunOnce(Base& base, bool raw, bool hide_note,
                 const std::map<uint64_t, std::vector<std::byte>>& pages,
                 std::set<uint64_t>* record) {
  drivers::Driver& source = raw ? *base.raw : *base.elf;
  auto driver = std::make_unique<PatchedDriver>(source, pages, hide_note, record);
  PatchedDriver* patched = driver.get();
  auto guest = vmi::Guest::Open(std::move(driver), {.os_finders = base.finders});
  if (!guest.has_value()) return 0;
  Exercise(**guest);
  return patched->bytes_read;
}

Base* LoadBase() {
  const char* dir = std::getenv("VMEMFS_FUZZ_GUEST");
  if (dir == nullptr) {
    std::fprintf(stderr, "linux_discovery_fuzz: set VMEMFS_FUZZ_GUEST to a test guest's directory\n");
    std::exit(2);
  }
  auto* base = new Base;
  drivers::OpenOptions options;
  auto elf = drivers::OpenSnapshot(std::string(dir) + "/core.elf", options);
  auto raw = drivers::OpenSnapshot(std::string(dir) + "/raw.mem", options);
  auto finders = vmi::OsFinders::Create();
  if (!elf.has_value() || !raw.has_value() || !finders.has_value()) {
    std::fprintf(stderr, "linux_discovery_fuzz: cannot open the guest in %s\n", dir);
    std::exit(2);
  }
  base->elf = std::move(*elf);
  base->raw = std::move(*raw);
  base->finders = *finders;
  std::set<uint64_t> seen;
  const std::map<uint64_t, std::vector<std::byte>> none;
  for (int mode = 0; mode < 3; ++mode) RunOnce(*base, mode == 1, mode == 2, none, &seen);
  base->pages.assign(seen.begin(), seen.end());
  std::fprintf(stderr, "linux_discovery_fuzz: %zu pages read by discovery\n", base->pages.size());
  return base;
}

void Run(const uint8_t* data, size_t size) {
  static Base* base = LoadBase();
  if (size < 1 || base->pages.empty()) return;
  const uint8_t mode = data[0];
  std::map<uint64_t, std::vector<std::byte>> pages;
  for (size_t at = 1; at + 5 <= size;) {
    uint16_t page, offset;
    std::memcpy(&page, data + at, 2);
    std::memcpy(&offset, data + at + 2, 2);
    const size_t length = std::min<size_t>(data[at + 4], size - at - 5);
    at += 5;
    const uint64_t pa = base->pages[page % base->pages.size()];
    auto [it, fresh] = pages.try_emplace(pa);
    if (fresh) {
      it->second.resize(kPage);
      drivers::Driver& source = (mode & 1) ? *base->raw : *base->elf;
      if (!source.ReadPhys(pa, it->second).ok()) {
        pages.erase(it);
        at += length;
        continue;
      }
    }
    const size_t start = offset % kPage;
    const size_t n = std::min(length, kPage - start);
    std::memcpy(it->second.data() + start, data + at, n);
    at += length;
  }
  CHECK_INVARIANT(RunOnce(*base, mode & 1, mode & 2, pages, nullptr) <= kReadBudget);
}

}  // namespace
}  // namespace vmemfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  vmemfs::fuzz::Run(data, size);
  return 0;
}
