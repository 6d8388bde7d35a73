// d_path over synthetic dentries and mounts: mount crossings, " (deleted)", and hostile
// loops and lengths.
#include "vmi/linux/file_path.h"

#include <gtest/gtest.h>

#include <string>

#include "vmi/linux/synthetic_kernel_memory.h"

namespace vmemfs::vmi::linux_os {
namespace {

using testing::SyntheticKernelMemory;

constexpr PathLayout kLayout = {.file_path_mnt = 0x10,
                                .file_path_dentry = 0x18,
                                .dentry_parent = 0x18,
                                .dentry_name_len = 0x24,
                                .dentry_name_ptr = 0x28,
                                .dentry_hash_pprev = 0x08,
                                .mount_mnt = 0x20,
                                .mount_parent = 0x10,
                                .mount_mountpoint = 0x18,
                                .vfsmount_root = 0};

class FilePathTest : public ::testing::Test {
 protected:
  uint64_t Dentry(uint64_t parent, std::string_view name, bool hashed = true) {
    uint64_t d = k_.Alloc(0x40);
    k_.Put64(d + kLayout.dentry_parent, parent ? parent : d);
    k_.Put32(d + kLayout.dentry_name_len, name.size());
    k_.Put64(d + kLayout.dentry_name_ptr, k_.String(name));
    k_.Put64(d + kLayout.dentry_hash_pprev, hashed ? d + 0x1000 : 0);
    return d;
  }
  // A struct mount; returns the address of its embedded vfsmount.
  uint64_t Mount(uint64_t root_dentry, uint64_t parent_vfsmount, uint64_t mountpoint) {
    uint64_t m = k_.Alloc(0x40);
    k_.Put64(m + kLayout.mount_mnt + kLayout.vfsmount_root, root_dentry);
    k_.Put64(m + kLayout.mount_parent, parent_vfsmount ? parent_vfsmount - kLayout.mount_mnt : m);
    k_.Put64(m + kLayout.mount_mountpoint, mountpoint);
    return m + kLayout.mount_mnt;
  }
  uint64_t File(uint64_t vfsmount, uint64_t dentry) {
    uint64_t f = k_.Alloc(0x40);
    k_.Put64(f + kLayout.file_path_mnt, vfsmount);
    k_.Put64(f + kLayout.file_path_dentry, dentry);
    return f;
  }
  Result<std::string> Path(uint64_t vfsmount, uint64_t dentry) {
    return FilePath(k_.mem(), kLayout, File(vfsmount, dentry));
  }

  SyntheticKernelMemory k_;
};

TEST_F(FilePathTest, SimplePathAndRoot) {
  uint64_t root = Dentry(0, "/");
  uint64_t mnt = Mount(root, 0, 0);
  uint64_t bin = Dentry(root, "bin");
  auto p = Path(mnt, Dentry(bin, "busybox"));
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_EQ(*p, "/bin/busybox");
  EXPECT_EQ(*Path(mnt, root), "/");
}

TEST_F(FilePathTest, CrossesMountPoints) {
  uint64_t root = Dentry(0, "/");
  uint64_t rootmnt = Mount(root, 0, 0);
  uint64_t data = Dentry(Dentry(root, "mnt"), "data");
  uint64_t sub_root = Dentry(0, "/");
  uint64_t submnt = Mount(sub_root, rootmnt, data);
  auto p = Path(submnt, Dentry(Dentry(sub_root, "x"), "y"));
  ASSERT_TRUE(p.has_value()) << p.error().ToString();
  EXPECT_EQ(*p, "/mnt/data/x/y");
  EXPECT_EQ(*Path(submnt, sub_root), "/mnt/data");
}

TEST_F(FilePathTest, DeletedSuffixFollowsDUnlinked) {
  uint64_t root = Dentry(0, "/", /*hashed=*/false);  // a root is never "deleted"
  uint64_t mnt = Mount(root, 0, 0);
  EXPECT_EQ(*Path(mnt, root), "/");
  EXPECT_EQ(*Path(mnt, Dentry(root, "memfd:x", /*hashed=*/false)), "/memfd:x (deleted)");
  EXPECT_EQ(*Path(mnt, Dentry(root, "kept")), "/kept");
}

TEST_F(FilePathTest, EscapedDentryPrintsWhatItHas) {
  uint64_t root = Dentry(0, "/");
  uint64_t mnt = Mount(root, 0, 0);
  uint64_t orphan_top = Dentry(0, "elsewhere");  // its own parent, but not the mount root
  EXPECT_EQ(*Path(mnt, Dentry(orphan_top, "f")), "/f");
}

TEST_F(FilePathTest, DentryCycleIsBadData) {
  uint64_t root = Dentry(0, "/");
  uint64_t mnt = Mount(root, 0, 0);
  uint64_t a = Dentry(root, "a"), b = Dentry(a, "b");
  k_.Put64(a + kLayout.dentry_parent, b);  // a <-> b, never reaching root
  k_.Put32(a + kLayout.dentry_name_len, 0);
  k_.Put32(b + kLayout.dentry_name_len, 0);  // empty names: the step bound must stop it
  auto p = Path(mnt, b);
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code(), ErrorCode::kBadData);
}

TEST_F(FilePathTest, MountCycleIsBadData) {
  uint64_t r1 = Dentry(0, "/"), r2 = Dentry(0, "/");
  uint64_t m1 = Mount(r1, 0, 0), m2 = Mount(r2, m1, r1);
  k_.Put64(m1 - kLayout.mount_mnt + kLayout.mount_parent, m2 - kLayout.mount_mnt);
  k_.Put64(m1 - kLayout.mount_mnt + kLayout.mount_mountpoint, r2);
  auto p = Path(m2, r2);
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().code(), ErrorCode::kBadData);
}

TEST_F(FilePathTest, AbsurdLengthsAreBadDataNotAllocations) {
  uint64_t root = Dentry(0, "/");
  uint64_t mnt = Mount(root, 0, 0);
  uint64_t d = Dentry(root, "x");
  k_.Put32(d + kLayout.dentry_name_len, 0xffffffff);
  EXPECT_EQ(Path(mnt, d).error().code(), ErrorCode::kBadData);
  // Many legal names adding up to more than PATH_MAX.
  std::string name(200, 'n');
  uint64_t deep = root;
  for (int i = 0; i < 30; ++i) deep = Dentry(deep, name);
  EXPECT_EQ(Path(mnt, deep).error().code(), ErrorCode::kBadData);
}

TEST_F(FilePathTest, UnreadablePointersFault) {
  uint64_t root = Dentry(0, "/");
  uint64_t mnt = Mount(root, 0, 0);
  uint64_t d = Dentry(root, "x");
  k_.Put64(d + kLayout.dentry_name_ptr, 0xffff888fff000000ull);
  EXPECT_EQ(Path(mnt, d).error().code(), ErrorCode::kFault);
  EXPECT_EQ(Path(0xffff888fff000000ull, d).error().code(), ErrorCode::kFault);
  EXPECT_EQ(Path(0, d).error().code(), ErrorCode::kBadData);
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os
