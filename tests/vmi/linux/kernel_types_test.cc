#include "vmi/linux/guest_root.h"
#include "vmi/linux/kernel_types.h"

#include "tasks_test_guest.h"

#include <bpf/btf.h>
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "drivers/snapshot_driver.h"
#include "vmi/guest.h"

namespace vmemfs::vmi::linux_os {
namespace {

const std::string kGuestRoot = ::vmemfs::testing::GuestRoot();

// The address of `name` in the guest's truth/kallsyms.txt, 0 if absent.
uint64_t ReadTruthSymbol(const std::string& dir, const std::string& name) {
  std::ifstream in(dir + "/truth/kallsyms.txt");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string addr, type, sym;
    fields >> addr >> type >> sym;
    if (sym == name) return std::stoull(addr, nullptr, 16);
  }
  return 0;
}

// The raw BTF of a real guest (read once per guest), or empty when the guest is absent.
const std::vector<std::byte>& GuestBtf(const std::string& name) {
  static std::map<std::string, std::vector<std::byte>> cache;
  auto [it, inserted] = cache.try_emplace(name);
  if (!inserted) return it->second;
  std::string dir = kGuestRoot + "/" + name;
  std::string why;
  auto kernel = testing::OpenRealKernel(dir + "/core.elf", &why);
  uint64_t start = ReadTruthSymbol(dir, "__start_BTF"), stop = ReadTruthSymbol(dir, "__stop_BTF");
  if (!kernel || start == 0 || stop <= start) return it->second;
  std::vector<std::byte> bytes(stop - start);
  EXPECT_TRUE(kernel->mem->Read(start, bytes).ok());
  it->second = std::move(bytes);
  return it->second;
}

class RealBtfTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    btf_ = &GuestBtf(GetParam());
    if (btf_->empty()) {
      GTEST_SKIP() << "no test guest at " << kGuestRoot << "/" << GetParam()
                   << " (tools/guest/guest.py prepare --root " << kGuestRoot << ")";
    }
    auto types = KernelTypes::FromBtf(*btf_);
    ASSERT_TRUE(types) << types.error().ToString();
    types_ = std::move(*types);
  }
  uint64_t Offset(std::string_view type, std::string_view path) {
    auto m = types_->Member(type, path);
    EXPECT_TRUE(m) << type << "." << path << ": " << m.error().ToString();
    return m ? m->offset : ~0ull;
  }
  uint64_t SizeOf(std::string_view type) {
    auto s = types_->Size(type);
    EXPECT_TRUE(s) << type << ": " << s.error().ToString();
    return s ? *s : ~0ull;
  }

  const std::vector<std::byte>* btf_ = nullptr;
  std::unique_ptr<KernelTypes> types_;
};

// Facts fixed by the C definitions and the x86-64 ABI, independent of the kernel config.
TEST_P(RealBtfTest, KnownLayouts) {
  EXPECT_EQ(Offset("list_head", "next"), 0u);
  EXPECT_EQ(Offset("list_head", "prev"), 8u);
  EXPECT_EQ(SizeOf("list_head"), 16u);
  EXPECT_EQ(types_->Member("task_struct", "comm")->size, 16u);  // TASK_COMM_LEN
  EXPECT_EQ(types_->Member("task_struct", "pid")->size, 4u);
  EXPECT_EQ(SizeOf("pid_t"), 4u);  // a typedef
  EXPECT_EQ(SizeOf("u64"), 8u);
  EXPECT_EQ(types_->Member("cred", "uid")->size, 4u);  // kuid_t: struct { uid_t val; }
  EXPECT_EQ(Offset("cred", "uid.val"), Offset("cred", "uid"));
  // The 6.1 task state is __state; `state` went away in 5.14.
  EXPECT_TRUE(types_->Has("task_struct", "__state"));
  EXPECT_FALSE(types_->Has("task_struct", "state"));
}

