#include "drivers/gdb_driver.h"

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

#include "base/hex.h"
#include "drivers/phys_map.h"
#include "drivers/qemu_layout.h"

namespace vmemfs::drivers {
namespace {

using std::chrono::milliseconds;

constexpr uint64_t kGiB = uint64_t{1} << 30;
// How long an interrupt may take before we ask with '?' (the 0x03 can be lost when the stub
// still waits for an ack of an earlier packet, e.g. after someone else stopped the VM).
constexpr milliseconds kInterruptWait{1000};
constexpr milliseconds kMonitorTimeout{5000};
// Sanity bounds on what the stub reports.
constexpr size_t kMaxThreads = 4096;
constexpr int kMaxThreadInfoRounds = 256;
// target.xml is a few hundred bytes (the register lists are xi:included, not read here).
constexpr size_t kMaxTargetXml = 64 * 1024;

std::string HexNumber(uint64_t v) { return Hex(v).substr(2); }

// "", "K", "MiB", "g", ... as a power of 1024; nullopt for anything else.
std::optional<int> SuffixShift(std::string_view suffix) {
  if (suffix.size() == 3 && suffix.substr(1) == "iB") suffix.remove_suffix(2);
  if (suffix.size() == 2 && suffix.back() == 'B') suffix.remove_suffix(1);
  if (suffix.empty() || suffix == "B") return 0;
  if (suffix.size() != 1) return std::nullopt;
  switch (suffix[0] | 0x20) {
    case 'k':
      return 10;
    case 'm':
      return 20;
    case 'g':
      return 30;
    case 't':
      return 40;
  }
  return std::nullopt;
}

Result<uint64_t> ParseSize(std::string_view text) {
  uint64_t value = 0;
  int base = 10;
  if (text.size() > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
    text.remove_prefix(2);
    base = 16;
  }
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc() || end == text.data()) {
    return InvalidArgumentError("bad ram size '" + std::string(text) + "'");
  }
  std::string_view suffix(end, static_cast<size_t>(text.data() + text.size() - end));
  const std::optional<int> shift = SuffixShift(suffix);
  if (!shift) return InvalidArgumentError("bad ram size suffix '" + std::string(suffix) + "'");
  // 2^52: the most physical address bits x86 defines.
  if (value == 0 || value > (uint64_t{1} << (52 - *shift))) {
    return InvalidArgumentError("implausible ram size '" + std::string(text) + "'");
  }
  return value << *shift;
}

}  // namespace

std::vector<PhysRange> Q35RamRanges(uint64_t size) {
  // QEMU's q35 puts RAM below 2 GiB when there are 2.75 GiB or more, the rest above 4 GiB.
  constexpr uint64_t kLowMemSplit = 0xb0000000;
  if (size < kLowMemSplit) return {{0, size}};
  return {{0, 2 * kGiB}, {4 * kGiB, 4 * kGiB + size - 2 * kGiB}};
}

Result<GdbSpec> ParseGdbSpec(std::string_view rest) {
  GdbSpec spec;
  const size_t q = rest.find('?');
  spec.endpoint = std::string(rest.substr(0, q));
  if (spec.endpoint.empty())
    return InvalidArgumentError("expected gdb:HOST:PORT or gdb:unix:/path");
  if (q == std::string_view::npos) return spec;
  std::string_view query = rest.substr(q + 1);
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view param = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (param.rfind("ram=", 0) != 0) {
      return InvalidArgumentError("unknown option '" + std::string(param) + "' (known: ram=SIZE)");
    }
    VMEMFS_ASSIGN_OR_RETURN(spec.ram_size, ParseSize(param.substr(4)));
  }
  return spec;
}

namespace {

class GdbDriver final : public Driver {
 public:
  GdbDriver(std::unique_ptr<GdbRemote> remote, bool writable)
      : remote_(std::move(remote)), writable_(writable) {}

  ~GdbDriver() override {
    std::lock_guard lock(remote_->mutex());
    if (remote_->gone()) return;
    // The stub hears nothing while the VM runs; detaching continues it either way.
    if (state_ == RunState::kRunning && !StopLocked().ok()) return;
    Result<std::string> detached = remote_->Command(DetachPacket());
    // A stub that refuses to detach would leave the VM stopped: let it run at least.
    if (detached && *detached != "OK") (void)ContinueLocked();
    remote_->Close();
  }

