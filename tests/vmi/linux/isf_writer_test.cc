#include "vmi/linux/isf_writer.h"

#include <bpf/btf.h>
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "isf_schema.h"
#include "tasks_test_guest.h"
#include "vmi/linux/isf.h"
#include "vmi/linux/kernel_isf.h"
#include "vmi/linux/kernel_types.h"

namespace vmemfs::vmi::linux_os {
namespace {

using Json = nlohmann::json;
using ::vmemfs::testing::IsfSchemaCheck;

std::string Base64Decode(const std::string& text) {
  static const std::string kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int n = 0;
  for (char c : text) {
    if (c == '=') break;
    bits = bits << 6 | static_cast<uint32_t>(kAlphabet.find(c));
    if ((n += 6) >= 8) out += static_cast<char>((bits >> (n -= 8)) & 0xff);
  }
  return out;
}

// A BTF made with libbpf's writer, handed over as the raw bytes a kernel would carry.
class BtfBuilder {
 public:
  BtfBuilder() : b_(btf__new_empty()) {}
  ~BtfBuilder() { btf__free(b_); }
  btf* operator->() { return b_; }
  btf* get() { return b_; }
  std::vector<std::byte> Bytes() {
    uint32_t size = 0;
    const void* raw = btf__raw_data(b_, &size);
    auto* p = static_cast<const std::byte*>(raw);
    return std::vector<std::byte>(p, p + size);
  }
  // Makes type `id` refer to `target` (for cycles libbpf's writer cannot make).
  void Retarget(int id, int target) {
    const_cast<btf_type*>(btf__type_by_id(b_, id))->type = target;
  }