TEST_P(RealBtfTest, NestedAndAnonymousMembers) {
  // mm_struct's members sit in an anonymous struct (6.1), reached without naming it.
  uint64_t mm_mt = Offset("mm_struct", "mm_mt");
  EXPECT_EQ(Offset("mm_struct", "mm_mt.ma_root"), mm_mt + Offset("maple_tree", "ma_root"));
  EXPECT_EQ(Offset("task_struct", "tasks.prev"), Offset("task_struct", "tasks") + 8);
  // A member of a named nested struct is not a member of the outer one.
  EXPECT_FALSE(types_->Has("task_struct", "prev"));
  // Every task_struct member looked at lies inside the struct.
  uint64_t task_size = SizeOf("task_struct");
  for (const char* m : {"tasks", "pid", "tgid", "comm", "mm", "real_parent", "cred", "signal",
                        "thread_group", "flags", "exit_state", "group_leader"}) {
    auto info = types_->Member("task_struct", m);
    ASSERT_TRUE(info) << m;
    EXPECT_LE(info->offset + info->size, task_size) << m;
  }
}

TEST_P(RealBtfTest, BitFields) {
  auto m = types_->Member("task_struct", "sched_reset_on_fork");
  ASSERT_TRUE(m) << m.error().ToString();
  EXPECT_EQ(m->bit_size, 1u);
  EXPECT_LT(m->bit_offset, 8u);
  EXPECT_GE(m->size * 8, m->bit_offset + m->bit_size);
  EXPECT_EQ(types_->Member("task_struct", "pid")->bit_size, 0u);
}

