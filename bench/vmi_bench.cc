// Introspection API micro-benchmarks: what one vmi::Guest call costs on a snapshot, against
// memcpy from an mmap of the same file (the floor any snapshot reader sits on).
//
//   vmi_bench [--benchmark_* flags]
//   env VMEMFS_BENCH_SNAPSHOT  snapshot to read (default: a 256 MiB random raw file made once
//                              in /tmp/vmemfs-bench)
//   env VMEMFS_BENCH_CORE      an ELF core with registers: adds ReadKernel at a kernel VA
//
// After Google Benchmark's table it prints the ratios the README quotes, each against a
// baseline measured in this same run.
#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "base/status.h"
#include "drivers/snapshot_driver.h"
#include "vmi/guest.h"
#include "vmi/paging.h"

namespace vmemfs::bench {
namespace {

constexpr uint64_t kSmallSet = 64 << 10;  // fits in L2: the "warm" case
constexpr size_t kWord = 4;
constexpr size_t kSeedBytes = 7500;  // the seed's 7.5 KB read
constexpr size_t kSeedWords = kSeedBytes / kWord;
constexpr size_t kAddressCount = 1 << 16;  // precomputed, so the RNG is not timed
constexpr uint64_t kDefaultSnapshotSize = 256 << 20;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "vmi_bench: %s\n", what.c_str());
  std::exit(1);
}

// A file of random bytes, made once and reused by later runs.
std::string DefaultSnapshot() {
  const std::filesystem::path dir = "/tmp/vmemfs-bench";
  const std::filesystem::path path = dir / "vmi-random-256m.mem";
  std::error_code ec;
  if (std::filesystem::file_size(path, ec) == kDefaultSnapshotSize) return path;
  std::filesystem::create_directories(dir);
  std::fprintf(stderr, "vmi_bench: making %s\n", path.c_str());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  std::mt19937_64 rng(42);
  std::vector<uint64_t> chunk(1 << 17);
  for (uint64_t done = 0; done < kDefaultSnapshotSize; done += chunk.size() * 8) {
    for (auto& word : chunk) word = rng();
    out.write(reinterpret_cast<const char*>(chunk.data()), chunk.size() * 8);
  }
  if (!out.flush()) Die("cannot write " + path.string());
  return path;
}

// The snapshot file mapped by us, the baseline's source.
struct FileMap {
  const std::byte* data = nullptr;
  uint64_t size = 0;
};

FileMap MapFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || fstat(fd, &st) != 0) Die("cannot open " + path);
  void* p = mmap(nullptr, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) Die("cannot map " + path);
  return {static_cast<const std::byte*>(p), static_cast<uint64_t>(st.st_size)};
}

std::unique_ptr<vmi::Guest> OpenGuest(const std::string& path) {
  auto driver = drivers::OpenSnapshot(path, {});
  if (!driver) Die(driver.error().ToString());
  auto guest = vmi::Guest::Open(std::move(*driver));
  if (!guest) Die(guest.error().ToString());
  return std::move(*guest);
}

// `count` 4-aligned starts of `len`-byte reads, uniform over [0, size - len).
std::vector<uint64_t> RandomOffsets(uint64_t size, size_t len, size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<uint64_t> pick(0, (size - len) / kWord);
  std::vector<uint64_t> out(count);
  for (auto& off : out) off = pick(rng) * kWord;
  return out;
}

// Offsets into the concatenated RAM ranges -> physical addresses, each read kept in one range.
std::vector<uint64_t> ToPhysical(std::span<const drivers::PhysRange> ranges,
                                 std::vector<uint64_t> offsets, size_t len) {
  for (auto& off : offsets) {
    for (const auto& r : ranges) {
      if (off < r.size()) {
        off = std::min(r.start + off, r.end - std::min<uint64_t>(len, r.size()));
        break;
      }
      off -= r.size();
    }
  }
  return offsets;
}

uint64_t RamBytes(std::span<const drivers::PhysRange> ranges) {
  uint64_t total = 0;
  for (const auto& r : ranges) total += r.size();
  return total;
}

// Where each benchmark reads. "small" sets sit in the first 64 KiB of RAM (or of the file).
struct Addresses {
  std::vector<uint64_t> small, whole, seed;
};

struct Env {
  std::string path;
  std::unique_ptr<vmi::Guest> guest;
  FileMap map;
  Addresses pa;                      // guest-physical, for Guest
  Addresses off;                     // file offsets, for the memcpy baseline
  std::unique_ptr<vmi::Guest> core;  // VMEMFS_BENCH_CORE
  vmi::AddressSpace kernel{};        // its kernel's page tables (from its registers)
  uint64_t kernel_va = 0;
};

Env* env = nullptr;

Addresses MakeAddresses(uint64_t size, uint64_t seed) {
  const uint64_t small = std::min(size, kSmallSet);
  return {RandomOffsets(small, kWord, kAddressCount, seed),
          RandomOffsets(size, kWord, kAddressCount, seed + 1),
          RandomOffsets(std::max<uint64_t>(small, kSeedBytes), kSeedBytes, 64, seed + 2)};
}

