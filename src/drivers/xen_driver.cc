#include "drivers/xen_driver.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdarg>
#include <cstdlib>
#include <utility>

#include "drivers/phys_map.h"
#include "drivers/xen_page_cache.h"
#include "drivers/xen_registers.h"  // xenctrl.h first, past its strict-ISO check
// After xenctrl.h: these need the types it defines; no extern "C" guards of their own.
extern "C" {
// clang-format off
#include <xenforeignmemory.h>
#include <xenstore.h>
// clang-format on
}

namespace vmemfs::drivers {
namespace {

constexpr uint32_t kMaxDomid = 0x7fef;  // DOMID_FIRST_RESERVED - 1
constexpr size_t kMaxName = 64;
constexpr uint64_t kHoleStart = 0xf0000000;  // libxl's default HVM MMIO hole below 4 GiB
constexpr uint64_t kFourGiB = uint64_t{1} << 32;
constexpr unsigned kMaxXenstoreDomains = 65536;
constexpr size_t kPageCacheSize = 64;

// Xen's libraries log to stderr unless given a logger; vmemfs reports errors as Status.
void QuietMessage(xentoollog_logger*, xentoollog_level, int, const char*, const char*, va_list) {}
void QuietDestroy(xentoollog_logger*) {}
xentoollog_logger* QuietLogger() {
  static xentoollog_logger logger = {QuietMessage, nullptr, QuietDestroy};
  return &logger;
}

// Maps frames of one domain with libxenforeignmemory.
class ForeignMapper final : public ForeignPageMapper {
 public:
  ForeignMapper(xenforeignmemory_handle* fmem, uint32_t domid, bool writable)
      : fmem_(fmem), domid_(domid), prot_(writable ? PROT_READ | PROT_WRITE : PROT_READ) {}
  ~ForeignMapper() override { xenforeignmemory_close(fmem_); }

  Result<std::byte*> Map(uint64_t gfn) override {
    xen_pfn_t frame = gfn;
    int err = 0;
    void* page = xenforeignmemory_map(fmem_, domid_, prot_, 1, &frame, &err);
    if (page == nullptr) {
      if (errno == ESRCH) return UnavailableError("xen domain " + std::to_string(domid_) + " gone");
      return OsError("xen: map frame " + std::to_string(gfn));
    }
    if (err != 0) {
      xenforeignmemory_unmap(fmem_, page, 1);
      return FaultError(gfn * kXenPageSize, "xen: frame not populated");
    }
    return static_cast<std::byte*>(page);
  }
  void Unmap(std::byte* page) override { xenforeignmemory_unmap(fmem_, page, 1); }

 private:
  xenforeignmemory_handle* const fmem_;
  const uint32_t domid_;
  const int prot_;
};

// The domain named `name` in xenstore. Errors: kUnavailable (no xenstored), kNotFound.
Result<uint32_t> DomidByName(const std::string& name) {
  xs_handle* xs = xs_open(XS_OPEN_READONLY);
  if (xs == nullptr) {
    return UnavailableError("xen:" + name + ": xenstore unreachable; give a numeric DOMID");
  }
  unsigned count = 0;
  char** ids = xs_directory(xs, XBT_NULL, "/local/domain", &count);
  std::optional<uint32_t> found;
  for (unsigned i = 0; ids != nullptr && i < std::min(count, kMaxXenstoreDomains) && !found; ++i) {
    const std::string path = std::string("/local/domain/") + ids[i] + "/name";
    unsigned length = 0;
    char* value = static_cast<char*>(xs_read(xs, XBT_NULL, path.c_str(), &length));
    if (value != nullptr && std::string_view(value, length) == name) {
      if (Result<XenSpec> spec = ParseXenSpec(ids[i]); spec && spec->domid) found = spec->domid;
    }
    std::free(value);
  }
  std::free(ids);
  xs_close(xs);
  if (!found) return NotFoundError("xen: no domain named " + name);
  return *found;
}

class XenDriver final : public Driver {
 public:
  XenDriver(xc_interface* xc, uint32_t domid, const xc_dominfo_t& info, PhysMap<> ram,
            std::unique_ptr<XenPageCache> pages, bool writable)
      : xc_(xc),
        domid_(domid),
        hvm_(info.hvm),
        vcpus_(info.max_vcpu_id + 1),
        max_memkb_(info.max_memkb),
        ram_(std::move(ram)),
        pages_(std::move(pages)),
        writable_(writable) {}
  ~XenDriver() override {
    pages_.reset();  // unmaps before the control interface closes
    xc_interface_close(xc_);
  }

