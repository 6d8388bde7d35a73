#include "drivers/libvirt_driver.h"

#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <optional>
#include <utility>
#include <vector>

#include "drivers/libvirt_connection.h"
#include "drivers/libvirt_monitor.h"
#include "drivers/phys_map.h"
#include "drivers/proc_files.h"
#include "drivers/qemu_layout.h"
#include "drivers/qemu_memory.h"

namespace vmemfs::drivers {
namespace {

constexpr size_t kMaxDomainName = 256;
constexpr size_t kMaxUri = 1024;
// libvirt's RPC refuses larger memory peeks (REMOTE_DOMAIN_MEMORY_PEEK_BUFFER_MAX).
constexpr size_t kMaxPeek = 65536;

// libvirt starts QEMU with `-name guest=NAME,debug-threads=on` (',' doubled inside NAME).
bool IsQemuOfDomain(pid_t pid, const std::string& name) {
  Result<std::string> cmdline = ReadSmallFile("/proc/" + std::to_string(pid) + "/cmdline");
  if (!cmdline) return false;
  std::string escaped;
  for (char c : name) escaped += (c == ',') ? std::string(",,") : std::string(1, c);
  const std::string want = std::string("-name") + '\0' + "guest=" + escaped;
  const size_t at = cmdline->find(want);
  if (at == std::string::npos) return false;
  const size_t after = at + want.size();
  return after == cmdline->size() || (*cmdline)[after] == ',' || (*cmdline)[after] == '\0';
}

struct QemuProcess {
  pid_t pid;
  std::string how;  // how the pid was learned
};

// The domain's QEMU on this machine, or nullopt.
std::optional<QemuProcess> FindQemuProcess(QemuMonitor& monitor, const std::string& name) {
  std::vector<QemuProcess> candidates;
  if (Result<std::string> cpus = monitor.Qmp("query-cpus-fast", "")) {
    if (Result<std::vector<int64_t>> threads = ParseCpuThreads(*cpus); threads) {
      if (!threads->empty() && threads->front() > 0) {
        if (Result<pid_t> process = ProcessOfThread(threads->front())) {
          candidates.push_back({*process, "the process of vCPU 0's thread (query-cpus-fast)"});
        }
      }
    }
  }
  const std::string pid_file = "/run/libvirt/qemu/" + name + ".pid";
  if (Result<std::string> text = ReadSmallFile(pid_file)) {
    if (std::optional<pid_t> pid = ParsePid(*text)) candidates.push_back({*pid, pid_file});
  }
  for (QemuProcess& candidate : candidates) {
    if (!IsQemuOfDomain(candidate.pid, name)) continue;
    candidate.how += ", its command line naming the domain";
    return candidate;
  }
  return std::nullopt;
}

// What libvirt's event callbacks reach (through a heap shared_ptr libvirt frees when done):
// only the flag, so a late callback never touches a destroyed driver.
struct GoneFlag {
  std::atomic<bool> gone{false};
};
void FreeGoneFlag(void* opaque) { delete static_cast<std::shared_ptr<GoneFlag>*>(opaque); }
void SetGone(void* opaque) { (*static_cast<std::shared_ptr<GoneFlag>*>(opaque))->gone = true; }

// Only a stop ends the QEMU we read. A reset, a reboot (of either kind, libvirt's "fake"
// reboot included) or a crash all happen inside the same QEMU; undefining a running persistent
// domain leaves it running as a transient one.
int OnLifecycle(virConnectPtr, virDomainPtr, int event, int, void* opaque) {
  if (event == VIR_DOMAIN_EVENT_STOPPED) SetGone(opaque);
  return 0;
}
void OnClose(virConnectPtr, int, void* opaque) { SetGone(opaque); }

// Our run state for libvirt's domain state; nullopt for a domain whose QEMU is gone.
std::optional<RunState> StateFromLibvirt(int state) {
  switch (state) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED:
    case VIR_DOMAIN_SHUTDOWN:  // shutting down, still running
      return RunState::kRunning;
    case VIR_DOMAIN_SHUTOFF:  // libvirt's QEMU driver reports this once QEMU has exited
      return std::nullopt;
    default:
      // Paused, suspended to RAM, or crashed: QEMU holds a guest that does not run. A crashed
      // domain's QEMU lives on with the guest's memory (on_crash=preserve, or until libvirt
      // resets it in place for on_crash=restart); nostate is not seen on a live domain.
      return RunState::kPaused;
  }
}

Result<virDomainPtr> LookupDomain(virConnectPtr conn, const LibvirtSpec& spec) {
  if (virDomainPtr dom = virDomainLookupByName(conn, spec.domain.c_str())) return dom;
  if (virDomainPtr dom = virDomainLookupByUUIDString(conn, spec.domain.c_str())) return dom;
  return NotFoundError("no domain named " + spec.domain + " on " + spec.uri);
}

class LibvirtDriver final : public Driver {
 public:
  LibvirtDriver(const LibvirtSpec& spec, bool writable) : spec_(spec), writable_(writable) {}