  // The set-up while QEMU holds the VM stopped (it stops it when a debugger connects).
  Status Init(std::optional<uint64_t> ram_size) {
    std::lock_guard lock(remote_->mutex());
    VMEMFS_TRY(remote_->Handshake());
    const bool was_running = remote_->async_stops() > 0;
    state_ = RunState::kPaused;
    VMEMFS_ASSIGN_OR_RETURN(std::string mode, remote_->Command("Qqemu.PhyMemMode:1"));
    if (mode != "OK") {
      return UnsupportedError(remote_->name() +
                              ": gdb stub has no physical memory mode (Qqemu.PhyMemMode); "
                              "QEMU's gdbstub is needed");
    }
    VMEMFS_TRY(LoadThreads());
    VMEMFS_TRY(LoadArchitecture());
    if (ram_size) {
      VMEMFS_ASSIGN_OR_RETURN(ram_, PhysMap<>::FromRanges(Q35RamRanges(*ram_size)));
      ram_source_ = "?ram=" + std::to_string(*ram_size) + " in the source (q35 layout)";
    } else {
      VMEMFS_TRY(ProbeRam());
    }
    seen_stops_ = remote_->async_stops();
    if (was_running) VMEMFS_TRY(ContinueLocked());
    return Status();
  }

  std::string_view kind() const override { return "gdb"; }
  std::span<const PhysRange> ranges() const override { return ram_.ranges(); }
  std::span<const RomRange> rom() const override { return rom_; }
  bool live() const override { return true; }
  bool writable() const override { return writable_; }
  unsigned vcpu_count() const override { return static_cast<unsigned>(threads_.size()); }

  Status ReadPhys(uint64_t pa, std::span<std::byte> out) override {
    VMEMFS_TRY(ram_.CheckCovered(pa, out.size()));
    const size_t chunk = std::max<size_t>(16, remote_->packet_size() / 2);
    return WithStopped([&]() -> Status {
      for (size_t done = 0; done < out.size();) {
        const size_t n = std::min(chunk, out.size() - done);
        VMEMFS_TRY(ReadChunk(pa + done, out.subspan(done, n)));
        done += n;
      }
      return Status();
    });
  }

  Status WritePhys(uint64_t pa, std::span<const std::byte> in) override {
    if (!writable_) return UnsupportedError(remote_->name() + ": opened read-only");
    VMEMFS_TRY(ram_.CheckCovered(pa, in.size()));
    // "M<addr>,<len>:" + 2 hex digits per byte must fit the stub's packet.
    const size_t chunk = std::max<size_t>(16, (remote_->packet_size() - 48) / 2 & ~size_t{15});
    return WithStopped([&]() -> Status {
      for (size_t done = 0; done < in.size();) {
        const size_t n = std::min(chunk, in.size() - done);
        const std::string_view bytes(reinterpret_cast<const char*>(in.data() + done), n);
        VMEMFS_TRY(
            ExpectOk("M" + HexNumber(pa + done) + "," + HexNumber(n) + ":" + rsp::ToHex(bytes)));
        done += n;
      }
      return Status();
    });
  }

  Status Pause() override {
    std::lock_guard lock(remote_->mutex());
    resume_after_batch_ = false;  // the user's pause outlasts any batch
    VMEMFS_TRY(SyncLocked());
    return state_ == RunState::kRunning ? StopLocked() : Status();
  }

  Status Resume() override {
    std::lock_guard lock(remote_->mutex());
    resume_after_batch_ = false;
    VMEMFS_TRY(SyncLocked());
    return state_ == RunState::kPaused ? ContinueLocked() : Status();
  }

  // One stop for a whole batch of reads: each stop and continue costs a round trip and a
  // pause of the guest, thousands of times in a kernel search or a task walk.
  bool BeginBatch() override {
    std::lock_guard lock(remote_->mutex());
    if (batches_++ == 0 && SyncLocked().ok() && state_ == RunState::kRunning) {
      resume_after_batch_ = StopLocked().ok();
    }
    // Held: stopped by this batch or an earlier one (a user's pause may end earlier).
    return resume_after_batch_;
  }

