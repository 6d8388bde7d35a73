// VMAs and /proc/<pid>/maps text: synthetic mm_structs (maple tree and the pre-6.1 list) and
// the real test guests, whose maps must match truth/maps/<pid>.txt line for line.
#include "vmi/linux/guest_root.h"
#include "vmi/linux/vmas.h"

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "drivers/snapshot_driver.h"
#include "vmi/guest.h"
#include "vmi/linux/kernel_types.h"
#include "vmi/linux/maps_text.h"
#include "vmi/linux/synthetic_kernel_memory.h"
#include "vmi/linux/tasks_test_guest.h"

namespace vmemfs::vmi::linux_os {
namespace {

using ::vmemfs::testing::SyntheticKernelMemory;

// ---------------------------------------------------------------- synthetic structures

// Made-up offsets: the walker must use the layout, not 6.1's numbers.
VmaLayout SyntheticLayout(VmaIndex index) {
  VmaLayout l;
  l.index = index;
  l.mm_mt_root = 0x40;
  l.mm_mmap = 0x48;
  l.vma_size = 0x80;
  l.vm_start = 0x00;
  l.vm_end = 0x08;
  l.vm_next = 0x10;
  l.vm_flags = 0x20;
  l.vm_pgoff = 0x28;
  l.vm_file = 0x30;
  l.vm_ops = 0x38;
  l.vm_private_data = 0x40;
  l.vm_anon_name = 0x48;
  l.anon_vma_name_name = 8;
  l.vm_ops_name = 0x10;
  l.special_mapping_name = 0;
  l.file_inode = 0x20;
  l.inode_sb = 0x28;
  l.inode_ino = 0x40;
  l.sb_dev = 0x10;
  l.path = {.file_path_mnt = 0x10,
            .file_path_dentry = 0x18,
            .dentry_parent = 0x18,
            .dentry_name_len = 0x24,
            .dentry_name_ptr = 0x28,
            .dentry_hash_pprev = 0x08,
            .mount_mnt = 0x20,
            .mount_parent = 0x10,
            .mount_mountpoint = 0x18,
            .vfsmount_root = 0};
  return l;
}

class SyntheticMm {
 public:
  explicit SyntheticMm(VmaIndex index) : l_(SyntheticLayout(index)) {
    mm_ = k_.Alloc(0x100);
    // One mount whose root dentry is its own parent, and a file /bin/tool on it.
    uint64_t mount = k_.Alloc(0x40);
    root_ = Dentry(0, "/");
    k_.Put64(mount + l_.path.mount_mnt + l_.path.vfsmount_root, root_);
    k_.Put64(mount + l_.path.mount_parent, mount);
    vfsmount_ = mount + l_.path.mount_mnt;
  }