  ~LibvirtDriver() override {
    if (event_id_ >= 0) virConnectDomainEventDeregisterAny(conn_.get(), event_id_);
    if (close_registered_) virConnectUnregisterCloseCallback(conn_.get(), OnClose);
  }

  Status Open() {
    VMEMFS_ASSIGN_OR_RETURN(conn_, OpenLibvirtConnection(spec_.uri));
    VMEMFS_ASSIGN_OR_RETURN(virDomainPtr dom, LookupDomain(conn_.get(), spec_));
    dom_.reset(dom);
    VMEMFS_TRY(ReadIdentity());
    VMEMFS_TRY(Subscribe());
    if (State() == RunState::kGone) return UnavailableError("domain " + name_ + " is not running");
    monitor_ = std::make_unique<LibvirtMonitor>(dom_.get(), "libvirt domain " + name_);
    VMEMFS_ASSIGN_OR_RETURN(std::vector<HostRange> host, ReadHostRanges(*monitor_));
    rom_ = TakeRom(host);
    VMEMFS_ASSIGN_OR_RETURN(ram_, PhysMap<>::FromRanges(MergedRanges(host)));
    VMEMFS_ASSIGN_OR_RETURN(std::string regs, monitor_->Hmp("info registers -a"));
    VMEMFS_ASSIGN_OR_RETURN(std::vector<RegisterSet> cpus, ParseInfoRegistersAll(regs));
    vcpus_ = static_cast<unsigned>(cpus.size());
    return OpenMemory(std::move(host));
  }

  std::string_view kind() const override { return "libvirt"; }
  std::span<const PhysRange> ranges() const override { return ram_.ranges(); }
  std::span<const RomRange> rom() const override { return rom_; }
  bool live() const override { return true; }
  bool writable() const override { return writable_ && memory_ != nullptr; }
  unsigned vcpu_count() const override { return vcpus_; }

  Status ReadPhys(uint64_t pa, std::span<std::byte> out) override {
    VMEMFS_TRY(CheckNotGone());
    if (memory_ == nullptr) return Peek(pa, out);
    return Notice(memory_->Read(pa, out));
  }

  Status WritePhys(uint64_t pa, std::span<const std::byte> in) override {
    if (!writable_) return UnsupportedError(Source() + ": opened read-only");
    if (memory_ == nullptr) return UnsupportedError(Source() + ": memory peek cannot write");
    VMEMFS_TRY(CheckNotGone());
    return Notice(memory_->Write(pa, in));
  }

  std::span<const std::byte> Mapped(uint64_t pa) const override {
    if (memory_ == nullptr || gone_->gone) return {};
    return memory_->Mapped(pa);
  }

  std::optional<FileExtent> FileBacked(uint64_t pa) const override {
    if (memory_ == nullptr || gone_->gone) return std::nullopt;
    return memory_->FileBacked(pa);
  }

  Status Pause() override {
    VMEMFS_TRY(CheckNotGone());
    if (virDomainSuspend(dom_.get()) < 0) return Notice(LibvirtError(Source() + ": suspend"));
    return Status::Ok();
  }

  Status Resume() override {
    VMEMFS_TRY(CheckNotGone());
    if (virDomainResume(dom_.get()) < 0) return Notice(LibvirtError(Source() + ": resume"));
    return Status::Ok();
  }

  std::optional<RunState> State() override {
    if (gone_->gone) return RunState::kGone;
    const std::optional<RunState> state = AskLibvirt();
    if (!state) MarkGone();
    return state.value_or(RunState::kGone);
  }

  Result<RegisterSet> Registers(unsigned vcpu) override {
    VMEMFS_TRY(CheckNotGone());
    Result<RegisterSet> regs = ReadRegisters(*monitor_, vcpu);
    if (!regs) return Notice(regs.error());
    return regs;
  }