 private:
  btf* b_;
};

Json Parse(const IsfOutput& out) {
  Json j = Json::parse(out.json, nullptr, /*allow_exceptions=*/false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON";
  return j;
}

std::string Errors(const Json& j) {
  std::string s;
  for (const std::string& e : IsfSchemaCheck::Errors(j)) s += e + "\n";
  return s;
}

// A small kernel-like BTF with every kind the writer handles.
class SmallBtf {
 public:
  SmallBtf() {
    i32 = btf__add_int(b.get(), "int", 4, BTF_INT_SIGNED);
    u32 = btf__add_int(b.get(), "unsigned int", 4, 0);
    chr = btf__add_int(b.get(), "char", 1, BTF_INT_SIGNED | BTF_INT_CHAR);
    boolean = btf__add_int(b.get(), "_Bool", 1, BTF_INT_BOOL);
    int list_ptr = btf__add_ptr(b.get(), btf__type_cnt(b.get()) + 1);  // to list_head
    list = btf__add_struct(b.get(), "list_head", 16);
    btf__add_field(b.get(), "next", list_ptr, 0, 0);
    btf__add_field(b.get(), "prev", list_ptr, 64, 0);
    anon = btf__add_union(b.get(), nullptr, 8);
    btf__add_field(b.get(), "u", u32, 0, 0);
    btf__add_field(b.get(), "c", chr, 0, 0);
    btf__add_typedef(b.get(), "anon_t", anon);
    hidden = btf__add_struct(b.get(), nullptr, 4);  // anonymous, no typedef
    btf__add_field(b.get(), "h", i32, 0, 0);
    state = btf__add_enum(b.get(), "state", 4);
    btf__add_enum_value(b.get(), "RUNNING", 0);
    btf__add_enum_value(b.get(), "NEG", -3);
    int comm = btf__add_array(b.get(), u32, chr, 16);
    int const_list = btf__add_const(b.get(), list);
    int proto = btf__add_func_proto(b.get(), i32);
    int fn = btf__add_ptr(b.get(), proto);
    int fwd_list = btf__add_fwd(b.get(), "list_head", BTF_FWD_STRUCT);
    int fwd_only = btf__add_fwd(b.get(), "only_declared", BTF_FWD_STRUCT);
    int fwd_ptr = btf__add_ptr(b.get(), fwd_only);
    dup = btf__add_struct(b.get(), "list_head", 24);  // a second list_head
    btf__add_field(b.get(), "x", i32, 0, 0);
    task = btf__add_struct(b.get(), "task_struct", 96);
    btf__add_field(b.get(), "tasks", const_list, 64, 0);
    btf__add_field(b.get(), "pid", i32, 192, 0);
    btf__add_field(b.get(), "comm", comm, 224, 0);
    btf__add_field(b.get(), nullptr, anon, 384, 0);
    btf__add_field(b.get(), "flag", u32, 56 * 8 + 11, 3);
    btf__add_field(b.get(), "st", state, 60 * 8, 0);
    btf__add_field(b.get(), "fn", fn, 64 * 8, 0);
    btf__add_field(b.get(), "other", fwd_list, 72 * 8, 0);
    btf__add_field(b.get(), "decl", fwd_ptr, 88 * 8, 0);
    btf__add_field(b.get(), "ok", boolean, 80 * 8, 0);
    btf__add_var(b.get(), "runqueues", BTF_VAR_GLOBAL_ALLOCATED, list);
  }

  BtfBuilder b;
  int i32, u32, chr, boolean, list, anon, hidden, state, dup, task;
};

SymbolTable SmallSymbols() {
  return SymbolTable({
      {0xffffffff9a000000, 'T', "_stext", ""},
      {0xffffffff9b000100, 'D', "init_task", ""},
      {0x2c000, 'D', "runqueues", ""},
      {0xffffffff9b200000, 'D', "linux_banner", ""},
      {0xffffffff9a000100, 't', "dup_name", ""},
      {0xffffffff9a000200, 't', "dup_name", ""},
      {0xffffffffc0001000, 't', "modfn", "mymod"},
  });
}

TEST(IsfWriterTest, EveryKindOfTypeAndSymbol) {
  SmallBtf small;
  auto bytes = small.b.Bytes();
  SymbolTable symbols = SmallSymbols();
  IsfSource source{.btf = bytes,
                   .symbols = &symbols,
                   .kaslr_offset = 0x19000000,
                   .banner = "Linux version 6.1.0-test (gcc) #1 SMP\n",
                   .producer_version = "9.9"};
  auto out = WriteIsf(source);
  ASSERT_TRUE(out) << out.error().ToString();
  EXPECT_TRUE(out->notes.empty());
  Json j = Parse(*out);
  EXPECT_EQ(Errors(j), "");
  EXPECT_EQ(j["metadata"]["format"], "6.2.0");
  EXPECT_EQ(j["metadata"]["producer"]["version"], "9.9");

  const Json& ut = j["user_types"];
  EXPECT_EQ(ut["list_head"]["size"], 16);
  EXPECT_EQ(ut["list_head"]["fields"]["next"]["type"],
            Json::parse(R"({"kind":"pointer","subtype":{"kind":"struct","name":"list_head"}})"));
  EXPECT_EQ(ut[fmt::format("list_head_btf{}", small.dup)]["size"], 24);
  EXPECT_EQ(ut["anon_t"]["kind"], "union");  // named after its typedef
  EXPECT_EQ(ut[fmt::format("unnamed_{}", small.hidden)]["size"], 4);
  EXPECT_EQ(ut["only_declared"]["size"], 0);
  const Json& f = ut["task_struct"]["fields"];
  EXPECT_EQ(f["tasks"], Json::parse(R"({"offset":8,"type":{"kind":"struct","name":"list_head"}})"));
  EXPECT_EQ(f["comm"]["type"], Json::parse(R"({"kind":"array","count":16,
            "subtype":{"kind":"base","name":"char"}})"));
  EXPECT_EQ(f["unnamed_field_3"], Json::parse(R"({"offset":48,"anonymous":true,
            "type":{"kind":"union","name":"anon_t"}})"));
  EXPECT_EQ(f["flag"], Json::parse(R"({"offset":56,"type":{"kind":"bitfield","bit_position":11,
            "bit_length":3,"type":{"kind":"base","name":"unsigned int"}}})"));
  EXPECT_EQ(f["st"]["type"], Json::parse(R"({"kind":"enum","name":"state"})"));
  EXPECT_EQ(f["fn"]["type"], Json::parse(R"({"kind":"pointer","subtype":{"kind":"function"}})"));
  EXPECT_EQ(f["other"]["type"]["name"], "list_head");  // the forward declaration's definition
  EXPECT_EQ(j["base_types"]["_Bool"]["kind"], "bool");
  EXPECT_EQ(j["base_types"]["char"]["kind"], "char");
  EXPECT_EQ(j["base_types"]["int"]["signed"], true);
  EXPECT_EQ(j["base_types"]["pointer"]["size"], 8);
  EXPECT_EQ(j["enums"]["state"]["base"], "int");
  EXPECT_EQ(j["enums"]["state"]["constants"]["NEG"], -3);

  const Json& sym = j["symbols"];
  EXPECT_EQ(sym["_stext"]["address"], 0xffffffff81000000ull);  // unslid
  EXPECT_EQ(sym["runqueues"]["address"], 0x2c000);             // per-cpu: as it is
  EXPECT_EQ(sym["runqueues"]["type"]["name"], "list_head");    // from the BTF VAR
  EXPECT_EQ(sym["init_task"]["type"], Json::parse(R"({"kind":"struct","name":"task_struct"})"));
  EXPECT_EQ(sym["dup_name"]["address"], 0xffffffff9a000100ull - 0x19000000);  // the first
  EXPECT_FALSE(sym.contains("modfn"));
  EXPECT_EQ(Base64Decode(sym["linux_banner"]["constant_data"]),
            std::string("Linux version 6.1.0-test (gcc) #1 SMP\n") + '\0');
  EXPECT_EQ(out->symbols, 5u);

  // isf.h reads what was written, anonymous members and bit fields included.
  auto isf = ParseIsf(out->json, "written.json");
  ASSERT_TRUE(isf) << isf.error().ToString();
  EXPECT_EQ(isf->types->Member("task_struct", "c")->offset, 48u);
  auto flag = isf->types->Member("task_struct", "flag");
  ASSERT_TRUE(flag);
  EXPECT_EQ(flag->offset, 57u);
  EXPECT_EQ(flag->bit_offset, 3u);
  EXPECT_EQ(flag->bit_size, 3u);
  EXPECT_EQ(*isf->types->Enumerator("state", "NEG"), -3);
}

TEST(IsfWriterTest, RefusesWhatLibbpfRefuses) {
  std::vector<std::byte> junk(64, std::byte{0x41});
  SymbolTable symbols;
  auto out = WriteIsf({.btf = junk, .symbols = &symbols});
  ASSERT_FALSE(out);
  EXPECT_EQ(out.error().code(), ErrorCode::kBadData);
}

// A chain of `n` structs, each with a member pointing to the next.
std::vector<std::byte> ManyStructs(int n) {
  BtfBuilder b;
  int i32 = btf__add_int(b.get(), "int", 4, BTF_INT_SIGNED);
  for (int i = 0; i < n; ++i) {
    int ptr = btf__add_ptr(b.get(), i32 + 2 * i + 4);  // the next struct
    btf__add_struct(b.get(), fmt::format("s{}", i).c_str(), 16);
    btf__add_field(b.get(), "a", i32, 0, 0);
    btf__add_field(b.get(), "next", ptr, 64, 0);
  }
  return b.Bytes();
}

TEST(IsfWriterTest, HugeTypeCountsAreCappedWithANote) {
  auto bytes = ManyStructs(50'000);
  SymbolTable symbols = SmallSymbols();
  auto out = WriteIsf({.btf = bytes, .symbols = &symbols}, {.max_types = 1000});
  ASSERT_TRUE(out) << out.error().ToString();
  ASSERT_EQ(out->notes.size(), 1u);
  EXPECT_NE(out->notes[0].find("the BTF has 100001 types; only the first 1000 were written"),
            std::string::npos)
      << out->notes[0];
  EXPECT_EQ(out->user_types, 499u);  // ids 3, 5, ... 999
  Json j = Parse(*out);
  EXPECT_EQ(Errors(j), "");  // references past the cap are void, not dangling
  EXPECT_EQ(j["user_types"]["s497"]["fields"]["next"]["type"]["subtype"]["name"], "s498");
  EXPECT_EQ(j["user_types"]["s498"]["fields"]["next"]["type"]["subtype"]["name"], "void");
  EXPECT_EQ(j["metadata"]["producer"]["notes"][0], out->notes[0]);
  EXPECT_TRUE(ParseIsf(out->json, "capped.json"));
}

TEST(IsfWriterTest, DefaultTypeCapHolds) {
  auto bytes = ManyStructs(550'000);  // 1,100,001 types: more than any kernel has
  SymbolTable symbols;
  auto out = WriteIsf({.btf = bytes, .symbols = &symbols});
  ASSERT_TRUE(out) << out.error().ToString();
  ASSERT_FALSE(out->notes.empty());
  EXPECT_NE(out->notes[0].find("only the first 1000000 were written"), std::string::npos);
  EXPECT_EQ(out->user_types, 499'999u);
}

TEST(IsfWriterTest, OutputSizeIsCappedAndStaysValid) {
  auto bytes = ManyStructs(20'000);
  SymbolTable symbols = SmallSymbols();
  auto out = WriteIsf({.btf = bytes, .symbols = &symbols}, {.max_bytes = 64 << 10});
  ASSERT_TRUE(out) << out.error().ToString();
  ASSERT_EQ(out->notes.size(), 1u);
  EXPECT_NE(out->notes[0].find("entries after that point were left out"), std::string::npos);
  EXPECT_LT(out->json.size(), (64u << 10) + 4096);
  EXPECT_LT(out->user_types, 20'000u);
  Json j = Parse(*out);
  EXPECT_TRUE(j.contains("base_types") && j.contains("user_types") && j.contains("symbols"));
  EXPECT_TRUE(ParseIsf(out->json, "capped.json"));
}

TEST(IsfWriterTest, CyclesAndLongChainsEndAsVoid) {
  BtfBuilder b;
  int i32 = btf__add_int(b.get(), "int", 4, BTF_INT_SIGNED);
  int a = btf__add_typedef(b.get(), "a_t", i32);
  int bb = btf__add_typedef(b.get(), "b_t", a);
  b.Retarget(a, bb);  // a_t -> b_t -> a_t -> ...
  int ptr = i32;
  for (int i = 0; i < 100; ++i) ptr = btf__add_ptr(b.get(), ptr);
  int self = btf__add_ptr(b.get(), 0);
  b.Retarget(self, self);  // a pointer to itself
  btf__add_struct(b.get(), "s", 24);
  btf__add_field(b.get(), "cycle", a, 0, 0);
  btf__add_field(b.get(), "deep", ptr, 64, 0);
  btf__add_field(b.get(), "self", self, 128, 0);
  auto bytes = b.Bytes();
  SymbolTable symbols;
  auto out = WriteIsf({.btf = bytes, .symbols = &symbols});
  ASSERT_TRUE(out) << out.error().ToString();
  Json j = Parse(*out);
  EXPECT_EQ(Errors(j), "");
  EXPECT_EQ(j["user_types"]["s"]["fields"]["cycle"]["type"]["name"], "void");
  ASSERT_EQ(out->notes.size(), 1u);
  EXPECT_NE(out->notes[0].find("type chains longer than 32 links"), std::string::npos);
}

TEST(IsfWriterTest, HostileNamesStayValidJson) {
  BtfBuilder b;
  int i32 = btf__add_int(b.get(), "int", 4, BTF_INT_SIGNED);
  std::string bad = "q\"uo\\te\n\x01\xff\xc3";
  btf__add_struct(b.get(), bad.c_str(), 4);
  btf__add_field(b.get(), bad.c_str(), i32, 0, 0);
  btf__add_int(b.get(), "int", 8, 0);  // a second "int", of another size
  auto bytes = b.Bytes();
  SymbolTable symbols({{0xffffffff81000000, 'T', bad, ""}});
  auto out = WriteIsf({.btf = bytes, .symbols = &symbols});
  ASSERT_TRUE(out) << out.error().ToString();
  Json j = Parse(*out);
  EXPECT_EQ(Errors(j), "");
  EXPECT_EQ(j["user_types"].size(), 1u);
  EXPECT_EQ(j["base_types"]["int"]["size"], 4);
  EXPECT_EQ(j["base_types"]["int_btf3"]["size"], 8);
  EXPECT_TRUE(ParseIsf(out->json, "names.json"));
}

// Names a hostile BTF picks to collide with the writer's own never make a JSON key repeat
// (a repeated key would silently drop a type: every parser keeps one of them).
TEST(IsfWriterTest, GeneratedNamesNeverCollide) {
  BtfBuilder b;
  int i32 = btf__add_int(b.get(), "int", 4, BTF_INT_SIGNED);  // 1
  btf__add_struct(b.get(), "s_btf4", 4);                      // 2: what 4 would be called
  btf__add_field(b.get(), "a", i32, 0, 0);
  btf__add_struct(b.get(), "s", 4);  // 3
  btf__add_field(b.get(), "a", i32, 0, 0);
  btf__add_struct(b.get(), "s", 8);  // 4: a second "s"
  btf__add_field(b.get(), "a", i32, 0, 0);
  int anon = btf__add_union(b.get(), nullptr, 4);  // 5
  btf__add_field(b.get(), "u", i32, 0, 0);
  btf__add_struct(b.get(), "unnamed_5", 4);  // 6: what 5 would be called
  btf__add_struct(b.get(), "m", 8);          // 7
  btf__add_field(b.get(), "unnamed_field_1", i32, 0, 0);
  btf__add_field(b.get(), nullptr, anon, 32, 0);
  auto bytes = b.Bytes();
  SymbolTable symbols;
  auto out = WriteIsf({.btf = bytes, .symbols = &symbols});
  ASSERT_TRUE(out) << out.error().ToString();
  Json j = Parse(*out);
  EXPECT_EQ(Errors(j), "");
  EXPECT_EQ(j["user_types"].size(), out->user_types);
  EXPECT_EQ(out->user_types, 6u);
  EXPECT_EQ(j["user_types"]["s_btf4_2"]["size"], 8);
  EXPECT_EQ(j["user_types"]["unnamed_5"]["kind"], "struct");
  EXPECT_EQ(j["user_types"]["unnamed_5_btf5"]["kind"], "union");
  const Json& m = j["user_types"]["m"]["fields"];
  EXPECT_EQ(m.size(), 2u);
  EXPECT_EQ(m["unnamed_field_1_"]["offset"], 4);
  EXPECT_EQ(m["unnamed_field_1_"]["type"]["name"], "unnamed_5_btf5");
}

// --- The real guests ---

// The guest's /proc/kallsyms core-kernel lines, first of each name.
std::map<std::string, uint64_t> TruthKernelSymbols(const std::string& dir) {
  std::ifstream in(dir + "/truth/kallsyms.txt");
  std::map<std::string, uint64_t> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.find('[') != std::string::npos) continue;
    std::istringstream f(line);
    std::string addr, type, name;
    f >> addr >> type >> name;
    out.emplace(name, std::stoull(addr, nullptr, 16));
  }
  return out;
}

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

class IsfWriterRealGuestTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    dir_ = ::vmemfs::testing::GuestRoot() + "/" + GetParam();
    if (!std::filesystem::exists(dir_ + "/raw.mem")) GTEST_SKIP() << "no test guest at " << dir_;
    std::string why;
    kernel_ = testing::OpenRealKernel(dir_ + "/raw.mem", &why);
    ASSERT_TRUE(kernel_) << why;
    const Symbol* start = kernel_->os().Symbols().Lookup("__start_BTF");
    const Symbol* stop = kernel_->os().Symbols().Lookup("__stop_BTF");
    ASSERT_TRUE(start && stop);
    btf_bytes_.resize(stop->address - start->address);
    ASSERT_TRUE(kernel_->mem->Read(start->address, btf_bytes_).ok());
    auto types = KernelTypes::FromBtf(btf_bytes_);
    ASSERT_TRUE(types);
    types_ = std::move(*types);
    btf_ = btf__new(btf_bytes_.data(), btf_bytes_.size());
    ASSERT_NE(btf_, nullptr);

    auto files = kernel_->os().SymbolFiles();
    ASSERT_EQ(files.size(), 1u);
    EXPECT_EQ(files[0].directory, "isf");
    std::string release = ReadText(dir_ + "/truth/uname.txt");
    release.erase(release.find_last_not_of('\n') + 1);
    EXPECT_EQ(files[0].name, release + ".json");
    auto text = files[0].make();
    ASSERT_TRUE(text) << text.error().ToString();
    text_ = std::move(*text);
    json_ = Json::parse(text_);
    auto isf = ParseIsf(text_, "generated.json");
    ASSERT_TRUE(isf) << isf.error().ToString();
    isf_ = std::move(*isf);
  }
  void TearDown() override { btf__free(btf_); }

  std::string_view Name(uint32_t off) const { return btf__name_by_offset(btf_, off); }
  // Every member name of composite `id`, anonymous members' members included.
  void MemberNames(uint32_t id, std::vector<std::string>* out, int depth = 0) const;

  std::string dir_;
  std::unique_ptr<testing::RealKernel> kernel_;
  std::vector<std::byte> btf_bytes_;
  std::unique_ptr<KernelTypes> types_;
  btf* btf_ = nullptr;
  std::string text_;
  Json json_;
  Isf isf_;
};

void IsfWriterRealGuestTest::MemberNames(uint32_t id, std::vector<std::string>* out,
                                          int depth) const {
  const btf_type* t = btf__type_by_id(btf_, id);
  while (t && (btf_is_typedef(t) || btf_is_mod(t))) t = btf__type_by_id(btf_, id = t->type);
  if (!t || !btf_is_composite(t) || depth > 8) return;
  for (uint16_t i = 0; i < btf_vlen(t); ++i) {
    const btf_member& m = btf_members(t)[i];
    if (Name(m.name_off).empty()) {
      MemberNames(m.type, out, depth + 1);
    } else {
      out->emplace_back(Name(m.name_off));
    }
  }
}

TEST_P(IsfWriterRealGuestTest, HasTheLayoutVolatilitysSchemaRequires) {
  EXPECT_EQ(Errors(json_), "");
  EXPECT_GT(json_["user_types"].size(), 5000u);
  // The types Volatility's Linux symbol table sets classes on must all be there.
  for (const char* type : {"file", "list_head", "hlist_head", "mm_struct", "super_block",
                           "task_struct", "vm_area_struct", "qstr", "dentry", "fs_struct",
                           "files_struct", "kobject", "cred", "inode", "idr", "address_space",
                           "page", "vfsmount", "net", "socket", "sock", "inet_sock",
                           "unix_sock", "maple_tree"}) {
    EXPECT_TRUE(json_["user_types"].contains(type)) << type;
  }
}

TEST_P(IsfWriterRealGuestTest, BannerIsTheKernelsOwn) {
  const Json& banner = json_["symbols"]["linux_banner"];
  ASSERT_TRUE(banner.contains("constant_data"));
  EXPECT_EQ(Base64Decode(banner["constant_data"]), ReadText(dir_ + "/truth/banner.txt") + '\0');
}

TEST_P(IsfWriterRealGuestTest, SymbolsAreTheGuestsKallsymsUnslid) {
  auto truth = TruthKernelSymbols(dir_);
  ASSERT_GT(truth.size(), 50'000u);
  uint64_t offset = testing::ReadTruthSymbol(dir_, "_stext") - 0xffffffff81000000ull;
  ASSERT_NE(offset, 0u) << "KASLR is on in the test guests";
  EXPECT_EQ(json_["symbols"].size(), truth.size());
  size_t wrong = 0;
  for (const auto& [name, address] : truth) {
    uint64_t want = address >> 63 ? address - offset : address;
    const Json* s = json_["symbols"].contains(name) ? &json_["symbols"][name] : nullptr;
    if (s == nullptr || (*s)["address"].get<uint64_t>() != want) {
      if (++wrong <= 5) ADD_FAILURE() << name << " want " << want;
    }
  }
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(json_["symbols"]["init_task"]["type"]["name"], "task_struct");
  EXPECT_EQ(json_["symbols"]["_stext"]["address"], 0xffffffff81000000ull);
}

// Every named struct's and union's size and every member's place as the library reads the
// guest's BTF, read back through isf.h.
TEST_P(IsfWriterRealGuestTest, TypesAndMembersEqualTheBtf) {
  std::set<std::string> done;
  size_t members = 0, wrong = 0;
  // Structs first: for a name both have, the library's lookups (and the ISF) mean the struct.
  for (uint32_t n = 1; n < 2 * btf__type_cnt(btf_); ++n) {
    uint32_t id = n % btf__type_cnt(btf_);
    const btf_type* t = btf__type_by_id(btf_, id);
    if (id == 0 || (n < btf__type_cnt(btf_)) != btf_is_struct(t)) continue;
    std::string name(Name(t->name_off));
    if (!btf_is_composite(t) || name.empty() || !done.insert(name).second) continue;
    auto size = types_->Size(name);
    ASSERT_TRUE(size) << name;
    ASSERT_TRUE(json_["user_types"].contains(name)) << name;
    EXPECT_EQ(json_["user_types"][name]["size"].get<uint64_t>(), *size) << name;
    std::vector<std::string> names;
    MemberNames(id, &names);
    for (const std::string& m : names) {
      auto want = types_->Member(name, m);
      if (!want) continue;  // the library refuses it (e.g. unaligned): nothing to compare
      auto got = isf_.types->Member(name, m);
      ++members;
      bool same = got && got->offset == want->offset && got->size == want->size &&
                  got->bit_offset == want->bit_offset && got->bit_size == want->bit_size;
      if (!same && ++wrong <= 10) {
        ADD_FAILURE() << name << "." << m << ": want " << want->offset << "/" << want->size
                      << " got " << (got ? std::to_string(got->offset) + "/" +
                                               std::to_string(got->size)
                                         : got.error().ToString());
      }
    }
  }
  EXPECT_GT(members, 40'000u);  // 47,677 in the 6.1 test kernel
  EXPECT_EQ(wrong, 0u);
}

TEST_P(IsfWriterRealGuestTest, EnumsAndBaseTypesEqualTheBtf) {
  std::set<std::string> done;
  size_t constants = 0;
  for (uint32_t id = 1; id < btf__type_cnt(btf_); ++id) {
    const btf_type* t = btf__type_by_id(btf_, id);
    std::string name(Name(t->name_off));
    if (btf_is_int(t)) {
      const Json& base = json_["base_types"][name];
      EXPECT_EQ(base["size"], t->size) << name;
      EXPECT_EQ(base["signed"], (btf_int_encoding(t) & BTF_INT_SIGNED) != 0) << name;
      EXPECT_EQ(base["endian"], "little");
    }
    if (!btf_is_any_enum(t) || name.empty() || !done.insert(name).second) continue;
    EXPECT_EQ(json_["enums"][name]["size"], t->size) << name;
    for (uint16_t i = 0; i < btf_vlen(t); ++i) {
      std::string c(Name(btf_is_enum(t) ? btf_enum(t)[i].name_off : btf_enum64(t)[i].name_off));
      auto want = types_->Enumerator(name, c);
      ASSERT_TRUE(want) << name << "." << c;
      EXPECT_EQ(*isf_.types->Enumerator(name, c), *want) << name << "." << c;
      ++constants;
    }
  }
  EXPECT_GT(constants, 5'000u);
  EXPECT_EQ(*isf_.types->Enumerator("maple_type", "maple_leaf_64"),
            *types_->Enumerator("maple_type", "maple_leaf_64"));
}

INSTANTIATE_TEST_SUITE_P(Guests, IsfWriterRealGuestTest, ::testing::Values("l4", "l5"));

}  // namespace
}  // namespace vmemfs::vmi::linux_os