  uint64_t Dentry(uint64_t parent, std::string_view name, bool hashed = true) {
    uint64_t d = k_.Alloc(0x40);
    k_.Put64(d + l_.path.dentry_parent, parent ? parent : d);
    k_.Put32(d + l_.path.dentry_name_len, name.size());
    k_.Put64(d + l_.path.dentry_name_ptr, k_.String(name));
    k_.Put64(d + l_.path.dentry_hash_pprev, hashed ? d + 0x1000 : 0);
    return d;
  }
  uint64_t File(uint64_t dentry, uint32_t dev, uint64_t ino) {
    uint64_t sb = k_.Alloc(0x40), inode = k_.Alloc(0x80), file = k_.Alloc(0x40);
    k_.Put32(sb + l_.sb_dev, dev);
    k_.Put64(inode + l_.inode_sb, sb);
    k_.Put64(inode + l_.inode_ino, ino);
    k_.Put64(file + l_.file_inode, inode);
    k_.Put64(file + l_.path.file_path_mnt, vfsmount_);
    k_.Put64(file + l_.path.file_path_dentry, dentry);
    return file;
  }
  uint64_t Vma(uint64_t start, uint64_t end, uint64_t flags, uint64_t file = 0,
               uint64_t pgoff = 0) {
    uint64_t v = k_.Alloc(l_.vma_size);
    k_.Put64(v + l_.vm_start, start);
    k_.Put64(v + l_.vm_end, end);
    k_.Put64(v + l_.vm_flags, flags);
    k_.Put64(v + l_.vm_file, file);
    k_.Put64(v + l_.vm_pgoff, pgoff);
    return v;
  }
  // Makes vma a special mapping named `name` (vm_ops->name set, vm_private_data->name).
  void Special(uint64_t vma, std::string_view name) {
    uint64_t ops = k_.Alloc(0x40), sm = k_.Alloc(0x10);
    k_.Put64(ops + l_.vm_ops_name, 0xffffffff81234560ull);
    k_.Put64(sm + l_.special_mapping_name, k_.String(name));
    k_.Put64(vma + l_.vm_ops, ops);
    k_.Put64(vma + l_.vm_private_data, sm);
  }
  void AnonName(uint64_t vma, std::string_view name) {
    uint64_t an = k_.Alloc(l_.anon_vma_name_name + name.size() + 1);
    k_.PutBytes(an + l_.anon_vma_name_name, name);
    k_.Put64(vma + *l_.vm_anon_name, an);
  }
  void Link(const std::vector<uint64_t>& vmas) {
    k_.Put64(mm_ + l_.mm_mmap, vmas.empty() ? 0 : vmas[0]);
    for (size_t i = 0; i + 1 < vmas.size(); ++i) k_.Put64(vmas[i] + l_.vm_next, vmas[i + 1]);
  }
  // A one-leaf maple tree over the VMAs (gaps between them as NULL slots).
  void Tree(const std::vector<std::pair<uint64_t, uint64_t>>& ranges_and_vmas) {
    uint64_t leaf = k_.Alloc(256, 256);
    k_.Put64(leaf, mm_ | 1);  // parent: the tree, MA_ROOT_PARENT
    uint32_t i = 0;
    uint64_t next_min = 0;
    auto slot = [&](uint64_t pivot, uint64_t value) {
      k_.Put64(leaf + l_.maple.range64_pivot + 8 * i, pivot);
      k_.Put64(leaf + l_.maple.range64_slot + 8 * i, value);
      ++i;
    };
    for (auto [vma, unused] : ranges_and_vmas) {
      uint64_t start = ReadU64(vma + l_.vm_start), end = ReadU64(vma + l_.vm_end);
      if (start > next_min) slot(start - 1, 0);
      slot(end - 1, vma);
      next_min = end;
    }
    slot(UINT64_MAX, 0);
    k_.Put8(leaf + l_.maple.range64_meta, i - 1);
    k_.Put64(mm_ + l_.mm_mt_root, leaf | (1 << 3) | 4 | 2);  // leaf_64, root
  }
  uint64_t ReadU64(uint64_t va) { return *k_.mem().U64(va); }