// Touches every page once through both paths, so the benchmarks measure warm reads, not the
// first fault on each page of a mapping.
void Prefault(Env& e) {
  std::byte b[1];
  for (const auto& r : e.guest->ranges()) {
    for (uint64_t pa = r.start; pa < r.end; pa += 4096) (void)e.guest->ReadPhys(pa, b);
  }
  uint64_t sum = 0;
  for (uint64_t off = 0; off < e.map.size; off += 4096) sum += uint64_t(e.map.data[off]);
  benchmark::DoNotOptimize(sum);
}

// --- Bodies ---
void Memcpy(benchmark::State& state, const std::vector<uint64_t>& offs, size_t len) {
  std::vector<std::byte> buf(len);
  size_t i = 0;
  for (auto _ : state) {
    std::memcpy(buf.data(), env->map.data + offs[i++ % offs.size()], len);
    benchmark::DoNotOptimize(buf.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(len));
}

void ReadPhys(benchmark::State& state, const std::vector<uint64_t>& pas, size_t len) {
  std::vector<std::byte> buf(len);
  size_t i = 0;
  for (auto _ : state) {
    Status s = env->guest->ReadPhys(pas[i++ % pas.size()], buf);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    benchmark::DoNotOptimize(buf.data());
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(len));
}

// The seed's pattern: 7500 bytes as 1875 separate 4-byte reads, as a tool reading a structure
// field by field does.
void ReadPhysByWords(benchmark::State& state) {
  std::byte buf[kSeedBytes];
  size_t i = 0;
  for (auto _ : state) {
    const uint64_t pa = env->pa.seed[i++ % env->pa.seed.size()];
    for (size_t w = 0; w < kSeedWords; ++w) {
      Status s = env->guest->ReadPhys(pa + w * kWord, std::span(buf + w * kWord, kWord));
      if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    }
    benchmark::DoNotOptimize(buf);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kSeedBytes));
  state.counters["reads"] =
      benchmark::Counter(double(kSeedWords), benchmark::Counter::kIsIterationInvariantRate);
}

// The floor of the seed's pattern: the same 1875 reads as plain 4-byte memcpys from the mapping.
void MemcpyByWords(benchmark::State& state) {
  std::byte buf[kSeedBytes];
  // A length the compiler cannot see, like the driver's, so it cannot fuse the copies into one.
  size_t len = kWord;
  benchmark::DoNotOptimize(len);
  size_t i = 0;
  for (auto _ : state) {
    const std::byte* src = env->map.data + env->off.seed[i++ % env->off.seed.size()];
    for (size_t w = 0; w < kSeedWords; ++w) {
      std::memcpy(buf + w * kWord, src + w * kWord, len);
    }
    benchmark::DoNotOptimize(buf);
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kSeedBytes));
}

void ReadKernel(benchmark::State& state) {
  std::byte buf[kWord];
  for (auto _ : state) {
    Status s = env->core->ReadVirtual(env->kernel, env->kernel_va, buf);
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
    benchmark::DoNotOptimize(buf);
  }
  state.SetBytesProcessed(int64_t(state.iterations()) * int64_t(kWord));
  char label[32];
  std::snprintf(label, sizeof(label), "va=0x%llx", static_cast<unsigned long long>(env->kernel_va));
  state.SetLabel(label);
}

// --- Kernel VA for ReadKernel ---
std::optional<uint64_t> VmcoreSymbol(const std::string& info, const std::string& name) {
  const std::string key = "SYMBOL(" + name + ")=";
  size_t at = info.find(key);
  if (at == std::string::npos) return std::nullopt;
  return std::strtoull(info.c_str() + at + key.size(), nullptr, 16);
}

uint64_t KernelHalfStart(vmi::PagingMode mode) {
  switch (mode) {
    case vmi::PagingMode::kIa32e4:
      return 0xffff800000000000;
    case vmi::PagingMode::kIa32e5:
      return 0xff00000000000000;
    default:
      return 0xc0000000;
  }
}

// A kernel symbol from VMCOREINFO when it translates, else the first mapped kernel-half page.
std::optional<uint64_t> FindKernelVa(vmi::Guest& guest, const vmi::AddressSpace& kernel) {
  if (auto info = guest.CarriedVmcoreInfo()) {
    for (const char* name : {"init_uts_ns", "swapper_pg_dir", "init_task"}) {
      auto va = VmcoreSymbol(*info, name);
      if (va && guest.Translate(kernel, *va)) return va;
    }
  }
  const vmi::PagingMode mode = kernel.mode;
  auto off = guest.NextDataOffset(kernel, vmi::VirtualToOffset(mode, KernelHalfStart(mode)));
  if (!off || !*off) return std::nullopt;
  return vmi::OffsetToVirtual(mode, **off);
}

void SetUpCore(Env& e) {
  const char* core = std::getenv("VMEMFS_BENCH_CORE");
  if (core == nullptr || *core == '\0') return;
  e.core = OpenGuest(core);
  auto view = e.core->Kernel();
  if (!view->space) Die(std::string("no kernel page tables in ") + core);
  e.kernel = *view->space;
  auto va = FindKernelVa(*e.core, e.kernel);
  if (!va) Die(std::string("no mapped kernel address found in ") + core);
  e.kernel_va = *va;
}