  void EndBatch() override {
    std::lock_guard lock(remote_->mutex());
    if (batches_ == 0 || --batches_ > 0 || !resume_after_batch_) return;
    resume_after_batch_ = false;
    if (SyncLocked().ok() && state_ == RunState::kPaused) (void)ContinueLocked();
  }

  std::optional<RunState> State() override {
    std::lock_guard lock(remote_->mutex());
    (void)SyncLocked();
    return state_;
  }

  Result<RegisterSet> Registers(unsigned vcpu) override {
    if (vcpu >= threads_.size())
      return NotFoundError(remote_->name() + ": no vCPU " + std::to_string(vcpu));
    RegisterSet regs;
    VMEMFS_TRY(WithStopped([&]() -> Status {
      VMEMFS_TRY(ExpectOk("Hg" + threads_[vcpu]));
      VMEMFS_ASSIGN_OR_RETURN(std::string hex, remote_->Command("g"));
      VMEMFS_TRY(ReplyError(hex, "g"));
      const std::optional<std::string> bytes = rsp::FromHex(hex);
      if (!bytes) return BadDataError(remote_->name() + ": unreadable register block");
      Result<RegisterSet> decoded = DecodeQemuX86Registers(*bytes, arch_);
      if (!decoded) return decoded.error().WithContext(remote_->name());
      regs = *decoded;
      return Status();
    }));
    return regs;
  }

  Status SetRegister(unsigned vcpu, Register reg, uint64_t value) override {
    if (!writable_) return UnsupportedError(remote_->name() + ": opened read-only");
    if (vcpu >= threads_.size())
      return NotFoundError(remote_->name() + ": no vCPU " + std::to_string(vcpu));
    const std::optional<GdbRegisterSlot> slot = FindGdbRegister(arch_, reg);
    if (!slot) {
      return UnsupportedError(remote_->name() + ": the stub cannot set " +
                              std::string(RegisterName(reg)));
    }
    if (slot->size < 8 && value >> (8 * slot->size) != 0) {
      return InvalidArgumentError(remote_->name() + ": " + std::string(RegisterName(reg)) +
                                  " has " + std::to_string(slot->size) + " bytes on " +
                                  std::string(GdbArchName(arch_)));
    }
    std::string bytes(slot->size, '\0');
    std::memcpy(bytes.data(), &value, slot->size);
    return WithStopped([&]() -> Status {
      VMEMFS_TRY(ExpectOk("Hg" + threads_[vcpu]));
      return ExpectOk("P" + HexNumber(slot->number) + "=" + rsp::ToHex(bytes));
    });
  }

  std::vector<Fact> Describe() const override {
    uint64_t ram = 0;
    for (const PhysRange& r : ram_.ranges()) ram += r.size();
    return {
        {"endpoint", remote_->name()},
        {"stub-features", remote_->features(), "qSupported"},
        {"packet-size", std::to_string(remote_->packet_size()), "qSupported"},
        {"acks", remote_->no_ack() ? "no-ack mode" : "acknowledged"},
        {"architecture", std::string(GdbArchName(arch_)), arch_source_},
        {"ram-size", std::to_string(ram), ram_source_},
        {"access", "reads stop the VM briefly", "QEMU's gdbstub answers only while stopped"},
    };
  }

 private:
  // Runs `work` with the VM stopped: stops it first if it runs and continues it afterwards.
  template <typename Work>
  Status WithStopped(Work work) {
    std::lock_guard lock(remote_->mutex());
    VMEMFS_TRY(SyncLocked());
    const bool was_running = state_ == RunState::kRunning;
    if (was_running) VMEMFS_TRY(StopLocked());
    Status status = work();
    if (remote_->gone()) {
      state_ = RunState::kGone;
      return status.ok() ? UnavailableError(remote_->name() + ": gdb stub is gone") : status;
    }
    if (was_running) {
      Status resumed = ContinueLocked();
      if (status.ok()) status = std::move(resumed);
    }
    return status;
  }

