#include "drivers/qemu_driver.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <thread>
#include <utility>

#include "drivers/phys_map.h"
#include "drivers/proc_files.h"
#include "drivers/qemu_layout.h"
#include "drivers/qmp_client.h"

namespace vmemfs::drivers {
namespace {

struct QemuProcess {
  pid_t pid;
  std::string how;  // how the pid was learned
};

// QEMU's pid: the socket's peer, confirmed by vCPU 0's thread belonging to it (a proxy in
// front of the socket, or a socket from another host namespace, would be caught here).
Result<QemuProcess> FindQemuProcess(const QmpClient& qmp,
                                    const std::vector<int64_t>& vcpu_threads) {
  std::optional<pid_t> tgid;
  if (!vcpu_threads.empty()) {
    if (Result<pid_t> process = ProcessOfThread(vcpu_threads[0])) tgid = *process;
  }
  const std::optional<pid_t> peer = qmp.peer_pid();
  const std::string from_peer = "from the QMP socket's peer credentials";
  const std::string from_thread = "the process of vCPU 0's thread (query-cpus-fast)";
  if (peer && tgid && *peer != *tgid) {
    return UnsupportedError("QMP peer pid " + std::to_string(*peer) +
                            " does not run the vCPUs (thread group " + std::to_string(*tgid) + ")");
  }
  if (peer && tgid) return QemuProcess{*peer, from_peer + ", which is " + from_thread};
  if (tgid) return QemuProcess{*tgid, from_thread};
  if (peer) return QemuProcess{*peer, from_peer};
  return UnsupportedError("cannot learn QEMU's pid (no peer credentials, no vCPU threads)");
}

// Calls on_gone once when QEMU exits or the QMP socket hangs up; stops with the driver.
class GoneWatcher {
 public:
  GoneWatcher(pid_t pid, int socket_fd, QemuMemory* memory)
      : pidfd_(static_cast<int>(syscall(SYS_pidfd_open, pid, 0))),
        stop_(eventfd(0, EFD_CLOEXEC)),
        thread_([this, pid, socket_fd, memory] { Run(pid, socket_fd, memory); }) {}
  ~GoneWatcher() {
    const uint64_t one = 1;
    if (write(stop_, &one, sizeof one) < 0) {
    }  // nothing to do: the join below still ends
    thread_.join();
    if (pidfd_ >= 0) close(pidfd_);
    close(stop_);
  }

 private:
  void Run(pid_t pid, int socket_fd, QemuMemory* memory) {
    // Without pidfd (kernel < 5.3) the process is polled every 200 ms instead.
    struct pollfd fds[3] = {{stop_, POLLIN, 0}, {socket_fd, 0, 0}, {pidfd_, POLLIN, 0}};
    const nfds_t n = pidfd_ >= 0 ? 3 : 2;
    while (true) {
      const int ready = poll(fds, n, pidfd_ >= 0 ? -1 : 200);
      if (ready < 0 && errno != EINTR) return;
      if (fds[0].revents != 0) return;
      const bool dead = (n == 3 && fds[2].revents != 0) || (kill(pid, 0) != 0 && errno == ESRCH);
      if (dead || fds[1].revents != 0) {
        memory->MarkGone();
        return;
      }
    }
  }

  const int pidfd_;
  const int stop_;
  std::thread thread_;
};

class QemuDriver final : public Driver {
 public:
  QemuDriver(std::unique_ptr<QmpClient> qmp, QemuProcess process,
             std::unique_ptr<QemuMemory> memory, PhysMap<> ram, std::vector<RomRange> rom,
             unsigned vcpus, std::string accel, bool writable)
      : qmp_(std::move(qmp)),
        process_(std::move(process)),
        memory_(std::move(memory)),
        ram_(std::move(ram)),
        rom_(std::move(rom)),
        vcpus_(vcpus),
        accel_(std::move(accel)),
        writable_(writable),
        watcher_(process_.pid, qmp_->fd_for_hangup(), memory_.get()) {}

  std::string_view kind() const override { return "qemu"; }
  std::span<const PhysRange> ranges() const override { return ram_.ranges(); }
  std::span<const RomRange> rom() const override { return rom_; }
  bool live() const override { return true; }
  bool writable() const override { return writable_; }
  unsigned vcpu_count() const override { return vcpus_; }

  Status ReadPhys(uint64_t pa, std::span<std::byte> out) override { return memory_->Read(pa, out); }
  Status WritePhys(uint64_t pa, std::span<const std::byte> in) override {
    if (!writable_) return UnsupportedError(qmp_->name() + ": opened read-only");
    return memory_->Write(pa, in);
  }
  std::span<const std::byte> Mapped(uint64_t pa) const override { return memory_->Mapped(pa); }
  std::optional<FileExtent> FileBacked(uint64_t pa) const override {
    return memory_->FileBacked(pa);
  }

