#include "vmi/linux/isf.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "drivers/snapshot_driver.h"
#include "vmi/guest.h"
#include "vmi/linux/file_path.h"
#include "vmi/linux/guest_root.h"
#include "vmi/linux/linux_os.h"
#include "vmi/linux/modules.h"
#include "vmi/linux/system_map.h"
#include "vmi/linux/task_layout.h"
#include "vmi/linux/vma_layout.h"
#include "tasks_test_guest.h"
#include "vmi/linux/vmcoreinfo_scan.h"

namespace vmemfs::vmi::linux_os {
namespace {

using Json = nlohmann::json;

constexpr char kSmall[] = R"({
  "metadata": {"format": "6.2.0"},
  "base_types": {"int": {"size": 4, "signed": true, "kind": "int", "endian": "little"},
                 "char": {"size": 1, "signed": true, "kind": "char", "endian": "little"},
                 "unsigned int": {"size": 4, "signed": false, "kind": "int", "endian": "little"},
                 "pointer": {"size": 8, "signed": false, "kind": "int", "endian": "little"}},
  "user_types": {
    "list_head": {"kind": "struct", "size": 16, "fields": {
      "next": {"offset": 0, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "list_head"}}},
      "prev": {"offset": 8, "type": {"kind": "pointer", "subtype": {"kind": "struct", "name": "list_head"}}}}},
    "unnamed_1": {"kind": "union", "size": 8, "fields": {
      "u": {"offset": 0, "type": {"kind": "base", "name": "unsigned int"}},
      "p": {"offset": 0, "type": {"kind": "pointer", "subtype": {"kind": "base", "name": "char"}}}}},
    "task_struct": {"kind": "struct", "size": 64, "fields": {
      "tasks": {"offset": 8, "type": {"kind": "struct", "name": "list_head"}},
      "pid": {"offset": 24, "type": {"kind": "base", "name": "int"}},
      "comm": {"offset": 28, "type": {"kind": "array", "count": 16, "subtype": {"kind": "base", "name": "char"}}},
      "unnamed_field_30": {"offset": 48, "type": {"kind": "union", "name": "unnamed_1"}},
      "flag": {"offset": 56, "type": {"kind": "bitfield", "bit_position": 11, "bit_length": 3,
               "type": {"kind": "base", "name": "unsigned int"}}},
      "st": {"offset": 60, "type": {"kind": "enum", "name": "state"}}}}},
  "enums": {"state": {"size": 4, "base": "int", "constants": {"RUNNING": 0, "NEG": -3}}},
  "symbols": {"init_task": {"address": 18446744071600000000, "type": {"kind": "struct", "name": "task_struct"}},
              "schedule": {"address": 18446744071590000000, "type": {"kind": "function"}},
              "jiffies": {"address": 18446744071600000064}}
})";