  SyntheticKernelMemory k_;
  VmaLayout l_;
  uint64_t mm_ = 0, root_ = 0, vfsmount_ = 0;
};

constexpr uint64_t kR = kVmRead, kW = kVmWrite, kX = kVmExec;

void ExpectMarkerLikeMaps(SyntheticMm& m, VmaIndex index) {
  uint64_t bin = m.Dentry(m.Dentry(m.root_, "bin"), "tool");
  uint64_t file = m.File(bin, (0u << 20) | 2, 7);
  std::vector<uint64_t> vmas = {
      m.Vma(0x400000, 0x401000, kR, file, 0),
      m.Vma(0x401000, 0x47a000, kR | kX, file, 1),
      m.Vma(0x3eed1000, 0x3eef3000, kR | kW),
      m.Vma(0x7f0000000000, 0x7f0000002000, kR | kW),
      m.Vma(0x7ffcde97a000, 0x7ffcde99b000, kR | kW),
      m.Vma(0x7ffcde9f0000, 0x7ffcde9f2000, kR | kX),
  };
  m.AnonName(vmas[3], "buffers");
  m.Special(vmas[5], "[vdso]");
  if (index == VmaIndex::kLinkedList) {
    m.Link(vmas);
  } else {
    std::vector<std::pair<uint64_t, uint64_t>> t;
    for (uint64_t v : vmas) t.push_back({v, 0});
    m.Tree(t);
  }
  auto list = ListVmas(m.k_.mem(), m.l_, m.mm_);
  ASSERT_TRUE(list.has_value()) << list.error().ToString();
  MmInfo mm;
  mm.start_brk = 0x3eed1000;
  mm.brk = 0x3eef3000;
  mm.start_stack = 0x7ffcde99ab00;
  EXPECT_EQ(MapsText(*list, mm),
            "00400000-00401000 r--p 00000000 00:02 7                                  /bin/tool\n"
            "00401000-0047a000 r-xp 00001000 00:02 7                                  /bin/tool\n"
            "3eed1000-3eef3000 rw-p 00000000 00:00 0                                  [heap]\n"
            "7f0000000000-7f0000002000 rw-p 00000000 00:00 0                          "
            "[anon:buffers]\n"
            "7ffcde97a000-7ffcde99b000 rw-p 00000000 00:00 0                          [stack]\n"
            "7ffcde9f0000-7ffcde9f2000 r-xp 00000000 00:00 0                          [vdso]\n");
}

TEST(VmasTest, MapleTreeMm) {
  SyntheticMm m(VmaIndex::kMapleTree);
  ExpectMarkerLikeMaps(m, VmaIndex::kMapleTree);
}

TEST(VmasTest, LinkedListMm) {
  SyntheticMm m(VmaIndex::kLinkedList);
  ExpectMarkerLikeMaps(m, VmaIndex::kLinkedList);
}

TEST(VmasTest, ListCycleIsBadData) {
  SyntheticMm m(VmaIndex::kLinkedList);
  uint64_t a = m.Vma(0x1000, 0x2000, kR), b = m.Vma(0x3000, 0x4000, kR);
  m.Link({a, b});
  m.k_.Put64(b + m.l_.vm_next, a);  // b -> a: back to a lower address
  auto r = ListVmas(m.k_.mem(), m.l_, m.mm_);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code(), ErrorCode::kBadData);
  m.k_.Put64(b + m.l_.vm_next, b);  // self loop
  EXPECT_EQ(ListVmas(m.k_.mem(), m.l_, m.mm_).error().code(), ErrorCode::kBadData);
}

TEST(VmasTest, GarbageVmasAreBadDataOrFault) {
  SyntheticMm m(VmaIndex::kLinkedList);
  uint64_t empty = m.Vma(0x5000, 0x5000, kR);  // start == end
  m.Link({empty});
  EXPECT_EQ(ListVmas(m.k_.mem(), m.l_, m.mm_).error().code(), ErrorCode::kBadData);
  m.k_.Put64(m.mm_ + m.l_.mm_mmap, 0xffff888fff000000ull);  // outside RAM
  EXPECT_EQ(ListVmas(m.k_.mem(), m.l_, m.mm_).error().code(), ErrorCode::kFault);
  VmaLayout huge = m.l_;
  huge.vma_size = 1u << 30;  // never allocated
  EXPECT_EQ(ListVmas(m.k_.mem(), huge, m.mm_).error().code(), ErrorCode::kBadData);
}

TEST(VmasTest, TreeRangeMustMatchVma) {
  SyntheticMm m(VmaIndex::kMapleTree);
  uint64_t a = m.Vma(0x1000, 0x2000, kR);
  m.Tree({{a, 0}});
  ASSERT_TRUE(ListVmas(m.k_.mem(), m.l_, m.mm_).has_value());
  m.k_.Put64(a + m.l_.vm_end, 0x3000);  // the VMA now disagrees with the tree
  EXPECT_EQ(ListVmas(m.k_.mem(), m.l_, m.mm_).error().code(), ErrorCode::kBadData);
}

TEST(VmasTest, UnreadableFileKeepsTheLine) {
  SyntheticMm m(VmaIndex::kLinkedList);
  uint64_t file = m.k_.Alloc(0x40);
  m.k_.Put64(file + m.l_.file_inode, 0xffff888fff000000ull);  // inode outside RAM
  uint64_t a = m.Vma(0x1000, 0x2000, kR, file, 3), b = m.Vma(0x2000, 0x3000, kR | kW);
  m.Link({a, b});
  auto r = ListVmas(m.k_.mem(), m.l_, m.mm_);
  ASSERT_TRUE(r.has_value()) << r.error().ToString();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[0].file_status.code(), ErrorCode::kFault);
  EXPECT_TRUE((*r)[1].file_status.ok());
}

TEST(MapsTextTest, FormatDetails) {
  MmInfo mm{};
  Vma shared;
  shared.start = 0x10000;
  shared.end = 0x11000;
  shared.flags = kR | kW | kVmShared | kVmMayShare;
  shared.pgoff = 0x12345;
  shared.file = 1;
  shared.dev_major = 0xfd;
  shared.dev_minor = 0x12345;
  shared.inode = 123456789;
  shared.path = "/a\nb (deleted)";
  std::string header = "00010000-00011000 rw-s 12345000 fd:12345 123456789 ";
  // Padded to column 72, then one space: names start at column 73.
  EXPECT_EQ(MapsLine(shared, mm),
            header + std::string(72 - header.size(), ' ') + " /a\\012b (deleted)\n");
  Vma anon;
  anon.start = 0x1000;
  anon.end = 0x2000;
  anon.pgoff = 7;
  // Anonymous memory shows offset 0 whatever vm_pgoff holds; no name, trailing space.
  EXPECT_EQ(MapsLine(anon, mm), "00001000-00002000 ---p 00000000 00:00 0 \n");
}

