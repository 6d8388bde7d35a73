// The 32-bit VMA/file inference on hand-made kernel objects: VMAs of two processes (a file
// mapping, the heap, a special mapping, the stack), their file, dentries up to "/", the root
// mount (and one mounted on it), the inode and super_block, each at offsets the inference is
// not told.
#include "vmi/linux/vma_layout_infer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "testing/memory_driver.h"
#include "vmi/guest.h"
#include "vmi/linux/file_path.h"

namespace vmemfs::vmi::linux_os {
namespace {

using ::vmemfs::testing::MemoryDriver;

constexpr uint32_t kPageOffset = 0xc0000000;
constexpr uint32_t kPgd = 0x100000;
// vm_area_struct
constexpr uint32_t kFlags = 0x10, kOps = 0x30, kPgoff = 0x34, kFile = 0x38, kPriv = 0x3c;
// file, dentry, inode, super_block, mount
constexpr uint32_t kFPath = 0x8, kFInode = 0x10, kDParent = 0x10, kDName = 0x1c, kDInode = 0x20;
constexpr uint32_t kISb = 0x1c, kIMapping = 0x20, kIIno = 0x24, kSDev = 0x8;
constexpr uint32_t kMountParent = 0x8, kMountMnt = 0x10;
constexpr uint32_t kMmExe = 0x40;
constexpr uint32_t kSpecialFn = 0xc0abc000;  // "special_mapping_name"

class Fake {
 public:
  Fake() {
    auto d = std::make_unique<MemoryDriver>(64 << 20);
    d_ = d.get();
    for (uint32_t i = 0; i < 16; ++i) d_->Put32(kPgd + ((kPageOffset >> 22) + i) * 4, (i << 22) | 0x83);
    // One file system: root "/" (self-parent), "bin", "marker"; its mount and super_block.
    Put(0x300000, kSDev, 2);                     // super_block: s_list (0) then s_dev
    Put(0x300000, 0, Va(0x300000));
    Put(0x300000, 4, Va(0x300000));
    const uint32_t inode = 0x310000;
    Put(inode, kISb, Va(0x300000));
    Put(inode, kIMapping, Va(inode + 0x100));
    Put(inode, kIIno, 8);
    const uint32_t root = Dentry(0x320000, 0, "/", 0), bin = Dentry(0x320100, root, "bin", 0);
    const uint32_t marker = Dentry(0x320200, bin, "marker", inode);
    const uint32_t mount = kRootMount, vfsmount = mount + kMountMnt;
    Put(mount, kMountParent, Va(mount));
    Put(mount, kMountParent + 4, Va(root));
    Put(vfsmount, 0, Va(root));
    file_ = 0x340000;
    Put(file_, kFPath, Va(vfsmount));
    Put(file_, kFPath + 4, Va(marker));
    Put(file_, kFInode, Va(inode));
    // Special mapping: vm_ops with .name at 48, private data {name}.
    Put(0x350000, 48, kSpecialFn);
    d_->Put(0x350200, "[vdso]", 7);
    Put(0x350100, 0, Va(0x350200));
    guest_ = std::move(*Guest::Open(std::move(d)));
    mem_ = std::make_unique<KernelMemory>(*guest_, AddressSpace{PagingMode::kLegacy32, kPgd}, 4);
  }
  static uint32_t Va(uint32_t pa) { return pa + kPageOffset; }
  void Put(uint32_t pa, uint32_t off, uint32_t v) { d_->Put32(pa + off, v); }
  uint32_t Dentry(uint32_t at, uint32_t parent, const char* name, uint32_t inode) {
    Put(at, kDParent, Va(parent ? parent : at));
    if (parent) Put(at, kDParent - 4, Va(at + 0x40));  // d_hash.pprev: hashed, not deleted
    Put(at, kDName - 4, static_cast<uint32_t>(std::strlen(name)));
    Put(at, kDName, Va(at + 0x80));
    d_->Put(at + 0x80, name, std::strlen(name) + 1);
    Put(at, kDInode, inode ? Va(inode) : 0);
    return at;
  }
  // A second file system mounted on the first's /mnt, holding "tool": its file's offset.
  // `parent` is the mount it hangs from (default: the root mount).
  uint32_t MountedFile(uint32_t parent = kRootMount) {
    const uint32_t inode = 0x370000;
    Put(inode, kISb, Va(0x300000));
    Put(inode, kIMapping, Va(inode + 0x100));
    Put(inode, kIIno, 9);
    const uint32_t root = Dentry(0x360000, 0, "/", 0), tool = Dentry(0x360100, root, "tool", inode);
    const uint32_t mnt = Dentry(0x320300, 0x320000, "mnt", 0);
    Put(kMount2, kMountParent, Va(parent));
    Put(kMount2, kMountParent + 4, Va(mnt));
    Put(kMount2 + kMountMnt, 0, Va(root));
    Put(0x390000, kFPath, Va(kMount2 + kMountMnt));
    Put(0x390000, kFPath + 4, Va(tool));
    Put(0x390000, kFInode, Va(inode));
    return 0x390000;
  }
  static constexpr uint32_t kRootMount = 0x330000, kMount2 = 0x380000;
  // A process: mm with exe_file, VMAs [file][heap][vdso][stack].
  VmaSample Process(uint32_t base, uint32_t file = 0) {
    if (file == 0) file = file_;
    const uint32_t mm = base;
    Put(mm, kMmExe, Va(file));
    struct {
      uint32_t start, end, flags, file, pgoff, ops, priv;
    } vmas[] = {{0x8048000, 0x8049000, 0x75, Va(file), 0, 0, 0},
                {0x9000000, 0x9021000, 0x100073, 0, 0x9000, 0, 0},
                {0xb7f00000, 0xb7f02000, 0x40075, 0, 0, Va(0x350000), Va(0x350100)},
                {0xbf000000, 0xbf021000, 0x100173, 0, 0xbf000, 0, 0}};
    VmaSample s{Va(mm), 0xbf020000, 0x9000000, 0x9021000, {}};
    uint32_t at = base + 0x400;
    for (const auto& v : vmas) {
      Put(at, 0, v.start);
      Put(at, 4, v.end);
      Put(at, 8, Va(mm));
      Put(at, kFlags, v.flags);
      Put(at, kOps, v.ops);
      Put(at, kPgoff, v.pgoff);
      Put(at, kFile, v.file);
      Put(at, kPriv, v.priv);
      s.vmas.push_back({v.start, v.end, Va(at)});
      at += 0x80;
    }
    return s;
  }
  KernelMemory& mem() { return *mem_; }
  uint32_t file() const { return file_; }