  std::vector<Fact> Describe() const override {
    return {{"format", "libvirt domain (QEMU)"},
            {"uri", spec_.uri},
            {"domain", name_},
            {"uuid", uuid_},
            {"pid", qemu_ ? std::to_string(qemu_->pid) : "unknown", qemu_ ? qemu_->how : ""},
            {"read_path", ReadPath(),
             memory_ ? "QEMU's RAM on this host, no libvirt call per read"
                     : "virDomainMemoryPeek through " + spec_.uri + ", one round trip per 64 KiB"},
            {"access", memory_ ? memory_->method() : "virDomainMemoryPeek (slow: 64 KiB per call)",
             access_how_}};
  }

  // Which of the three ways a read of pmem goes, in a word a script can test.
  std::string ReadPath() const {
    if (memory_) return memory_->all_mapped() ? "local-shared-memory" : "local-process-memory";
    return IsLocalLibvirtUri(spec_.uri) ? "local-peek" : "remote-peek";
  }

 private:
  std::string Source() const { return "libvirt domain " + name_ + " (" + spec_.uri + ")"; }

  Status ReadIdentity() {
    const char* name = virDomainGetName(dom_.get());
    char uuid[VIR_UUID_STRING_BUFLEN] = {};
    if (name == nullptr || virDomainGetUUIDString(dom_.get(), uuid) < 0) {
      return LibvirtError("libvirt domain " + spec_.domain);
    }
    name_ = name;
    uuid_ = uuid;
    return Status::Ok();
  }

  Status Subscribe() {
    event_id_ = virConnectDomainEventRegisterAny(
        conn_.get(), dom_.get(), VIR_DOMAIN_EVENT_ID_LIFECYCLE,
        VIR_DOMAIN_EVENT_CALLBACK(OnLifecycle), new std::shared_ptr<GoneFlag>(gone_), FreeGoneFlag);
    if (event_id_ < 0) return LibvirtError(Source() + ": lifecycle events");
    close_registered_ =
        virConnectRegisterCloseCallback(conn_.get(), OnClose, new std::shared_ptr<GoneFlag>(gone_),
                                        FreeGoneFlag) == 0;
    return Status::Ok();
  }

  // QEMU's own memory when it is on this machine and we may read it; else peek, saying why.
  Status OpenMemory(std::vector<HostRange> host) {
    if (spec_.access == LibvirtAccess::kPeek) {
      access_how_ = "access=peek in the source";
      return Status::Ok();
    }
    if (!IsLocalLibvirtUri(spec_.uri)) {
      access_how_ = "the URI names another host, where QEMU's memory is out of reach";
      return Status::Ok();
    }
    qemu_ = FindQemuProcess(*monitor_, name_);
    if (!qemu_) {
      access_how_ = "no QEMU process of the domain found on this host";
      return Status::Ok();
    }
    Result<std::unique_ptr<QemuMemory>> memory =
        QemuMemory::Open(qemu_->pid, std::move(host), writable_, RamAccess::kAuto);
    // No ptrace rights (another user's QEMU, Yama): peek still works.
    if (!memory) {
      access_how_ = "QEMU's memory cannot be opened: " + memory.error().message();
      return Status::Ok();
    }
    memory_ = std::move(*memory);
    access_how_ = "QEMU's process on this host; RAM from info mtree -f and gpa2hva";
    return Status::Ok();
  }

  // Peeks in pieces that stay inside one RAM range and under libvirt's size limit.
  Status Peek(uint64_t pa, std::span<std::byte> out) {
    VMEMFS_TRY(ram_.ForEachPiece(
        pa, out.size(), [&](const PhysRun<>&, uint64_t at, uint64_t done, uint64_t n) {
          for (uint64_t piece = 0; piece < n; piece += kMaxPeek) {
            const size_t size = static_cast<size_t>(std::min<uint64_t>(n - piece, kMaxPeek));
            if (virDomainMemoryPeek(dom_.get(), at + piece, size, out.data() + done + piece,
                                    VIR_MEMORY_PHYSICAL) < 0) {
              return Notice(LibvirtError(Source() + ": memory peek"));
            }
          }
          return Status::Ok();
        }));
    return CheckNotGone();  // a peek racing with destruction may have read a dying QEMU
  }

  Status CheckNotGone() const {
    if (gone_->gone) return UnavailableError(Source() + ": domain is gone");
    return Status::Ok();
  }

  // The domain's state as libvirt sees it now; nullopt once its QEMU is gone: shut off, no such
  // domain any more, the connection lost, or the QEMU process we read has exited. A query that
  // fails otherwise (a busy libvirtd) says nothing about the domain: paused, for now.
  std::optional<RunState> AskLibvirt() {
    if (memory_ && memory_->gone()) return std::nullopt;
    int state = 0;
    int reason = 0;
    if (virDomainGetState(dom_.get(), &state, &reason, 0) == 0) return StateFromLibvirt(state);
    if (virGetLastErrorCode() == VIR_ERR_NO_DOMAIN || virConnectIsAlive(conn_.get()) != 1) {
      return std::nullopt;
    }
    return RunState::kPaused;
  }