// ---------------------------------------------------------------- real guests

const std::string kGuestRoot = ::vmemfs::testing::GuestRoot();

std::map<std::string, uint64_t> TruthSymbols(const std::string& dir,
                                             const std::vector<std::string>& names) {
  std::map<std::string, uint64_t> out;
  std::ifstream in(dir + "/truth/kallsyms.txt");
  std::string line;
  while (std::getline(in, line) && out.size() < names.size()) {
    std::istringstream fields(line);
    std::string addr, type, sym;
    fields >> addr >> type >> sym;
    for (const auto& n : names) {
      if (sym == n && !out.count(n)) out[n] = std::stoull(addr, nullptr, 16);
    }
  }
  return out;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct RealGuest {
  std::string dir;
  std::unique_ptr<testing::RealKernel> kernel;
  std::unique_ptr<KernelTypes> types;
  std::map<std::string, uint64_t> symbols;
};

// Opened once per guest; nullptr (with a reason) when the guest or its BTF is unavailable.
RealGuest* OpenRealGuest(const std::string& name, std::string* why) {
  static std::map<std::string, std::unique_ptr<RealGuest>> cache;
  static std::map<std::string, std::string> reasons;
  if (auto it = cache.find(name); it != cache.end()) {
    *why = reasons[name];
    return it->second.get();
  }
  auto& slot = cache[name];
  auto g = std::make_unique<RealGuest>();
  g->dir = kGuestRoot + "/" + name;
  g->kernel = testing::OpenRealKernel(g->dir + "/core.elf", why);
  if (!g->kernel) return reasons[name] = *why, nullptr;
  g->symbols =
      TruthSymbols(g->dir, {"__start_BTF", "__stop_BTF", "init_task", "special_mapping_name"});
  uint64_t start = g->symbols["__start_BTF"], stop = g->symbols["__stop_BTF"];
  std::vector<std::byte> btf(stop > start ? stop - start : 0);
  if (btf.empty() || !g->kernel->mem->Read(start, btf).ok()) {
    return reasons[name] = "cannot read BTF", *why = reasons[name], nullptr;
  }
  auto types = KernelTypes::FromBtf(btf);
  if (!types) return reasons[name] = types.error().ToString(), *why = reasons[name], nullptr;
  g->types = std::move(*types);
  slot = std::move(g);
  return slot.get();
}

// pid -> mm_struct address, for the wanted pids, by walking init_task.tasks.
std::map<int, uint64_t> FindMms(RealGuest& g, KernelMemory& mem, const std::vector<int>& pids) {
  uint64_t tasks = g.types->Member("task_struct", "tasks")->offset;
  uint64_t pid_off = g.types->Member("task_struct", "pid")->offset;
  uint64_t mm_off = g.types->Member("task_struct", "mm")->offset;
  std::map<int, uint64_t> out;
  uint64_t head = g.symbols["init_task"] + tasks;
  uint64_t node = *mem.U64(head);
  for (int i = 0; i < 100000 && node != head; ++i) {
    uint64_t task = node - tasks;
    int pid = *mem.S32(task + pid_off);
    if (std::find(pids.begin(), pids.end(), pid) != pids.end()) out[pid] = *mem.U64(task + mm_off);
    auto next = mem.U64(node);
    if (!next) break;
    node = *next;
  }
  return out;
}

class RealGuestMapsTest : public ::testing::TestWithParam<const char*> {};

TEST_P(RealGuestMapsTest, MapleLayoutFromBtfIsThe61Default) {
  std::string why;
  RealGuest* g = OpenRealGuest(GetParam(), &why);
  if (!g)
    GTEST_SKIP() << "no usable test guest at " << kGuestRoot << "/" << GetParam() << ": " << why
                 << " (tools/guest/guest.py prepare --root " << kGuestRoot << ")";
  auto l = ResolveMapleLayout(*g->types);
  ASSERT_TRUE(l.has_value()) << l.error().ToString();
  MapleLayout d;
  EXPECT_EQ(l->node_size, d.node_size);
  EXPECT_EQ(l->range64_slot, d.range64_slot);
  EXPECT_EQ(l->range64_meta, d.range64_meta);
  EXPECT_EQ(l->range64_slots, d.range64_slots);
  EXPECT_EQ(l->arange64_slot, d.arange64_slot);
  EXPECT_EQ(l->arange64_meta, d.arange64_meta);
  EXPECT_EQ(l->arange64_slots, d.arange64_slots);
  EXPECT_EQ(l->dense_slots, d.dense_slots);
  EXPECT_EQ(l->type_arange_64, d.type_arange_64);
}

TEST_P(RealGuestMapsTest, MapsMatchTruth) {
  std::string why;
  RealGuest* g = OpenRealGuest(GetParam(), &why);
  if (!g)
    GTEST_SKIP() << "no usable test guest at " << kGuestRoot << "/" << GetParam() << ": " << why
                 << " (tools/guest/guest.py prepare --root " << kGuestRoot << ")";
  auto layout = ResolveVmaLayout(*g->types);
  ASSERT_TRUE(layout.has_value()) << layout.error().ToString();
  EXPECT_EQ(layout->index, VmaIndex::kMapleTree);
  layout->special_mapping_name_fn = g->symbols["special_mapping_name"];
  std::vector<int> pids;
  for (const auto& e : std::filesystem::directory_iterator(g->dir + "/truth/maps")) {
    pids.push_back(std::stoi(e.path().stem().string()));
  }
  ASSERT_FALSE(pids.empty());
  KernelMemory& mem = *g->kernel->mem;
  std::map<int, uint64_t> mms = FindMms(*g, mem, pids);
  for (int pid : pids) {
    SCOPED_TRACE("pid " + std::to_string(pid));
    ASSERT_TRUE(mms.count(pid)) << "task not found in init_task.tasks";
    auto t0 = std::chrono::steady_clock::now();
    auto vmas = ListVmas(mem, *layout, mms[pid]);
    auto t1 = std::chrono::steady_clock::now();
    ASSERT_TRUE(vmas.has_value()) << vmas.error().ToString();
    // MmInfo straight from BTF offsets: this test does not depend on the task layer.
    MmInfo mm;
    mm.start_brk = *mem.U64(mms[pid] + g->types->Member("mm_struct", "start_brk")->offset);
    mm.brk = *mem.U64(mms[pid] + g->types->Member("mm_struct", "brk")->offset);
    mm.start_stack = *mem.U64(mms[pid] + g->types->Member("mm_struct", "start_stack")->offset);
    EXPECT_EQ(MapsText(*vmas, mm),
              ReadFile(g->dir + "/truth/maps/" + std::to_string(pid) + ".txt"));
    std::cout << GetParam() << " pid " << pid << ": " << vmas->size() << " VMAs in "
              << std::chrono::duration<double, std::micro>(t1 - t0).count() << " us\n";
  }
}

// Every process of the guest, not only those with a truth file: the walk must succeed for
// all user processes (kernel threads have no mm) and its cost is reported.
TEST_P(RealGuestMapsTest, EveryProcessWalks) {
  std::string why;
  RealGuest* g = OpenRealGuest(GetParam(), &why);
  if (!g)
    GTEST_SKIP() << "no usable test guest at " << kGuestRoot << "/" << GetParam() << ": " << why
                 << " (tools/guest/guest.py prepare --root " << kGuestRoot << ")";
  auto layout = ResolveVmaLayout(*g->types);
  ASSERT_TRUE(layout.has_value()) << layout.error().ToString();
  layout->special_mapping_name_fn = g->symbols["special_mapping_name"];
  KernelMemory& mem = *g->kernel->mem;
  uint64_t tasks = g->types->Member("task_struct", "tasks")->offset;
  uint64_t mm_off = g->types->Member("task_struct", "mm")->offset;
  uint64_t head = g->symbols["init_task"] + tasks;
  int processes = 0;
  size_t vmas = 0;
  double us = 0;
  uint64_t node = *mem.U64(head);
  for (int i = 0; i < 100000 && node != head; ++i) {
    uint64_t mm = *mem.U64(node - tasks + mm_off);
    if (mm != 0) {
      auto t0 = std::chrono::steady_clock::now();
      auto list = ListVmas(mem, *layout, mm);
      us +=
          std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
      ASSERT_TRUE(list.has_value()) << list.error().ToString();
      EXPECT_FALSE(list->empty());
      for (const Vma& v : *list) EXPECT_TRUE(v.file_status.ok()) << v.file_status.ToString();
      ++processes;
      vmas += list->size();
    }
    node = *mem.U64(node);
  }
  EXPECT_GT(processes, 300);
  std::cout << GetParam() << ": " << processes << " processes, " << vmas << " VMAs, "
            << us / processes << " us per process (" << us / 1000 << " ms total)\n";
}

INSTANTIATE_TEST_SUITE_P(Guests, RealGuestMapsTest, ::testing::Values("l4", "l5"));

}  // namespace
}  // namespace vmemfs::vmi::linux_os