 private:
  MemoryDriver* d_;
  uint32_t file_ = 0;
  std::unique_ptr<Guest> guest_;
  std::unique_ptr<KernelMemory> mem_;
};

VmaInferInput Input(Fake& f) {
  VmaInferInput in;
  in.page_offset = kPageOffset;
  in.special_mapping_name = kSpecialFn;
  in.samples = {f.Process(0x400000), f.Process(0x410000)};
  return in;
}

TEST(VmaLayoutInferTest, FindsEveryOffset) {
  Fake f;
  auto got = InferVmaLayout32(f.mem(), Input(f));
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  const VmaLayout& l = got->layout;
  EXPECT_EQ(l.vm_flags, kFlags);
  EXPECT_EQ(l.vm_file, kFile);
  EXPECT_EQ(l.vm_pgoff, kPgoff);
  EXPECT_EQ(l.vm_ops, kOps);
  EXPECT_EQ(l.vm_private_data, kPriv);
  EXPECT_EQ(l.file_inode, kFInode);
  EXPECT_EQ(l.path.file_path_mnt, kFPath);
  EXPECT_EQ(l.path.dentry_parent, kDParent);
  EXPECT_EQ(l.path.dentry_name_ptr, kDName);
  EXPECT_EQ(l.path.mount_mnt, kMountMnt);
  EXPECT_EQ(l.path.mount_parent, kMountParent);
  EXPECT_EQ(l.inode_sb, kISb);
  EXPECT_EQ(l.inode_ino, kIIno);
  EXPECT_EQ(l.sb_dev, kSDev);
  EXPECT_EQ(got->mm_exe_file, kMmExe);
}

TEST(VmaLayoutInferTest, TheInferredPathLayoutResolvesTheFile) {
  Fake f;
  VmaInferInput in = Input(f);
  auto got = InferVmaLayout32(f.mem(), in);
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  // The file mapping's path through the inferred dentry and mount offsets.
  auto path = FilePath(f.mem(), got->layout.path, Fake::Va(f.file()));
  ASSERT_TRUE(path.has_value()) << path.error().ToString();
  EXPECT_EQ(*path, "/bin/marker");
}

TEST(VmaLayoutInferTest, PathsCrossMountPoints) {
  Fake f;
  VmaInferInput in;
  in.page_offset = kPageOffset;
  uint32_t tool = f.MountedFile();
  in.samples = {f.Process(0x400000), f.Process(0x410000, tool)};
  auto got = InferVmaLayout32(f.mem(), in);
  ASSERT_TRUE(got.has_value()) << got.error().ToString();
  EXPECT_EQ(got->layout.path.mount_mnt, kMountMnt);
  EXPECT_EQ(got->layout.path.mount_parent, kMountParent);
  auto path = FilePath(f.mem(), got->layout.path, Fake::Va(tool));
  ASSERT_TRUE(path.has_value()) << path.error().ToString();
  EXPECT_EQ(*path, "/mnt/tool");
}

TEST(VmaLayoutInferTest, AMountCycleIsRefused) {
  Fake f;
  VmaInferInput in;
  in.page_offset = kPageOffset;
  // The second mount hangs from itself through a third that hangs from it: no root mount.
  uint32_t tool = f.MountedFile(0x3a0000);
  f.Put(0x3a0000, kMountParent, Fake::Va(Fake::kMount2));
  f.Put(0x3a0000, kMountParent + 4, Fake::Va(0x320100));  // "bin": a named mountpoint
  in.samples = {f.Process(0x400000), f.Process(0x410000, tool)};
  auto got = InferVmaLayout32(f.mem(), in);
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code(), ErrorCode::kNotFound);
}

TEST(VmaLayoutInferTest, FilesWhoseDentryIsNotTheirInodesAreRefused) {
  Fake f;
  // The dentry of the only file no longer names its inode: no vm_file offset verifies.
  f.Put(0x320200, kDInode, Fake::Va(0x360000));
  auto got = InferVmaLayout32(f.mem(), Input(f));
  ASSERT_FALSE(got.has_value());
  EXPECT_EQ(got.error().code(), ErrorCode::kNotFound);
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os