TEST(IsfTest, MembersSizesEnumsAndSymbols) {
  auto isf = ParseIsf(kSmall, "small.json");
  ASSERT_TRUE(isf) << isf.error().ToString();
  const KernelTypes& t = *isf->types;
  EXPECT_EQ(*t.Size("task_struct"), 64u);
  EXPECT_EQ(t.Member("task_struct", "tasks.prev")->offset, 16u);
  EXPECT_EQ(t.Member("task_struct", "tasks")->size, 16u);
  EXPECT_EQ(t.Member("task_struct", "comm")->size, 16u);
  EXPECT_EQ(t.Member("task_struct", "p")->offset, 48u);  // through the anonymous union
  EXPECT_EQ(t.Member("task_struct", "p")->size, 8u);
  EXPECT_EQ(t.Member("task_struct", "st")->size, 4u);
  auto flag = t.Member("task_struct", "flag");
  ASSERT_TRUE(flag);
  EXPECT_EQ(flag->offset, 57u);
  EXPECT_EQ(flag->bit_offset, 3u);
  EXPECT_EQ(flag->bit_size, 3u);
  EXPECT_EQ(*t.Enumerator("state", "NEG"), -3);
  EXPECT_EQ(t.Member("task_struct", "nope").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(t.Member("task_struct", "pid.x").error().code(), ErrorCode::kNotFound);
  EXPECT_EQ(t.Member("nope", "x").error().code(), ErrorCode::kNotFound);
  ASSERT_EQ(isf->symbols.size(), 3u);
  EXPECT_EQ(isf->symbols[0].name, "schedule");  // by address
  EXPECT_EQ(isf->symbols[0].type, 'T');
  EXPECT_EQ(isf->symbols[1].type, 'D');
  EXPECT_EQ(isf->symbols[2].type, '?');
}

TEST(IsfTest, BadFilesGiveOneLineErrorsNamingTheFile) {
  struct Case {
    std::string text;
    const char* want;
  } cases[] = {
      {"{\n\"metadata\": {\"format\": \"1\"},\n\"user_types\": {,}}", "f.json:3: not JSON"},
      {"[]", "f.json: not an ISF object"},
      {"{\"user_types\": {}}", "no metadata.format"},
      {"{\"metadata\": {\"format\": \"1\"}}", "no user_types"},
      {"{\"metadata\": {\"format\": \"1\"}, \"user_types\": {\"s\": {\"size\": -1, \"fields\": "
       "{}}}}",
       "user type 's' needs a size"},
      {"{\"metadata\": {\"format\": \"1\"}, \"user_types\": {\"s\": {\"size\": 1, \"fields\": "
       "{\"a\": {\"offset\": 0}}}}}",
       "field 's.a' needs an offset and a type"},
      {"{\"metadata\": {\"format\": \"1\"}, \"user_types\": {}, \"symbols\": {\"x\": {}}}",
       "symbol 'x' has no address"},
      {std::string(100, '[') + std::string(100, ']'), "nests too deep"},
  };
  for (const Case& c : cases) {
    auto r = ParseIsf(c.text, "f.json");
    ASSERT_FALSE(r) << c.text;
    EXPECT_EQ(r.error().code(), ErrorCode::kBadData);
    EXPECT_NE(r.error().message().find(c.want), std::string::npos) << r.error().message();
    EXPECT_EQ(r.error().message().find('\n'), std::string::npos);
  }
}

TEST(IsfTest, HostileTypeCyclesAreBounded) {
  auto isf = ParseIsf(R"({"metadata": {"format": "1"}, "user_types": {
      "a": {"size": 8, "fields": {"unnamed_x": {"offset": 0, "type": {"kind": "struct", "name": "a"}},
                                  "arr": {"offset": 0, "type": {"kind": "array", "count": 18446744073709551615,
                                          "subtype": {"kind": "struct", "name": "a"}}}}}}})",
                      "c.json");
  ASSERT_TRUE(isf) << isf.error().ToString();
  EXPECT_FALSE(isf->types->Member("a", "missing"));
  EXPECT_FALSE(isf->types->Member("a", "arr"));
}

// Records every question the OS layer asks of the guest's BTF, so an ISF answering exactly
// those can be written: the ISF parser then stands in for BTF for the whole OS layer.
class RecordingTypes final : public KernelTypes {
 public:
  explicit RecordingTypes(const KernelTypes& real) : real_(real) {}
  Result<uint64_t> Size(std::string_view type) const override {
    auto r = real_.Size(type);
    if (r) sizes_[std::string(type)] = *r;
    return r;
  }
  Result<MemberInfo> Member(std::string_view type, std::string_view path) const override {
    auto r = real_.Member(type, path);
    if (r) members_[{std::string(type), std::string(path)}] = *r;
    return r;
  }
  Result<int64_t> Enumerator(std::string_view e, std::string_view name) const override {
    auto r = real_.Enumerator(e, name);
    if (r) enums_[std::string(e)][std::string(name)] = *r;
    return r;
  }
  Json ToIsf(const std::vector<Symbol>& symbols) const;

 private:
  static Json Descriptor(const MemberInfo& m);
  void AddField(Json& user_types, const std::string& type, const std::string& path,
                const MemberInfo& m) const;

  const KernelTypes& real_;
  mutable std::map<std::string, uint64_t> sizes_;
  mutable std::map<std::pair<std::string, std::string>, MemberInfo> members_;
  mutable std::map<std::string, std::map<std::string, int64_t>> enums_;
};

Json RecordingTypes::Descriptor(const MemberInfo& m) {
  if (m.bit_size != 0) {
    return {{"kind", "bitfield"},
            {"bit_position", m.bit_offset},
            {"bit_length", m.bit_size},
            {"type", {{"kind", "base"}, {"name", "b" + std::to_string(m.size)}}}};
  }
  if (m.size == 1 || m.size == 2 || m.size == 4 || m.size == 8) {
    return {{"kind", "base"}, {"name", "b" + std::to_string(m.size)}};
  }
  return {{"kind", "array"}, {"count", m.size}, {"subtype", {{"kind", "base"}, {"name", "b1"}}}};
}

