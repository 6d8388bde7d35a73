// Honest sizes and whole-file tools on real guests: du, ls -s, tar -S and cp --sparse see
// what is backed (RAM, mapped RAM pages); kvmem/ gives strings and yara the kernel's memory
// in files they can map; yara -r over a VM directory finds the markers the guests planted;
// QEMU's BIOS ROM in an ELF snapshot is ROM, not RAM. Every check runs the tool users run and
// compares with what the guest and QEMU said (tools/guest/README.md).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "mount_fixture.h"

namespace vmemfs::testing {
namespace {

// Files above this are skipped by yara (-z): kmem (2^48, 2^57) and mem (2^47, 2^56), which no
// process can map whole; pmem of any VM up to 64 TiB is scanned. The README's value.
constexpr uint64_t kYaraSkipLarger = 1ull << 46;

struct Output {
  int status;
  std::string out;
  std::string err;
};

// Runs `command` with sh; stdout and stderr are kept apart.
Output Sh(const std::string& command) {
  TempDir dir;
  const std::string out = dir.path() + "/out", err = dir.path() + "/err";
  const int status = system(("(" + command + ") >'" + out + "' 2>'" + err + "'").c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, ReadFile(out), ReadFile(err)};
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// What `du -s -B1` says, in bytes.
uint64_t Du(const std::string& path) {
  Output o = Sh("du -s -B1 '" + path + "'");
  EXPECT_EQ(o.status, 0) << o.err;
  return o.out.empty() ? 0 : std::stoull(o.out);
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? uint64_t(st.st_size) : 0;
}

// truth/snapshot.txt: the RAM QEMU had when the snapshots were taken.
struct RamTruth {
  uint64_t bytes = 0;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;  // [start, end)
  uint64_t end() const { return ranges.empty() ? 0 : ranges.back().second; }
};

RamTruth TruthRam(const std::string& guest) {
  std::ifstream in(GuestDir(guest) + "/truth/snapshot.txt");
  RamTruth t;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string key, start, end;
    words >> key;
    if (key == "ram_bytes") words >> t.bytes;
    if (key.rfind("ram_", 0) == 0 && key != "ram_bytes" && words >> start >> end) {
      t.ranges.push_back({std::stoull(start, nullptr, 16), std::stoull(end, nullptr, 16)});
    }
  }
  return t;
}

// The PT_LOADs of an ELF64 core, [paddr, paddr + filesz), read here from the file itself.
std::vector<std::pair<uint64_t, uint64_t>> ElfLoads(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  auto at = [&in](uint64_t offset, auto& value) {
    in.seekg(std::streamoff(offset));
    in.read(reinterpret_cast<char*>(&value), sizeof value);
  };
  uint64_t phoff = 0;
  uint16_t phentsize = 0, phnum = 0;
  at(32, phoff);
  at(54, phentsize);
  at(56, phnum);
  std::vector<std::pair<uint64_t, uint64_t>> loads;
  for (uint16_t i = 0; i < phnum; ++i) {
    uint32_t type = 0;
    uint64_t paddr = 0, filesz = 0;
    at(phoff + i * phentsize, type);
    at(phoff + i * phentsize + 24, paddr);
    at(phoff + i * phentsize + 32, filesz);
    if (type == 1) loads.push_back({paddr, paddr + filesz});
  }
  return loads;
}

struct Marker {
  int pid;
  std::string kind, text;
};

std::vector<Marker> TruthMarkers(const std::string& guest) {
  std::ifstream in(GuestDir(guest) + "/truth/markers.txt");
  std::vector<Marker> markers;
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string tag, hex;
    Marker m;
    if (words >> tag >> m.pid >> m.kind >> hex >> m.text && tag == "MARKER") markers.push_back(m);
  }
  return markers;
}

std::string RuleName(const Marker& m) { return "m_" + std::to_string(m.pid) + "_" + m.kind; }

// One yara rule per marker string, in `dir`.
std::string WriteRules(const std::vector<Marker>& markers, const std::string& dir) {
  const std::string path = dir + "/markers.yar";
  std::ofstream out(path);
  for (const Marker& m : markers) {
    out << "rule " << RuleName(m) << " { strings: $s = \"" << m.text << "\" condition: $s }\n";
  }
  return path;
}

// `yara -r -z` over a VM directory: no errors, a "skipping" note for exactly the files no
// process can map (kmem, every mem), and every marker found in its own process's vmem/ files.
void ExpectYaraFindsEveryMarker(const std::string& vm, const std::string& guest) {
  const std::vector<Marker> markers = TruthMarkers(guest);
  ASSERT_GE(markers.size(), 12u);
  TempDir dir;
  const std::string rules = WriteRules(markers, dir.path());
  Output o = Sh("yara -r -z " + std::to_string(kYaraSkipLarger) + " '" + rules + "' '" + vm + "'");
  EXPECT_EQ(o.status, 0) << o.err.substr(0, 2000);
  size_t skipped = 0;
  for (const std::string& line : Lines(o.err)) {
    // "skipping <path> (<size> bytes) because it's larger than <n> bytes."
    const std::string path = line.substr(9, line.find(" (") - 9);
    const bool huge = path == vm + "/kmem" || path.ends_with("/mem");
    EXPECT_TRUE(line.starts_with("skipping ") && huge) << line;
    skipped += huge;
  }
  Output mems = Sh("find '" + vm + "' -name mem -o -name kmem");
  EXPECT_EQ(skipped, Lines(mems.out).size());
  std::set<std::string> found;  // rules that matched in their own process's mappings
  for (const std::string& line : Lines(o.out)) {
    const std::string rule = line.substr(0, line.find(' '));
    const std::string pid = rule.substr(2, rule.find('_', 2) - 2);
    if (line.find(" " + vm + "/proc/" + pid + "/vmem/") != std::string::npos) found.insert(rule);
  }
  for (const Marker& m : markers) EXPECT_TRUE(found.count(RuleName(m))) << m.text;
}

struct Param {
  std::string guest;
  std::string file;  // raw.mem or core.elf
};

std::ostream& operator<<(std::ostream& os, const Param& p) {
  return os << p.guest << "/" << p.file;
}

class SparseSnapshotTest : public ::testing::TestWithParam<Param> {
 protected:
  void SetUp() override {
    snapshot_ = GuestDir(GetParam().guest) + "/" + GetParam().file;
    mount_ = std::make_unique<Mount>(std::vector<std::string>{"g=" + snapshot_});
    ASSERT_TRUE(mount_->ok()) << mount_->error();
    ram_ = TruthRam(GetParam().guest);
    ASSERT_GT(ram_.bytes, 0u);
  }
  std::string vm(const std::string& rel = "") const {
    return *mount_ / (rel.empty() ? "g" : "g/" + rel);
  }
  std::string snapshot_;
  std::unique_ptr<Mount> mount_;
  RamTruth ram_;
};

// du counts what is backed: pmem is the RAM, kmem the kernel's mapped RAM (the direct map of
// all RAM, the kernel image, vmalloc), kvmem/ exactly the same pages, and a VM directory a
// small multiple of the RAM (each alias counts where it appears), not 2^48 bytes per kmem.
TEST_P(SparseSnapshotTest, DuSeesTheRamNotTheAddressSpace) {
  EXPECT_EQ(Du(vm("pmem")), ram_.bytes);
  const uint64_t kmem = Du(vm("kmem")), kvmem = Du(vm("kvmem"));
  EXPECT_GT(kmem, ram_.bytes - (ram_.bytes >> 4));
  EXPECT_LT(kmem, 2 * ram_.bytes);
  EXPECT_EQ(kvmem, kmem);
  Output ls = Sh("ls -s --block-size=1 '" + vm() + "'");
  EXPECT_NE(ls.out.find(std::to_string(ram_.bytes) + " pmem"), std::string::npos) << ls.out;
  const uint64_t total = Du(vm());
  std::printf("[ info ] du: VM %llu MiB for %llu MiB of RAM (kmem %llu MiB)\n",
              static_cast<unsigned long long>(total >> 20),
              static_cast<unsigned long long>(ram_.bytes >> 20),
              static_cast<unsigned long long>(kmem >> 20));
  EXPECT_GE(total, ram_.bytes + kmem + kvmem);
  EXPECT_LT(total, 16 * ram_.bytes);
}

// A process's mem holds exactly the pages of its mappings (vmem/), and no more than the RAM.
TEST_P(SparseSnapshotTest, MemCountsItsMappedPages) {
  std::set<int> pids;
  for (const Marker& m : TruthMarkers(GetParam().guest)) pids.insert(m.pid);
  ASSERT_FALSE(pids.empty());
  for (int pid : pids) {
    const std::string proc = vm("proc/" + std::to_string(pid));
    const uint64_t mem = Du(proc + "/mem");
    Output areas = Sh("du -c -B1 '" + proc + "'/vmem/* | tail -n1");
    EXPECT_EQ(mem, std::stoull(areas.out)) << pid;
    EXPECT_GT(mem, 0u);
    EXPECT_LT(mem, ram_.bytes);
  }
}

// tar -S stores what SEEK_DATA finds, as st_blocks announced it: pmem's archive is about the
// RAM; kmem (2^48 or 2^57 bytes) archives in seconds to about its mapped RAM.
TEST_P(SparseSnapshotTest, TarSparseArchivesTheData) {
  TempDir out;
  Output pmem = Sh("tar -S -cf '" + out.path() + "/pmem.tar' -C '" + vm() + "' pmem");
  ASSERT_EQ(pmem.status, 0) << pmem.err;
  const uint64_t pmem_tar = FileSize(out.path() + "/pmem.tar");
  EXPECT_GE(pmem_tar, ram_.bytes);
  EXPECT_LT(pmem_tar, ram_.bytes + (1 << 20));
  Output kmem = Sh("timeout 120 tar -S -cf '" + out.path() + "/kmem.tar' -C '" + vm() + "' kmem");
  ASSERT_EQ(kmem.status, 0) << kmem.err;
  const uint64_t data = Du(vm("kmem")), kmem_tar = FileSize(out.path() + "/kmem.tar");
  EXPECT_GE(kmem_tar, data);
  EXPECT_LT(kmem_tar, data + (4 << 20));
  // The archive says the file is the whole address space.
  Output listing = Sh("tar -tvf '" + out.path() + "/kmem.tar'");
  EXPECT_NE(listing.out.find(" " + std::to_string(FileSize(vm("kmem"))) + " "), std::string::npos)
      << listing.out;
}

// cp --sparse=always copies the data and leaves the holes: pmem's copy is byte for byte the
// guest's RAM (raw.mem, which QEMU's pmemsave wrote) and takes the space a sparse copy of
// raw.mem takes; a mapping's copy equals the mapping.
TEST_P(SparseSnapshotTest, CpSparseCopiesTheData) {
  TempDir out;
  const std::string raw = GuestDir(GetParam().guest) + "/raw.mem";
  ASSERT_EQ(Sh("cp --sparse=always '" + vm("pmem") + "' '" + out.path() + "/pmem'").status, 0);
  ASSERT_EQ(Sh("cp --sparse=always '" + raw + "' '" + out.path() + "/raw'").status, 0);
  EXPECT_EQ(FileSize(out.path() + "/pmem"), ram_.end());
  EXPECT_EQ(Du(out.path() + "/pmem"), Du(out.path() + "/raw"));
  EXPECT_LE(Du(out.path() + "/pmem"), ram_.bytes);
  Output cmp = Sh("cmp '" + out.path() + "/pmem' '" + raw + "'");
  EXPECT_EQ(cmp.status, 0) << cmp.out << cmp.err;
  const Marker m = TruthMarkers(GetParam().guest).at(0);
  const std::string vmem = vm("proc/" + std::to_string(m.pid) + "/vmem");
  Output first = Sh("ls '" + vmem + "' | head -n1");
  const std::string area = vmem + "/" + Lines(first.out).at(0);
  ASSERT_EQ(Sh("cp --sparse=always '" + area + "' '" + out.path() + "/area'").status, 0);
  EXPECT_EQ(Sh("cmp '" + area + "' '" + out.path() + "/area'").status, 0);
  EXPECT_LE(Du(out.path() + "/area"), Du(area));
}

// kvmem/ holds the kernel's mapped memory in files of at most 1 GiB named by their virtual
// addresses: the guest's linux_banner is where its address says, and strings finds it.
TEST_P(SparseSnapshotTest, KvmemHoldsTheKernelsMappedMemory) {
  const uint64_t banner = TruthSymbol(GetParam().guest, "linux_banner");
  const std::string text = ReadFile(GuestDir(GetParam().guest) + "/truth/banner.txt");
  ASSERT_NE(banner, 0u);
  ASSERT_FALSE(text.empty());
  size_t files = 0;
  bool read_banner = false;
  for (const auto& e : std::filesystem::directory_iterator(vm("kvmem"))) {
    const std::string name = e.path().filename();
    const uint64_t start = std::stoull(name.substr(0, name.find('-')), nullptr, 16);
    const uint64_t end = std::stoull(name.substr(name.find('-') + 1), nullptr, 16);
    EXPECT_EQ(FileSize(e.path()), end - start) << name;
    EXPECT_LE(end - start, 1ull << 30) << name;
    if (banner >= start && banner - start < end - start) {
      read_banner = PreadAt(e.path(), banner - start, text.size()) == text;
      // Whole-file tools map it whole, as yara does.
      const int fd = open(e.path().c_str(), O_RDONLY);
      ASSERT_GE(fd, 0);
      void* map = mmap(nullptr, end - start, PROT_READ, MAP_PRIVATE, fd, 0);
      close(fd);
      ASSERT_NE(map, MAP_FAILED) << name;
      EXPECT_EQ(std::string(static_cast<const char*>(map) + (banner - start), text.size()), text);
      munmap(map, end - start);
    }
    ++files;
  }
  EXPECT_GT(files, 10u);
  EXPECT_TRUE(read_banner);
  Output strings =
      Sh("strings -n 20 '" + vm("kvmem") + "'/* | grep -c -F '" + TrimNewline(text) + "'");
  EXPECT_GE(std::stoi(strings.out), 1) << strings.err;
}

// info prints phys_base in hex, as crash's -m phys_base= takes it: the kernel's unsigned
// value, which the guest's own /proc/iomem ("Kernel code" starts at _text's physical address)
// and kallsyms (_text's virtual address) give: phys = virt - __START_KERNEL_map + phys_base.
TEST_P(SparseSnapshotTest, InfoPrintsPhysBaseInHex) {
  const uint64_t text = TruthSymbol(GetParam().guest, "_text");
  ASSERT_NE(text, 0u);
  uint64_t code = 0;
  for (const std::string& line : Lines(ReadFile(GuestDir(GetParam().guest) + "/truth/iomem.txt"))) {
    if (line.ends_with(" : Kernel code")) {
      code = std::stoull(line.substr(line.find_first_not_of(' ')), nullptr, 16);
    }
  }
  ASSERT_NE(code, 0u) << "the guest printed no Kernel code range";
  const uint64_t start_kernel_map = 0xffffffff80000000;
  std::stringstream want;
  want << "0x" << std::hex << code - (text - start_kernel_map);
  EXPECT_EQ(InfoValue(ReadFile(vm("info")), "phys-base"), want.str());
}

TEST_P(SparseSnapshotTest, YaraOverTheVmDirectoryFindsEveryMarker) {
  ExpectYaraFindsEveryMarker(vm(), GetParam().guest);
}

INSTANTIATE_TEST_SUITE_P(Guests, SparseSnapshotTest,
                         ::testing::Values(Param{"l4", "core.elf"}, Param{"l5", "raw.mem"}),
                         [](const auto& info) {
                           return info.param.guest + "_" +
                                  (info.param.file == "raw.mem" ? "raw" : "elf");
                         });

// The same scan, quietly: the files no process can map are left out by find, so yara has
// nothing to skip or fail on.
TEST(YaraScanListTest, FindLeavesOutTheHugeFilesQuietly) {
  Mount mount({"g=" + GuestDir("l4") + "/core.elf"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  const std::vector<Marker> markers = TruthMarkers("l4");
  TempDir dir;
  const std::string rules = WriteRules(markers, dir.path());
  Output o =
      Sh("find '" + (mount / "g") + "' -type f -size -" + std::to_string(kYaraSkipLarger >> 30) +
         "G | yara --scan-list '" + rules + "' /dev/stdin");
  EXPECT_EQ(o.status, 0);
  EXPECT_EQ(o.err, "");
  std::set<std::string> rules_found;
  for (const std::string& line : Lines(o.out)) rules_found.insert(line.substr(0, line.find(' ')));
  for (const Marker& m : markers) EXPECT_TRUE(rules_found.count(RuleName(m))) << m.text;
}

// QEMU's dump-guest-memory writes its BIOS ROM as a PT_LOAD at 0xfffc0000: pmem ends with the
// RAM QEMU had (not at 4 GiB), and info names the ROM.
TEST(ElfSnapshotRomTest, PmemEndsWithTheRamAndInfoListsTheRom) {
  for (const std::string guest : {"l4", "l5"}) {
    SCOPED_TRACE(guest);
    const std::string core = GuestDir(guest) + "/core.elf";
    const RamTruth ram = TruthRam(guest);
    std::vector<std::pair<uint64_t, uint64_t>> rom;
    for (const auto& load : ElfLoads(core)) {
      if (load.first >= ram.end()) rom.push_back(load);
    }
    ASSERT_FALSE(rom.empty()) << "QEMU wrote no segment above the RAM: nothing to check";
    Mount mount({"g=" + core});
    ASSERT_TRUE(mount.ok()) << mount.error();
    EXPECT_EQ(FileSize(mount / "g/pmem"), ram.end());
    EXPECT_EQ(Du(mount / "g/pmem"), ram.bytes);
    const std::string info = ReadFile(mount / "g/info");
    std::stringstream end;
    end << "0x" << std::hex << ram.end();
    EXPECT_EQ(InfoValue(info, "memory-size"), end.str());
    for (const auto& [start, end] : rom) {
      std::stringstream line;
      line << "rom-range: 0x" << std::hex << start << "-0x" << end - 1 << " # ";
      const size_t at = info.find(line.str());
      ASSERT_NE(at, std::string::npos) << info;
      EXPECT_NE(info.find("not in pmem", at), std::string::npos) << info;
    }
  }
}

// A running VM: QEMU's layout says which ranges are ROM; yara -r over the live directory finds
// every marker; du sees the RAM.
TEST(LiveSparseTest, YaraAndDuOnARunningVm) {
  const std::string dir = GuestDir("l5");
  Mount mount({"g=qemu:" + dir + "/qmp.sock"});
  ASSERT_TRUE(mount.ok()) << mount.error();
  const std::string vm = mount / "g";
  const RamTruth ram = TruthRam("l5");
  EXPECT_EQ(FileSize(vm + "/pmem"), ram.end());
  EXPECT_EQ(Du(vm + "/pmem"), ram.bytes);
  const std::string info = ReadFile(vm + "/info");
  EXPECT_NE(info.find("rom-range: 0xfffc0000-0xffffffff # info mtree -f: rom, region pc.bios; "
                      "not in pmem"),
            std::string::npos)
      << info;
  EXPECT_GT(Du(vm + "/kmem"), ram.bytes - (ram.bytes >> 4));
  ExpectYaraFindsEveryMarker(vm, "l5");
}

}  // namespace
}  // namespace vmemfs::testing