  void MarkGone() {
    gone_->gone = true;
    if (memory_) memory_->MarkGone();
  }

  // A failure that may mean the domain went away (libvirt's "not running", a dead process)
  // makes it gone for good only when libvirt agrees: calls also fail while the domain lives on,
  // during a reset, a crash or another client's job.
  Status Notice(Status status) {
    const bool maybe_gone =
        status.code() == ErrorCode::kUnavailable || status.code() == ErrorCode::kOs;
    if (maybe_gone && !gone_->gone && !AskLibvirt()) MarkGone();
    if (gone_->gone && !status.ok()) return UnavailableError(Source() + ": domain is gone");
    return status;
  }

  const LibvirtSpec spec_;
  const bool writable_;
  LibvirtEventLoop::Ref loop_;  // declared before conn_: outlives the connection
  LibvirtConnection conn_;
  LibvirtDomain dom_;
  std::shared_ptr<GoneFlag> gone_ = std::make_shared<GoneFlag>();
  int event_id_ = -1;
  bool close_registered_ = false;
  std::string name_;
  std::string uuid_;
  std::unique_ptr<LibvirtMonitor> monitor_;
  PhysMap<> ram_;
  std::vector<RomRange> rom_;
  unsigned vcpus_ = 0;
  std::optional<QemuProcess> qemu_;
  std::string access_how_;  // why memory is read the way it is
  std::unique_ptr<QemuMemory> memory_;
};

bool HasControl(std::string_view text) {
  return std::any_of(text.begin(), text.end(),
                     [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

Status ApplyParameter(std::string_view param, LibvirtSpec& spec) {
  const size_t eq = param.find('=');
  const std::string_view key = param.substr(0, eq);
  const std::string_view value = eq == std::string_view::npos ? "" : param.substr(eq + 1);
  if (key == "uri" && !value.empty() && value.size() <= kMaxUri) {
    spec.uri = std::string(value);
  } else if (key == "access" && (value == "auto" || value == "peek")) {
    spec.access = value == "peek" ? LibvirtAccess::kPeek : LibvirtAccess::kAuto;
  } else {
    return InvalidArgumentError("bad libvirt parameter '" + std::string(param.substr(0, 64)) +
                                "' (expected uri=URI or access=auto|peek)");
  }
  return Status::Ok();
}

}  // namespace

Result<LibvirtSpec> ParseLibvirtSpec(std::string_view rest) {
  if (HasControl(rest)) return InvalidArgumentError("control character in libvirt source");
  LibvirtSpec spec;
  const size_t query = rest.find('?');
  spec.domain = std::string(rest.substr(0, query));
  if (spec.domain.empty() || spec.domain.size() > kMaxDomainName) {
    return InvalidArgumentError("libvirt source needs a domain name or UUID of 1 to 256 bytes");
  }
  if (query == std::string_view::npos) return spec;
  std::string_view params = rest.substr(query + 1);
  while (true) {
    const size_t amp = params.find('&');
    VMEMFS_TRY(ApplyParameter(params.substr(0, amp), spec));
    if (amp == std::string_view::npos) break;
    params.remove_prefix(amp + 1);
  }
  return spec;
}

bool IsLocalLibvirtUri(std::string_view uri) {
  const size_t scheme_end = uri.find("://");
  if (scheme_end == std::string_view::npos) return false;  // aliases may name any host
  const std::string_view authority =
      uri.substr(scheme_end + 3, uri.find('/', scheme_end + 3) - (scheme_end + 3));
  return authority.empty() || authority == "localhost";
}

Result<std::unique_ptr<Driver>> OpenLibvirt(const LibvirtSpec& spec, const OpenOptions& options) {
  auto driver = std::make_unique<LibvirtDriver>(spec, options.writable);
  VMEMFS_TRY(driver->Open());
  return std::unique_ptr<Driver>(std::move(driver));
}

Result<std::unique_ptr<Driver>> OpenLibvirt(std::string_view rest, const OpenOptions& options) {
  VMEMFS_ASSIGN_OR_RETURN(LibvirtSpec spec, ParseLibvirtSpec(rest));
  return OpenLibvirt(spec, options);
}

}  // namespace vmemfs::drivers