  std::string_view kind() const override { return "xen"; }
  std::span<const PhysRange> ranges() const override { return ram_.ranges(); }
  bool live() const override { return true; }
  bool writable() const override { return writable_; }
  unsigned vcpu_count() const override { return vcpus_; }

  Status ReadPhys(uint64_t pa, std::span<std::byte> out) override {
    VMEMFS_TRY(CheckRange(pa, out.size()));
    return Notice(pages_->Read(pa, out));
  }
  Status WritePhys(uint64_t pa, std::span<const std::byte> in) override {
    if (!writable_) return UnsupportedError(Source() + ": opened read-only");
    VMEMFS_TRY(CheckRange(pa, in.size()));
    return Notice(pages_->Write(pa, in));
  }

  Status Pause() override {
    VMEMFS_TRY(CheckNotGone());
    if (xc_domain_pause(xc_, domid_) != 0) return Notice(OsError(Source() + ": pause"));
    return Status::Ok();
  }
  Status Resume() override {
    VMEMFS_TRY(CheckNotGone());
    if (xc_domain_unpause(xc_, domid_) != 0) return Notice(OsError(Source() + ": unpause"));
    return Status::Ok();
  }

  std::optional<RunState> State() override {
    if (gone_) return RunState::kGone;
    xc_dominfo_t info = {};
    if (xc_domain_getinfo(xc_, domid_, 1, &info) != 1 || info.domid != domid_ || info.dying ||
        info.shutdown || info.crashed) {
      MarkGone();
      return RunState::kGone;
    }
    return info.paused ? RunState::kPaused : RunState::kRunning;
  }

  Result<RegisterSet> Registers(unsigned vcpu) override {
    VMEMFS_TRY(CheckNotGone());
    if (vcpu >= vcpus_) return NotFoundError(Source() + ": no vCPU " + std::to_string(vcpu));
    if (hvm_) {
      struct hvm_hw_cpu cpu = {};
      if (xc_domain_hvm_getcontext_partial(xc_, domid_, HVM_SAVE_CODE(CPU), vcpu, &cpu,
                                           sizeof(cpu)) != 0) {
        return Notice(OsError(Source() + ": HVM context of vCPU " + std::to_string(vcpu)));
      }
      return RegistersFromHvmCpu(cpu);
    }
    vcpu_guest_context_any_t context = {};
    if (xc_vcpu_getcontext(xc_, domid_, vcpu, &context) != 0) {
      return Notice(OsError(Source() + ": context of vCPU " + std::to_string(vcpu)));
    }
    return RegistersFromPvContext(context.x64);
  }

  std::vector<Fact> Describe() const override {
    return {{"format", hvm_ ? "Xen HVM domain" : "Xen PV domain", "xc_domain_getinfo"},
            {"domid", std::to_string(domid_)},
            {"max-memory-kib", std::to_string(max_memkb_), "xc_domain_getinfo"},
            {"access", "xenforeignmemory, 4 KiB frames, " + std::to_string(kPageCacheSize) +
                           " cached mappings"}};
  }

 private:
  std::string Source() const { return "xen domain " + std::to_string(domid_); }

  Status CheckRange(uint64_t pa, size_t size) {
    VMEMFS_TRY(CheckNotGone());
    return ram_.CheckCovered(pa, size);
  }
  Status CheckNotGone() const {
    if (gone_) return UnavailableError(Source() + ": domain is gone");
    return Status::Ok();
  }
  void MarkGone() {
    gone_ = true;
    pages_->Clear();
  }
  // A failure against a domain that no longer exists makes it gone for good.
  Status Notice(Status status) {
    if (status.ok()) return status;
    if (status.code() == ErrorCode::kUnavailable || status.os_errno() == ESRCH) MarkGone();
    if (!gone_) State();  // one getinfo call tells whether the domain is still there
    return gone_ ? UnavailableError(Source() + ": domain is gone") : status;
  }