  Status Pause() override { return Command("stop"); }
  Status Resume() override { return Command("cont"); }

  std::optional<RunState> State() override {
    if (memory_->gone()) return RunState::kGone;
    Result<std::string> status = qmp_->Qmp("query-status", "");
    if (!qmp_->connected()) memory_->MarkGone();
    if (memory_->gone()) return RunState::kGone;
    Result<RunState> state = status ? ParseQueryStatus(*status) : status.error();
    // A QEMU that does not answer in time is not running the guest for us either.
    return state ? *state : RunState::kPaused;
  }

  Result<RegisterSet> Registers(unsigned vcpu) override {
    if (memory_->gone()) return UnavailableError(qmp_->name() + ": QEMU is gone");
    Result<RegisterSet> regs = ReadRegisters(*qmp_, vcpu);
    if (!regs) return regs.error().WithContext(qmp_->name());
    return regs;
  }

  Status SetRegister(unsigned, Register, uint64_t) override {
    // QMP and HMP have no command that sets a vCPU register (the gdbstub has one).
    return UnsupportedError(qmp_->name() + ": QEMU's monitor cannot set registers");
  }

  std::vector<Fact> Describe() const override {
    return {{"qmp-socket", qmp_->name()},
            {"pid", std::to_string(process_.pid), process_.how},
            {"qemu-version", qmp_->version(), "QMP greeting"},
            {"accel", accel_, "query-kvm"},
            {"ram-access", memory_->method(),
             "RAM from info mtree -f and gpa2hva, shared files from /proc/PID/maps"}};
  }

 private:
  Status Command(std::string_view command) {
    if (memory_->gone()) return UnavailableError(qmp_->name() + ": QEMU is gone");
    Result<std::string> r = qmp_->Qmp(command, "");
    if (!qmp_->connected()) memory_->MarkGone();
    return r.status().WithContext(qmp_->name());
  }

  const std::unique_ptr<QmpClient> qmp_;
  const QemuProcess process_;
  const std::unique_ptr<QemuMemory> memory_;
  const PhysMap<> ram_;
  const std::vector<RomRange> rom_;
  const unsigned vcpus_;
  const std::string accel_;
  const bool writable_;
  GoneWatcher watcher_;  // last: stops before the members it uses go away
};

Result<std::unique_ptr<Driver>> Open(const std::string& path, const OpenOptions& options,
                                     const QemuOptions& qemu_options) {
  VMEMFS_ASSIGN_OR_RETURN(std::unique_ptr<QmpClient> qmp,
                          QmpClient::Connect(path, QmpOptions{qemu_options.timeout}));
  VMEMFS_ASSIGN_OR_RETURN(std::string cpus_json, qmp->Qmp("query-cpus-fast", ""));
  VMEMFS_ASSIGN_OR_RETURN(std::vector<int64_t> threads, ParseCpuThreads(cpus_json));
  VMEMFS_ASSIGN_OR_RETURN(QemuProcess process, FindQemuProcess(*qmp, threads));
  VMEMFS_ASSIGN_OR_RETURN(std::string kvm_json, qmp->Qmp("query-kvm", ""));
  VMEMFS_ASSIGN_OR_RETURN(std::string accel, ParseAccel(kvm_json));
  VMEMFS_ASSIGN_OR_RETURN(std::vector<HostRange> host, ReadHostRanges(*qmp));
  std::vector<RomRange> rom = TakeRom(host);
  VMEMFS_ASSIGN_OR_RETURN(PhysMap<> ram, PhysMap<>::FromRanges(MergedRanges(host)));
  VMEMFS_ASSIGN_OR_RETURN(
      std::unique_ptr<QemuMemory> memory,
      QemuMemory::Open(process.pid, std::move(host), options.writable, qemu_options.access));
  return std::unique_ptr<Driver>(new QemuDriver(
      std::move(qmp), std::move(process), std::move(memory), std::move(ram), std::move(rom),
      static_cast<unsigned>(threads.size()), std::move(accel), options.writable));
}

}  // namespace

Result<std::unique_ptr<Driver>> OpenQemu(std::string_view socket_path, const OpenOptions& options,
                                         const QemuOptions& qemu_options) {
  const std::string path(socket_path);
  Result<std::unique_ptr<Driver>> driver = Open(path, options, qemu_options);
  if (!driver && driver.error().message().find(path) == std::string::npos) {
    return driver.error().WithContext(path);
  }
  return driver;
}

Result<std::unique_ptr<Driver>> OpenQemu(std::string_view socket_path, const OpenOptions& options) {
  return OpenQemu(socket_path, options, QemuOptions{});
}

}  // namespace vmemfs::drivers