  // Notices a lost connection and stops reported by the stub (someone else stopped the VM).
  Status SyncLocked() {
    if (!remote_->gone()) {
      Result<bool> drained = remote_->DrainAsync();
      (void)drained;
    }
    if (remote_->gone()) {
      state_ = RunState::kGone;
      return UnavailableError(remote_->name() + ": gdb stub connection is gone");
    }
    if (remote_->async_stops() != seen_stops_) {
      seen_stops_ = remote_->async_stops();
      if (state_ == RunState::kRunning) state_ = RunState::kPaused;
    }
    return Status();
  }

  Status StopLocked() {
    VMEMFS_ASSIGN_OR_RETURN(bool stopped, remote_->Interrupt(kInterruptWait));
    if (!stopped) {
      // '?' is answered with a stop reply once the VM is stopped (a '$' stops it, too).
      VMEMFS_ASSIGN_OR_RETURN(std::string reply, remote_->Command("?", /*want_stop=*/true));
      if (!rsp::IsStopReply(reply)) {
        return UnavailableError(remote_->name() + ": gdb stub did not stop the VM");
      }
    }
    seen_stops_ = remote_->async_stops();
    state_ = RunState::kPaused;
    return Status();
  }

  Status ContinueLocked() {
    const bool vcont = remote_->features().find("vContSupported+") != std::string::npos;
    VMEMFS_TRY(remote_->Send(vcont ? "vCont;c" : "c"));
    state_ = RunState::kRunning;
    return Status();
  }

  // "D;PID" in multiprocess mode (thread ids "pPID.TID"), else "D".
  std::string DetachPacket() const {
    if (remote_->features().find("multiprocess+") == std::string::npos || threads_.empty() ||
        threads_[0].empty() || threads_[0][0] != 'p') {
      return "D";
    }
    const std::string& id = threads_[0];
    return "D;" + id.substr(1, id.find('.') - 1);
  }

  Status ReplyError(std::string_view reply, std::string_view what) const {
    if (reply.empty())
      return UnsupportedError(remote_->name() + ": gdb stub does not support " + std::string(what));
    if (reply.size() == 3 && reply[0] == 'E') {
      return UnavailableError(remote_->name() + ": gdb stub refused " + std::string(what) + ": " +
                              std::string(reply));
    }
    return Status();
  }

  Status ExpectOk(const std::string& packet) {
    VMEMFS_ASSIGN_OR_RETURN(std::string reply, remote_->Command(packet));
    const std::string what = packet.substr(0, std::min<size_t>(packet.size(), 24));
    VMEMFS_TRY(ReplyError(reply, what));
    if (reply != "OK") return BadDataError(remote_->name() + ": unexpected reply to " + what);
    return Status();
  }

  Status ReadChunk(uint64_t pa, std::span<std::byte> out) {
    VMEMFS_ASSIGN_OR_RETURN(std::string reply,
                            remote_->Command("m" + HexNumber(pa) + "," + HexNumber(out.size())));
    if (reply.size() == 3 && reply[0] == 'E') return FaultError(pa, remote_->name() + ": " + reply);
    const std::optional<std::string> bytes = rsp::FromHex(reply);
    if (!bytes || bytes->size() != out.size()) {
      return BadDataError(remote_->name() + ": bad reply to memory read at " + Hex(pa));
    }
    std::memcpy(out.data(), bytes->data(), out.size());
    return Status();
  }

  Status LoadThreads() {
    std::string packet = "qfThreadInfo";
    for (int round = 0; round < kMaxThreadInfoRounds; ++round) {
      VMEMFS_ASSIGN_OR_RETURN(std::string reply, remote_->Command(packet));
      if (reply == "l" || reply.empty()) break;
      if (reply[0] != 'm') return BadDataError(remote_->name() + ": bad qfThreadInfo reply");
      std::string_view ids = std::string_view(reply).substr(1);
      while (!ids.empty()) {
        const size_t comma = ids.find(',');
        const std::string_view id = ids.substr(0, comma);
        if (id.empty() || id.size() > 40 || threads_.size() >= kMaxThreads) {
          return BadDataError(remote_->name() + ": bad thread list");
        }
        threads_.emplace_back(id);
        ids = comma == std::string_view::npos ? std::string_view() : ids.substr(comma + 1);
      }
      packet = "qsThreadInfo";
    }
    if (threads_.empty()) return BadDataError(remote_->name() + ": gdb stub lists no vCPUs");
    return Status();
  }