// "a.b.c" in T becomes field a of synthetic struct "T.a", which has field b of "T.a.b", ...
void RecordingTypes::AddField(Json& user_types, const std::string& type, const std::string& path,
                              const MemberInfo& m) const {
  std::string outer = type;
  uint64_t outer_offset = 0;
  size_t start = 0;
  for (size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', start)) {
    std::string prefix = path.substr(0, dot);
    auto inner = real_.Member(type, prefix);
    ASSERT_TRUE(inner);
    std::string inner_type = type + "." + prefix;
    user_types[outer]["fields"][path.substr(start, dot - start)] = {
        {"offset", inner->offset - outer_offset},
        {"type", {{"kind", "struct"}, {"name", inner_type}}}};
    user_types[inner_type]["size"] = inner->size;
    user_types[inner_type]["kind"] = "struct";
    outer = inner_type;
    outer_offset = inner->offset;
    start = dot + 1;
  }
  user_types[outer]["fields"][path.substr(start)] = {{"offset", m.offset - outer_offset},
                                                     {"type", Descriptor(m)}};
}

Json RecordingTypes::ToIsf(const std::vector<Symbol>& symbols) const {
  Json isf = {{"metadata", {{"format", "6.2.0"}}}};
  for (int size : {1, 2, 4, 8}) {
    isf["base_types"]["b" + std::to_string(size)] = {{"size", size}, {"kind", "int"}};
  }
  Json& types = isf["user_types"];
  for (const auto& [type, size] : sizes_) types[type] = {{"kind", "struct"}, {"size", size}};
  for (const auto& [key, m] : members_) {
    if (!types.contains(key.first)) types[key.first] = {{"kind", "struct"}, {"size", 0}};
    AddField(types, key.first, key.second, m);
  }
  for (auto& [name, t] : types.items()) {
    if (!t.contains("fields")) t["fields"] = Json::object();
  }
  for (const auto& [e, constants] : enums_)
    isf["enums"][e] = {{"size", 4}, {"constants", constants}};
  for (const Symbol& s : symbols) isf["symbols"][s.name] = {{"address", s.address}};
  return isf;
}

std::unique_ptr<testing::RealKernel> OpenReal(const std::string& dir,
                                              const OsOverrides& overrides = {}) {
  std::string why;
  auto k = testing::OpenRealKernel(dir + "/raw.mem", &why, overrides);
  EXPECT_TRUE(k) << why;
  return k;
}

std::string Describe(LinuxOs& os) {
  std::string s;
  for (const Fact& f : os.Describe()) s += f.key + ": " + f.value + " (" + f.how + ")\n";
  return s;
}

