// Live-source read rates: how fast Driver::ReadPhys reads a running QEMU's RAM through each
// access method, against the snapshot driver on a pmemsave of the same guest (the baseline).
//
//   live_bench --dir GUESTDIR [--no-gdb] [--benchmark_* flags]
//
// GUESTDIR is a running guest of tools/guest/guest.py with a snapshot (raw.mem). Sources, all
// opened at once and read in the same run:
//   snapshot   GUESTDIR/raw.mem through drivers::OpenSource (the baseline)
//   shm        qemu:GUESTDIR/qmp.sock, RamAccess::kAuto (the shared RAM file, mmap)
//   pvm        qemu:GUESTDIR/qmp-test.sock, RamAccess::kProcessVm (process_vm_readv)
//   procmem    qemu:GUESTDIR/qmp-test.sock, RamAccess::kProcMem (pread of /proc/PID/mem);
//              a QMP socket takes one client, so this one is opened and measured after the
//              others, once pvm is closed
//   gdb        gdb:unix:GUESTDIR/gdb.sock (every read stops and resumes the VM: few iterations)
//
// Two patterns per source: Seq1M (1 MiB ReadPhys calls walking all RAM in order, wrapping
// around) and Rand4 (4-byte ReadPhys at random 4-aligned addresses over all RAM, precomputed).
// Times are REAL time (a GDB read waits on a socket and uses almost no CPU), medians when run
// with --benchmark_repetitions. After Google Benchmark's table a ratio table prints each
// source's rate divided by the snapshot driver's rate for the same pattern (higher is better).
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "drivers/driver.h"
#include "drivers/qemu_driver.h"
#include "drivers/qemu_memory.h"
#include "drivers/registry.h"

namespace vmemfs::bench {
namespace {

constexpr size_t kChunk = 1 << 20;     // sequential read size
constexpr size_t kWord = 4;            // random read size
constexpr size_t kAddressCount = 1 << 16;
constexpr int64_t kGdbSeqIterations = 4;     // 4 MiB through the stub
constexpr int64_t kGdbRandIterations = 300;  // 300 stop/read/continue cycles

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "live_bench: %s\n", what.c_str());
  std::exit(1);
}

struct Source {
  std::string name;     // "snapshot", "shm", ...
  std::string spec;     // what was opened
  std::string method;   // the driver's own account of how it reads
  std::unique_ptr<drivers::Driver> driver;
  std::vector<uint64_t> seq;   // 1 MiB chunk starts covering RAM
  std::vector<uint64_t> rand;  // 4-byte read addresses
  bool slow = false;           // gdb: fixed small iteration counts
};

std::string MethodOf(const drivers::Driver& d) {
  for (const Fact& fact : d.Describe()) {
    if (fact.key == "ram-access" || fact.key == "format" || fact.key == "endpoint") {
      return fact.value;
    }
  }
  return std::string(d.kind());
}

// Chunk starts of up to 1 MiB reads, each within one RAM range, covering all of RAM.
std::vector<uint64_t> SeqChunks(std::span<const drivers::PhysRange> ranges) {
  std::vector<uint64_t> out;
  for (const auto& r : ranges) {
    for (uint64_t pa = r.start; pa + kChunk <= r.end; pa += kChunk) out.push_back(pa);
  }
  return out;
}

// Random 4-aligned addresses uniform over all RAM (offsets into the concatenated ranges).
std::vector<uint64_t> RandomWords(std::span<const drivers::PhysRange> ranges, uint64_t seed) {
  uint64_t total = 0;
  for (const auto& r : ranges) total += r.size();
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint64_t> pick(0, total / kWord - 1);
  std::vector<uint64_t> out(kAddressCount);
  for (auto& pa : out) {
    uint64_t off = pick(rng) * kWord;
    for (const auto& r : ranges) {
      if (off + kWord <= r.size()) {
        pa = r.start + off;
        break;
      }
      off -= std::min(off, r.size());
    }
  }
  return out;
}

std::unique_ptr<Source> Open(std::string name, std::string spec,
                             std::optional<drivers::RamAccess> access, bool slow = false) {
  auto s = std::make_unique<Source>();
  s->name = std::move(name);
  s->spec = std::move(spec);
  s->slow = slow;
  Result<std::unique_ptr<drivers::Driver>> d =
      access ? drivers::OpenQemu(s->spec.substr(5), {}, drivers::QemuOptions{.access = *access})
             : drivers::OpenSource(s->spec, {});
  if (!d) Die(s->name + ": " + d.error().ToString());
  s->driver = std::move(*d);
  s->method = MethodOf(*s->driver);
  if (s->driver->ranges().empty()) Die(s->spec + " has no RAM");
  s->seq = SeqChunks(s->driver->ranges());
  s->rand = RandomWords(s->driver->ranges(), 7);
  return s;
}

// One untimed pass over all RAM, so no timed read is a first touch of a page.
void Warm(Source& s) {
  std::vector<std::byte> buf(kChunk);
  for (uint64_t pa : s.seq) {
    Status st = s.driver->ReadPhys(pa, buf);
    if (!st.ok()) Die(s.name + ": " + st.ToString());
  }
}

void Seq(benchmark::State& state, Source* s) {
  std::vector<std::byte> buf(kChunk);
  size_t i = 0;
  for (auto _ : state) {
    Status st = s->driver->ReadPhys(s->seq[i++ % s->seq.size()], buf);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kChunk));
  state.SetLabel(s->method);
}

