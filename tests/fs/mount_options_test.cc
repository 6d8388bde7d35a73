// -o items naming a vmemfs long option become that option; the rest stay FUSE mount options.
#include "fs/mount_options.h"

#include <gtest/gtest.h>

namespace vmemfs::fs {
namespace {

using Args = std::vector<std::string>;

bool Ours(const std::string& key) { return key == "libvirt" || key == "write-memory"; }

TEST(MountOptions, SplitsListsIntoOptionsAndFuseItems) {
  EXPECT_EQ(ExpandMountOptions({"none", "/mnt", "-o", "rw,libvirt=qemu:///system,nosuid"}, Ours),
            (Args{"none", "/mnt", "-o", "rw", "--libvirt", "qemu:///system", "-o", "nosuid"}));
}

TEST(MountOptions, FlagsTakeNoValueAndAttachedListsWork) {
  EXPECT_EQ(ExpandMountOptions({"-owrite-memory,allow_other", "a.raw", "/mnt"}, Ours),
            (Args{"--write-memory", "-o", "allow_other", "a.raw", "/mnt"}));
}

TEST(MountOptions, RwIsAFuseItemAndEmptyItemsAreDropped) {
  EXPECT_EQ(ExpandMountOptions({"-o", "rw,,ro"}, Ours), (Args{"-o", "rw", "-o", "ro"}));
}

TEST(MountOptions, NothingAfterDoubleDashIsRewritten) {
  EXPECT_EQ(ExpandMountOptions({"--", "-o", "libvirt=x"}, Ours), (Args{"--", "-o", "libvirt=x"}));
}

}  // namespace
}  // namespace vmemfs::fs