std::unique_ptr<Env> SetUp() {
  auto e = std::make_unique<Env>();
  const char* given = std::getenv("VMEMFS_BENCH_SNAPSHOT");
  e->path = given && *given ? given : DefaultSnapshot();
  e->guest = OpenGuest(e->path);
  e->map = MapFile(e->path);
  const auto ranges = e->guest->ranges();
  if (ranges.empty()) Die(e->path + " has no RAM");
  Addresses a = MakeAddresses(RamBytes(ranges), 7);
  e->pa = {ToPhysical(ranges, a.small, kWord), ToPhysical(ranges, a.whole, kWord),
           ToPhysical(ranges, a.seed, kSeedBytes)};
  e->off = MakeAddresses(e->map.size, 7);
  Prefault(*e);
  SetUpCore(*e);
  return e;
}

void Register() {
  using benchmark::RegisterBenchmark;
  RegisterBenchmark("Memcpy4/small", Memcpy, std::cref(env->off.small), kWord);
  RegisterBenchmark("ReadPhys4/small", ReadPhys, std::cref(env->pa.small), kWord);
  RegisterBenchmark("Memcpy4/whole", Memcpy, std::cref(env->off.whole), kWord);
  RegisterBenchmark("ReadPhys4/whole", ReadPhys, std::cref(env->pa.whole), kWord);
  RegisterBenchmark("Memcpy7500/small", Memcpy, std::cref(env->off.seed), kSeedBytes);
  RegisterBenchmark("ReadPhys7500/small", ReadPhys, std::cref(env->pa.seed), kSeedBytes);
  RegisterBenchmark("Memcpy1875x4/small", MemcpyByWords);
  RegisterBenchmark("ReadPhys1875x4/small", ReadPhysByWords);
  if (env->core) RegisterBenchmark("ReadKernel4/fixed", ReadKernel);
}

// Console output plus the CPU time per iteration of each benchmark (the median when
// --benchmark_repetitions asks for aggregates), for the ratio table. CPU time, not real time:
// on a shared machine real time also counts the time other processes held our CPU.
class RatioReporter : public benchmark::ConsoleReporter {
 public:
  // Colours only on a terminal, so saved output stays readable.
  RatioReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_Defaults : OO_Tabular) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      const std::string name = run.run_name.function_name;
      const bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      if (median || (run.run_type == Run::RT_Iteration && !medians_.contains(name))) {
        ns_[name] = run.GetAdjustedCPUTime();
        if (median) medians_[name] = true;
      }
    }
  }

  void PrintRatios() const {
    std::printf("\nRatios (CPU time per call, same run; lower is better)\n");
    std::printf("%-44s %10s %10s %8s   %s\n", "figure", "baseline", "measured", "ratio", "target");
    Row("ReadPhys 4 B, 64 KiB set vs memcpy", "Memcpy4/small", "ReadPhys4/small",
        "<= 8 ns warm (LibVMI 24-36 ns)");
    Row("ReadPhys 4 B, whole file vs memcpy", "Memcpy4/whole", "ReadPhys4/whole", "");
    Row("ReadPhys 7500 B vs memcpy 7500 B", "Memcpy7500/small", "ReadPhys7500/small", "");
    Row("seed: 1875 x 4 B vs 1 x 7500 B ReadPhys", "ReadPhys7500/small", "ReadPhys1875x4/small",
        "ratio <= 20 (LibVMI 200-300)");
    Row("seed floor: 1875 x 4 B vs 1 x 7500 B memcpy", "Memcpy7500/small", "Memcpy1875x4/small",
        "(no reader of 4-byte pieces beats this)");
    Row("seed: 1875 x 4 B ReadPhys vs 1875 x 4 B memcpy", "Memcpy1875x4/small",
        "ReadPhys1875x4/small", "");
    Row("ReadKernel 4 B (fixed VA) vs ReadPhys 4 B", "ReadPhys4/small", "ReadKernel4/fixed", "");
  }

 private:
  void Row(const char* label, const std::string& base, const std::string& measured,
           const char* target) const {
    auto b = ns_.find(base), m = ns_.find(measured);
    if (b == ns_.end() || m == ns_.end()) return;
    std::printf("%-44s %8.2fns %8.2fns %8.2f   %s\n", label, b->second, m->second,
                m->second / b->second, target);
  }

  std::map<std::string, double> ns_;
  std::map<std::string, bool> medians_;
};

}  // namespace
}  // namespace vmemfs::bench

int main(int argc, char** argv) {
  using namespace vmemfs::bench;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  std::unique_ptr<Env> owned = SetUp();
  env = owned.get();
  std::printf("snapshot: %s (%llu MiB of RAM)%s\n", env->path.c_str(),
              static_cast<unsigned long long>(RamBytes(env->guest->ranges()) >> 20),
              env->core ? "" : "; set VMEMFS_BENCH_CORE for ReadKernel");
  Register();
  RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios();
  benchmark::Shutdown();
  return 0;
}