TEST_P(RealBtfTest, Enumerators) {
  EXPECT_EQ(types_->Enumerator("pid_type", "PIDTYPE_PID").value_or(-1), 0);
  EXPECT_EQ(types_->Enumerator("pid_type", "PIDTYPE_TGID").value_or(-1), 1);
  EXPECT_EQ(types_->Enumerator("maple_type", "maple_leaf_64").value_or(-1), 1);
  EXPECT_EQ(types_->Enumerator("pid_type", "PIDTYPE_NOPE").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(types_->Enumerator("no_such_enum", "x").error().code(), ErrorCode::kNotFound);
}

TEST_P(RealBtfTest, MissingNamesAreNotFoundAndNamed) {
  auto m = types_->Member("task_struct", "no_such_member");
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code(), ErrorCode::kNotFound);
  EXPECT_NE(m.error().message().find("no_such_member"), std::string::npos);
  EXPECT_EQ(types_->Member("no_such_struct", "x").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(types_->Size("no_such_struct").error().code(), ErrorCode::kNotFound);
  EXPECT_FALSE(types_->Has("task_struct", "pid.val"));  // pid is an int
  EXPECT_FALSE(types_->Has("task_struct", "tasks..next"));
  EXPECT_FALSE(types_->Has("task_struct", ""));
}

TEST_P(RealBtfTest, CorruptCopiesFailCleanly) {
  const std::vector<std::byte>& good = *btf_;
  // Truncated anywhere: the header's section lengths no longer fit.
  for (size_t len :
       {size_t{1}, size_t{8}, size_t{23}, size_t{24}, good.size() / 2, good.size() - 1}) {
    EXPECT_FALSE(KernelTypes::FromBtf(std::span(good).first(len))) << len;
  }
  // Each header byte flipped (magic, version, hdr_len, section offsets and lengths): an error,
  // or a parse whose answers are still safe to ask for.
  for (size_t i = 0; i < 24; ++i) {
    std::vector<std::byte> bad = good;
    bad[i] ^= std::byte{0xff};
    auto types = KernelTypes::FromBtf(bad);
    if (i < 2) {
      EXPECT_FALSE(types) << "magic byte " << i;
    }
    if (types) (void)(*types)->Member("task_struct", "tasks.next");
  }
}

INSTANTIATE_TEST_SUITE_P(Guests, RealBtfTest, ::testing::Values("l4", "l5"));

// --- Synthetic BTF built with libbpf's writer: exact layouts known by construction. ---

std::vector<std::byte> RawBytes(btf* b) {
  uint32_t size = 0;
  const void* raw = btf__raw_data(b, &size);
  std::vector<std::byte> out(size);
  std::memcpy(out.data(), raw, size);
  return out;
}

TEST(SyntheticBtfTest, AnonymousUnionsBitFieldsTypedefsEnum64) {
  btf* b = btf__new_empty();
  int u32 = btf__add_int(b, "unsigned int", 4, 0);
  int u64 = btf__add_int(b, "long unsigned int", 8, 0);
  int cu32 = btf__add_const(b, u32);
  int td = btf__add_typedef(b, "u32_t", cu32);
  // union { u32_t a; u64 b; } at offset 8 of outer, anonymous.
  int anon = btf__add_union(b, nullptr, 8);
  btf__add_field(b, "a", td, 0, 0);
  btf__add_field(b, "b", u64, 0, 0);
  int inner = btf__add_struct(b, "inner", 8);
  btf__add_field(b, "x", u32, 0, 0);
  btf__add_field(b, "flags", u32, 35, 3);  // bits 35..37: byte 4, bit 3
  int outer = btf__add_struct(b, "outer", 32);
  btf__add_field(b, "first", u64, 0, 0);
  btf__add_field(b, nullptr, anon, 64, 0);
  btf__add_field(b, "in", inner, 128, 0);
  btf__add_field(b, "last", u64, 192, 0);
  int e = btf__add_enum(b, "small", 4);
  btf__add_enum_value(b, "SMALL_NEG", -2);
  int e64 = btf__add_enum64(b, "big", 8, false);
  btf__add_enum64_value(b, "BIG_ONE", 1ull << 40);
  ASSERT_GT(outer, 0);
  ASSERT_GT(e, 0);
  ASSERT_GT(e64, 0);
  auto types = KernelTypes::FromBtf(RawBytes(b));
  btf__free(b);
  ASSERT_TRUE(types) << types.error().ToString();
  const KernelTypes& t = **types;

  EXPECT_EQ(t.Size("outer").value_or(0), 32u);
  EXPECT_EQ(t.Size("u32_t").value_or(0), 4u);
  EXPECT_EQ(t.Member("outer", "a")->offset, 8u);
  EXPECT_EQ(t.Member("outer", "a")->size, 4u);  // typedef to const u32
  EXPECT_EQ(t.Member("outer", "b")->size, 8u);
  EXPECT_EQ(t.Member("outer", "in")->offset, 16u);
  EXPECT_EQ(t.Member("outer", "in.x")->offset, 16u);
  auto flags = t.Member("outer", "in.flags");
  ASSERT_TRUE(flags);
  EXPECT_EQ(flags->offset, 16u + 4);
  EXPECT_EQ(flags->bit_offset, 3u);
  EXPECT_EQ(flags->bit_size, 3u);
  EXPECT_EQ(flags->size, 1u);
  EXPECT_EQ(t.Member("outer", "last")->offset, 24u);
  EXPECT_FALSE(t.Has("outer", "in.flags.x"));
  EXPECT_FALSE(t.Has("outer", "x"));
  EXPECT_EQ(t.Enumerator("small", "SMALL_NEG").value_or(0), -2);
  EXPECT_EQ(t.Enumerator("big", "BIG_ONE").value_or(0), int64_t{1} << 40);
}

TEST(SyntheticBtfTest, GarbageIsRejected) {
  EXPECT_FALSE(KernelTypes::FromBtf({}));
  std::vector<std::byte> zeros(4096);
  EXPECT_FALSE(KernelTypes::FromBtf(zeros));
  std::vector<std::byte> huge(65 << 20);
  EXPECT_FALSE(KernelTypes::FromBtf(huge));
}

}  // namespace
}  // namespace vmemfs::vmi::linux_os