// Every task's pid and name, and every process's maps, by pid.
std::map<int32_t, std::string> Names(OperatingSystem& os) {
  std::map<int32_t, std::string> names;
  auto pids = os.ProcessIds();
  EXPECT_TRUE(pids) << pids.error().ToString();
  for (int32_t pid : pids.value_or(std::vector<int32_t>{})) {
    auto tids = os.ThreadIds(pid);
    for (int32_t tid : tids.value_or(std::vector<int32_t>{})) {
      auto process = os.Process(tid);
      auto comm = process ? (*process)->Comm() : process.error();
      EXPECT_TRUE(comm) << tid << ": " << comm.error().ToString();
      names[tid] = comm.value_or("?");
    }
  }
  return names;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// An ISF made from the guest's own BTF (only what the OS layer asks) and its symbols un-slid:
// with it, and no BTF, the process list and every truth maps file still come out right.
class IsfRealGuestTest : public ::testing::TestWithParam<const char*> {};

TEST_P(IsfRealGuestTest, WholeOsLayerWorksFromIsfAlone) {
  std::string dir = ::vmemfs::testing::GuestRoot() + "/" + GetParam();
  if (!std::filesystem::exists(dir + "/raw.mem")) GTEST_SKIP() << "no test guest at " << dir;
  auto base = OpenReal(dir);
  ASSERT_TRUE(base);
  // BTF from the guest, recorded through the resolvers the OS layer runs.
  const Symbol* start = base->os().Symbols().Lookup("__start_BTF");
  const Symbol* stop = base->os().Symbols().Lookup("__stop_BTF");
  ASSERT_TRUE(start && stop);
  std::vector<std::byte> btf(stop->address - start->address);
  ASSERT_TRUE(base->mem->Read(start->address, btf).ok());
  auto real = KernelTypes::FromBtf(btf);
  ASSERT_TRUE(real);
  RecordingTypes rec(**real);
  ASSERT_TRUE(ResolveTaskLayout(rec));
  ASSERT_TRUE(ResolveVmaLayout(rec));
  ASSERT_TRUE(ResolvePathLayout(rec));
  (void)ResolveModuleLayout(rec);
  // Symbols at link-time addresses, as a distribution's ISF has them.
  auto truth = ReadSystemMap(dir + "/truth/kallsyms.txt");
  ASSERT_TRUE(truth);
  uint64_t offset = testing::ReadTruthSymbol(dir, "_stext") - 0xffffffff81000000ull;
  for (Symbol& s : *truth) {
    if (s.address >> 63) s.address -= offset;
  }
  std::string path = ::testing::TempDir() + "/vmemfs_isf_" + GetParam() + ".json";
  std::ofstream(path) << rec.ToIsf(*truth).dump();

  OsOverrides overrides;
  overrides.isf = path;
  auto with = OpenReal(dir, overrides);
  ASSERT_TRUE(with);
  std::string info = Describe(with->os());
  EXPECT_NE(info.find("types: ISF " + path), std::string::npos) << info;
  EXPECT_NE(info.find("ISF " + path), std::string::npos) << info;
  EXPECT_EQ(info.find("BTF"), std::string::npos) << info;
  EXPECT_EQ(with->os().Symbols().Lookup("init_task")->address,
            base->os().Symbols().Lookup("init_task")->address);

  auto tasks = Names(with->os());
  ASSERT_GT(tasks.size(), 300u);
  EXPECT_EQ(tasks, Names(base->os()));
  int maps = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/truth/maps")) {
    int pid = std::stoi(e.path().stem().string());
    auto process = with->os().Process(pid);
    ASSERT_TRUE(process) << pid << ": " << process.error().ToString();
    auto text = (*process)->MapsText();
    ASSERT_TRUE(text) << pid << ": " << text.error().ToString();
    EXPECT_EQ(*text, ReadAll(e.path())) << "pid " << pid;
    ++maps;
  }
  EXPECT_GT(maps, 0);
}

// The ISF vmemfs writes for a guest (isf/<release>.json), given back to vmemfs as --isf in
// place of the guest's BTF and kallsyms: the whole OS layer gives the same tasks and maps.
TEST_P(IsfRealGuestTest, GeneratedIsfGivesTheSameProcessesAsBtf) {
  std::string dir = ::vmemfs::testing::GuestRoot() + "/" + GetParam();
  if (!std::filesystem::exists(dir + "/raw.mem")) GTEST_SKIP() << "no test guest at " << dir;
  auto base = OpenReal(dir);
  ASSERT_TRUE(base);
  auto files = base->os().SymbolFiles();
  ASSERT_EQ(files.size(), 1u);
  auto text = files[0].make();
  ASSERT_TRUE(text) << text.error().ToString();
  std::string path = ::testing::TempDir() + "/vmemfs_generated_" + GetParam() + ".json";
  std::ofstream(path) << *text;

  OsOverrides overrides;
  overrides.isf = path;
  auto with = OpenReal(dir, overrides);
  ASSERT_TRUE(with);
  std::string info = Describe(with->os());
  EXPECT_NE(info.find("types: ISF " + path), std::string::npos) << info;
  EXPECT_EQ(info.find("BTF"), std::string::npos) << info;
  EXPECT_EQ(with->os().Symbols().Lookup("init_task")->address,
            base->os().Symbols().Lookup("init_task")->address);

  auto tasks = Names(with->os());
  ASSERT_GT(tasks.size(), 300u);
  EXPECT_EQ(tasks, Names(base->os()));
  int maps = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/truth/maps")) {
    int pid = std::stoi(e.path().stem().string());
    auto process = with->os().Process(pid);
    ASSERT_TRUE(process) << pid << ": " << process.error().ToString();
    auto maps_text = (*process)->MapsText();
    ASSERT_TRUE(maps_text) << pid << ": " << maps_text.error().ToString();
    EXPECT_EQ(*maps_text, ReadAll(e.path())) << "pid " << pid;
    ++maps;
  }
  EXPECT_GT(maps, 0);
}

INSTANTIATE_TEST_SUITE_P(Guests, IsfRealGuestTest, ::testing::Values("l4", "l5"));

}  // namespace
}  // namespace vmemfs::vmi::linux_os