  xc_interface* const xc_;
  const uint32_t domid_;
  const bool hvm_;
  const unsigned vcpus_;
  const uint64_t max_memkb_;
  const PhysMap<> ram_;
  std::unique_ptr<XenPageCache> pages_;
  const bool writable_;
  std::atomic<bool> gone_{false};
};

Status XenAbsent(std::string_view rest) {
  if (access("/dev/xen/privcmd", F_OK) == 0) return Status::Ok();
  return UnavailableError("xen:" + std::string(rest) +
                          ": no Xen hypervisor here (/dev/xen/privcmd is missing: vmemfs must run "
                          "in dom0 with the xen-privcmd module loaded)");
}

}  // namespace

Result<XenSpec> ParseXenSpec(std::string_view rest) {
  if (rest.empty() || rest.size() > kMaxName) {
    return InvalidArgumentError("xen source needs a DOMID or a domain name of 1 to 64 bytes");
  }
  if (std::all_of(rest.begin(), rest.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    uint32_t domid = 0;
    auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), domid);
    if (ec != std::errc() || end != rest.data() + rest.size() || domid == 0 || domid > kMaxDomid) {
      return InvalidArgumentError("xen DOMID must be 1 to 32751, not " + std::string(rest));
    }
    return XenSpec{domid, ""};
  }
  for (char c : rest) {
    if (static_cast<unsigned char>(c) < 0x21 || c == 0x7f || c == '/') {
      return InvalidArgumentError("bad character in xen domain name");
    }
  }
  return XenSpec{std::nullopt, std::string(rest)};
}

std::vector<PhysRange> XenRamRanges(uint64_t max_memkb) {
  // Bounded: a u64 of KiB could overflow as bytes; 2^52 bytes is past any x86 guest.
  const uint64_t bytes = std::min<uint64_t>(max_memkb, uint64_t{1} << 42) * 1024;
  if (bytes == 0) return {};
  if (bytes <= kHoleStart) return {{0, bytes}};
  return {{0, kHoleStart}, {kFourGiB, kFourGiB + (bytes - kHoleStart)}};
}

Result<std::unique_ptr<Driver>> OpenXen(std::string_view rest, const OpenOptions& options) {
  VMEMFS_ASSIGN_OR_RETURN(XenSpec spec, ParseXenSpec(rest));
  VMEMFS_TRY(XenAbsent(rest));
  uint32_t domid = 0;
  if (spec.domid) {
    domid = *spec.domid;
  } else {
    VMEMFS_ASSIGN_OR_RETURN(domid, DomidByName(spec.name));
  }
  xc_interface* xc = xc_interface_open(QuietLogger(), QuietLogger(), 0);
  if (xc == nullptr) return OsError("xen: cannot open the control interface (xc_interface_open)");
  xc_dominfo_t info = {};
  if (xc_domain_getinfo(xc, domid, 1, &info) != 1 || info.domid != domid || info.dying) {
    xc_interface_close(xc);
    return UnavailableError("xen: no running domain " + std::to_string(domid));
  }
  Result<PhysMap<>> ram = PhysMap<>::FromRanges(XenRamRanges(info.max_memkb));
  if (!ram) {
    xc_interface_close(xc);
    return ram.error();
  }
  xenforeignmemory_handle* fmem = xenforeignmemory_open(QuietLogger(), 0);
  if (fmem == nullptr) {
    xc_interface_close(xc);
    return OsError("xen: cannot open foreign memory (xenforeignmemory_open)");
  }
  auto pages = std::make_unique<XenPageCache>(
      std::make_unique<ForeignMapper>(fmem, domid, options.writable), kPageCacheSize);
  return std::unique_ptr<Driver>(std::make_unique<XenDriver>(xc, domid, info, *std::move(ram),
                                                             std::move(pages), options.writable));
}

}  // namespace vmemfs::drivers