  // The register layout: qemu-system-i386's stub sends 4-byte registers in another order.
  Status LoadArchitecture() {
    if (remote_->features().find("qXfer:features:read+") == std::string::npos) {
      arch_source_ = "no target.xml (qXfer:features:read): taken for x86_64";
      return Status();
    }
    std::string xml;
    const size_t chunk = std::max<size_t>(64, remote_->packet_size() - 16);
    for (;;) {
      VMEMFS_ASSIGN_OR_RETURN(std::string reply,
                              remote_->Command("qXfer:features:read:target.xml:" +
                                               HexNumber(xml.size()) + "," + HexNumber(chunk)));
      if (reply.empty() || (reply[0] != 'm' && reply[0] != 'l')) {
        return BadDataError(remote_->name() + ": bad reply to reading target.xml");
      }
      xml.append(reply, 1);
      if (xml.size() > kMaxTargetXml) {
        return BadDataError(remote_->name() + ": target.xml longer than " +
                            std::to_string(kMaxTargetXml) + " bytes");
      }
      if (reply[0] == 'l' || reply.size() == 1) break;
    }
    Result<GdbArch> arch = GdbArchFromTargetXml(xml);
    if (!arch) return arch.error().WithContext(remote_->name());
    arch_ = *arch;
    arch_source_ = "target.xml";
    return Status();
  }

  Status ProbeRam() {
    std::string text;
    VMEMFS_ASSIGN_OR_RETURN(
        std::string reply,
        remote_->CommandWithOutput("qRcmd," + rsp::ToHex("info mtree -f"), &text, kMonitorTimeout));
    if (remote_->gone()) return UnavailableError(remote_->name() + ": gdb stub is gone");
    Result<std::vector<MtreeRange>> layout =
        reply == "OK" ? ParseMtreeMemory(text) : BadDataError("no monitor behind the stub");
    if (layout) rom_ = TakeRom(*layout);
    if (!layout || layout->empty()) {
      return UnsupportedError(
          remote_->name() + ": cannot find the RAM layout (" +
          (layout ? std::string("no RAM listed") : layout.error().message()) +
          " for 'info mtree -f' through the stub); give the RAM size as ?ram=SIZE");
    }
    VMEMFS_ASSIGN_OR_RETURN(ram_, PhysMap<>::FromRanges(MergedRanges(*layout)));
    ram_source_ = "info mtree -f through the stub's monitor (qRcmd)";
    return Status();
  }

  const std::unique_ptr<GdbRemote> remote_;
  const bool writable_;
  // Set by Init, then constant.
  PhysMap<> ram_;
  std::vector<RomRange> rom_;
  std::vector<std::string> threads_;  // thread id of vCPU i, as the stub spells it
  std::string ram_source_;
  GdbArch arch_ = GdbArch::kX86_64;
  std::string arch_source_;
  // Guarded by remote_->mutex().
  RunState state_ = RunState::kPaused;
  uint64_t seen_stops_ = 0;
  int batches_ = 0;                  // batches under way
  bool resume_after_batch_ = false;  // the first batch stopped a running VM
};

}  // namespace

Result<std::unique_ptr<Driver>> OpenGdbRemote(std::unique_ptr<GdbRemote> remote,
                                              std::optional<uint64_t> ram_size,
                                              const OpenOptions& options) {
  auto driver = std::make_unique<GdbDriver>(std::move(remote), options.writable);
  VMEMFS_TRY(driver->Init(ram_size));
  return std::unique_ptr<Driver>(std::move(driver));
}

Result<std::unique_ptr<Driver>> OpenGdb(std::string_view rest, const OpenOptions& options) {
  VMEMFS_ASSIGN_OR_RETURN(GdbSpec spec, ParseGdbSpec(rest));
  VMEMFS_ASSIGN_OR_RETURN(std::unique_ptr<GdbRemote> remote,
                          GdbRemote::Connect(spec.endpoint, GdbRemote::Options{}));
  return OpenGdbRemote(std::move(remote), spec.ram_size, options);
}

}  // namespace vmemfs::drivers