void Rand(benchmark::State& state, Source* s) {
  std::byte buf[kWord];
  size_t i = 0;
  for (auto _ : state) {
    Status st = s->driver->ReadPhys(s->rand[i++ % s->rand.size()], buf);
    if (!st.ok()) state.SkipWithError(st.ToString().c_str());
    benchmark::DoNotOptimize(buf);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kWord));
  state.SetLabel(s->method);
}

// Real time per iteration of each benchmark (the median with repetitions).
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  RatioReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_Defaults : OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const std::string name = run.run_name.function_name;
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if (median || (run.run_type == Run::RT_Iteration && !medians_.contains(name))) {
        ns_[name] = run.GetAdjustedRealTime();
        if (median) medians_[name] = true;
      }
    }
  }

  void PrintRatios(const std::vector<std::pair<std::string, std::string>>& sources) const {
    std::printf("\nRates against the snapshot driver (real time, same run; higher is better)\n");
    std::printf("%-10s %-36s %12s %8s %12s %8s\n", "source", "method", "seq 1 MiB", "ratio",
                "rand 4 B", "ratio");
    for (const auto& [name, method] : sources) {
      std::printf("%-10s %-36.36s", name.c_str(), method.c_str());
      Cell("Seq1M/", name, [](double ns) { return double(kChunk) / ns * 1e9 / 1e6; }, "MB/s");
      Cell("Rand4/", name, [](double ns) { return 1e9 / ns / 1e6; }, "M/s");
      std::printf("\n");
    }
    std::printf("targets: pvm (process_vm_readv) >= 0.5, shm (mmap) >= 0.8\n");
  }

 private:
  template <typename F>
  void Cell(const std::string& pattern, const std::string& name, F rate, const char* unit) const {
    auto b = ns_.find(pattern + "snapshot"), m = ns_.find(pattern + name);
    if (b == ns_.end() || m == ns_.end()) {
      std::printf(" %12s %8s", "-", "-");
      return;
    }
    char cell[32];
    std::snprintf(cell, sizeof(cell), "%.3g %s", rate(m->second), unit);
    std::printf(" %12s %8.3g", cell, b->second / m->second);
  }

  std::map<std::string, double> ns_;
  std::map<std::string, bool> medians_;
};

}  // namespace
}  // namespace vmemfs::bench

int main(int argc, char** argv) {
  using namespace vmemfs;
  using namespace vmemfs::bench;
  benchmark::Initialize(&argc, argv);
  std::string dir;
  bool gdb = true;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (arg == "--no-gdb") {
      gdb = false;
    } else {
      std::fprintf(stderr, "usage: live_bench --dir GUESTDIR [--no-gdb] [--benchmark_*]\n");
      return 2;
    }
  }
  if (dir.empty()) Die("--dir GUESTDIR is required (a running tools/guest guest with raw.mem)");

  // Each QMP socket takes one client: shm on qmp.sock, the process-memory methods on
  // qmp-test.sock one after the other (pvm is measured, closed, then procmem opened).
  std::vector<std::unique_ptr<Source>> sources;
  sources.push_back(Open("snapshot", dir + "/raw.mem", std::nullopt));
  sources.push_back(Open("shm", "qemu:" + dir + "/qmp.sock", drivers::RamAccess::kAuto));
  sources.push_back(Open("pvm", "qemu:" + dir + "/qmp-test.sock", drivers::RamAccess::kProcessVm));
  if (gdb) sources.push_back(Open("gdb", "gdb:unix:" + dir + "/gdb.sock", std::nullopt, true));
  for (auto& s : sources) {
    std::printf("%-9s %s  [%s]\n", s->name.c_str(), s->spec.c_str(), s->method.c_str());
    if (!s->slow) Warm(*s);
  }
  if (sources[0]->driver->ranges().size() != sources[1]->driver->ranges().size()) {
    std::printf("note: snapshot and live RAM ranges differ\n");
  }

  for (auto& s : sources) {
    auto* seq = benchmark::RegisterBenchmark(("Seq1M/" + s->name).c_str(), Seq, s.get());
    auto* rnd = benchmark::RegisterBenchmark(("Rand4/" + s->name).c_str(), Rand, s.get());
    for (auto* b : {seq, rnd}) b->UseRealTime();
    if (s->slow) {
      seq->Iterations(kGdbSeqIterations)->Repetitions(1);
      rnd->Iterations(kGdbRandIterations)->Repetitions(1);
    }
  }
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);

  // /proc/PID/mem needs qmp-test.sock, which pvm holds: close pvm, then measure procmem.
  benchmark::ClearRegisteredBenchmarks();
  std::vector<std::pair<std::string, std::string>> rows;
  for (auto& s : sources) rows.emplace_back(s->name, s->method);
  sources[2].reset();
  auto procmem =
      Open("procmem", "qemu:" + dir + "/qmp-test.sock", drivers::RamAccess::kProcMem);
  std::printf("%-9s %s  [%s]\n", procmem->name.c_str(), procmem->spec.c_str(),
              procmem->method.c_str());
  Warm(*procmem);
  benchmark::RegisterBenchmark("Seq1M/procmem", Seq, procmem.get())->UseRealTime();
  benchmark::RegisterBenchmark("Rand4/procmem", Rand, procmem.get())->UseRealTime();
  benchmark::RunSpecifiedBenchmarks(&reporter);
  rows.insert(rows.begin() + 3, {procmem->name, procmem->method});

  reporter.PrintRatios(rows);
  benchmark::Shutdown();
  return 0;
}
