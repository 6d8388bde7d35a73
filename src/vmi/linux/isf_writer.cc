#include "vmi/linux/isf_writer.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "base/base64.h"
#include "base/json_writer.h"

namespace vmemfs::vmi::linux_os {
namespace {

// Typedef/modifier/pointer/array chains of real kernels are a few links long; hostile BTF can
// make them cycle, so a descriptor stops here and says void.
constexpr int kMaxChain = 32;

struct BtfDeleter {
  void operator()(btf* b) const { btf__free(b); }
};

struct BaseType {
  uint64_t size;
  bool is_signed;
  std::string_view kind;  // void, int, float, char, bool
  bool operator==(const BaseType&) const = default;
};

// Global variables Volatility's Linux plugins dereference by symbol. BTF describes only
// per-cpu variables, so their C declarations are given here (looked up in the BTF by name;
// left without a type when the kernel has no such type).
struct KnownVariable {
  std::string_view symbol;
  std::string_view type;  // a struct/union/base type name
  int pointers = 0;       // `type *` levels
  uint32_t count = 0;     // array length; 0: not an array
};
constexpr KnownVariable kKnownVariables[] = {
    {"init_task", "task_struct"},
    {"init_files", "files_struct"},
    {"init_fs", "fs_struct"},
    {"init_mm", "mm_struct"},
    {"modules", "list_head"},
    {"module_kset", "kset", 1},
    {"net_namespace_list", "list_head"},
    {"init_net", "net"},
    {"tty_drivers", "list_head"},
    {"prog_idr", "idr"},
    {"keyboard_notifier_list", "atomic_notifier_head"},
    {"socket_file_ops", "file_operations"},
    {"sockfs_dentry_operations", "dentry_operations"},
    {"idt_table", "gate_struct", 0, 256},
    {"prb", "printk_ringbuffer", 1},
    {"log_buf", "char", 1},
    {"log_buf_len", "unsigned int"},
    {"log_first_idx", "unsigned int"},
    {"log_next_idx", "unsigned int"},
    {"vmemmap_base", "long unsigned int"},
    {"page_offset_base", "long unsigned int"},
    {"mem_map", "page", 1},
    {"cap_last_cap", "int"},
    {"jiffies", "long unsigned int"},
    {"init_uts_ns", "uts_namespace"},
    {"mount_hashtable", "hlist_head", 1},
    {"init_pid_ns", "pid_namespace"},
};

class IsfBuilder {
 public:
  IsfBuilder(const btf* b, const IsfSource& source, const IsfLimits& limits, IsfOutput* out)
      : btf_(b), source_(source), limits_(limits), out_(*out), w_(&out->json) {
    uint32_t all = btf__type_cnt(b);
    count_ = std::min<uint64_t>(all, uint64_t{limits.max_types} + 1);
    if (count_ < all) {
      out_.notes.push_back(fmt::format(
          "the BTF has {} types; only the first {} were written, references to the rest are void",
          all - 1, count_ - 1));
    }
  }

  void Build();

 private:
  // --- Names ---
  std::string_view Name(uint32_t name_off) const {
    const char* s = btf__name_by_offset(btf_, name_off);
    return s ? std::string_view(s) : std::string_view();
  }
  const btf_type* Type(uint32_t id) const {
    return id == 0 || id >= count_ ? nullptr : btf__type_by_id(btf_, id);
  }
  void NameTypes();
  void NameComposites();
  void NameEnums();
  void NameBaseTypes();
  std::unordered_map<uint32_t, std::string_view> TypedefNames() const;
  std::string ClaimUser(std::string_view name, uint32_t id);
  std::string ClaimEnum(std::string_view name, uint32_t id);
  std::string ClaimBase(std::string_view name, uint32_t id, BaseType type);
  std::string EnumBase(uint64_t size, bool is_signed);

  // --- Descriptors ---
  // Strips typedefs and modifiers; 0 (void) past kMaxChain links.
  uint32_t Strip(uint32_t id, int* depth);
  void Descriptor(uint32_t id, int depth = 0);
  void Void() { Named("base", "void"); }
  void Named(std::string_view kind, std::string_view name);
  // The kind of a known variable's type name ("struct", "union", "base"); empty: not in BTF.
  std::string_view KnownKind(const KnownVariable& v) const;
  void KnownDescriptor(const KnownVariable& v, std::string_view kind);

  // --- Sections ---
  bool Full();  // past the byte cap (notes it once)
  void Metadata();
  void BaseTypes();
  void Enums();
  void Enum(uint32_t id, const btf_type* t);
  void UserTypes();
  void UserType(uint32_t id, const btf_type* t);
  void Field(const btf_type* t, uint16_t i, std::unordered_set<std::string>* seen);
  void Symbols();
  void Symbol(const vmi::Symbol& s);

  const btf* btf_;
  const IsfSource& source_;
  const IsfLimits& limits_;
  IsfOutput& out_;
  JsonWriter w_;
  uint32_t count_;
  bool full_ = false;
  size_t chains_cut_ = 0;

  std::vector<std::string> names_;        // by id: the ISF name of a struct/union/enum/base
  std::vector<uint32_t> definition_;      // by id: a FWD's definition (same name), else 0
  std::unordered_map<std::string, uint32_t> user_names_, enum_names_;
  std::map<std::string, BaseType> base_types_;
  std::unordered_map<std::string_view, uint32_t> variables_;  // BTF VAR name -> type id
  std::unordered_map<std::string_view, const KnownVariable*> known_;
};

// --- Names ---

// `name`, or when it is taken `<name>_btf<id>` (then `_2`, `_3`, ...: a hostile BTF may use
// those names too), so JSON keys never repeat.
std::string Claim(std::unordered_map<std::string, uint32_t>& taken, std::string_view name,
                  uint32_t id) {
  std::string n(name);
  for (int i = 1; !taken.emplace(n, id).second; ++i) {
    n = i == 1 ? fmt::format("{}_btf{}", name, id) : fmt::format("{}_btf{}_{}", name, id, i);
  }
  return n;
}

std::string IsfBuilder::ClaimUser(std::string_view name, uint32_t id) {
  return Claim(user_names_, name, id);
}

std::string IsfBuilder::ClaimEnum(std::string_view name, uint32_t id) {
  return Claim(enum_names_, name, id);
}

// Same name and same layout: one entry. A name with another layout gets a new name.
std::string IsfBuilder::ClaimBase(std::string_view name, uint32_t id, BaseType type) {
  std::string base = name.empty() ? fmt::format("base{}", id) : std::string(name);
  std::string n = base;
  for (int i = 1;; ++i) {
    auto [it, inserted] = base_types_.emplace(n, type);
    if (inserted || it->second == type) return n;
    n = i == 1 ? fmt::format("{}_btf{}", base, id) : fmt::format("{}_btf{}_{}", base, id, i);
  }
}

// The integer type an enum is stored in, by the names DWARF (and so BTF) gives C's integers.
std::string IsfBuilder::EnumBase(uint64_t size, bool is_signed) {
  std::string_view name;
  switch (size) {
    case 1: name = is_signed ? "signed char" : "unsigned char"; break;
    case 2: name = is_signed ? "short int" : "short unsigned int"; break;
    case 4: name = is_signed ? "int" : "unsigned int"; break;
    case 8: name = is_signed ? "long int" : "long unsigned int"; break;
    default: break;
  }
  std::string odd = fmt::format("enum_base_{}{}", is_signed ? "s" : "u", size);
  return ClaimBase(name.empty() ? odd : name, 0, {size, is_signed, "int"});
}

// First typedef naming each anonymous struct, union or enum directly.
std::unordered_map<uint32_t, std::string_view> IsfBuilder::TypedefNames() const {
  std::unordered_map<uint32_t, std::string_view> names;
  for (uint32_t id = 1; id < count_; ++id) {
    const btf_type* t = Type(id);
    if (t == nullptr || !btf_is_typedef(t) || Name(t->name_off).empty()) continue;
    const btf_type* target = Type(t->type);
    if (target == nullptr || !Name(target->name_off).empty()) continue;
    if (btf_is_composite(target) || btf_is_any_enum(target)) {
      names.emplace(t->type, Name(t->name_off));
    }
  }
  return names;
}

void IsfBuilder::NameTypes() {
  names_.assign(count_, "");
  definition_.assign(count_, 0);
  base_types_["void"] = {0, false, "void"};
  base_types_["pointer"] = {8, false, "int"};
  NameComposites();
  NameEnums();
  NameBaseTypes();
  for (uint32_t id = 1; id < count_; ++id) {
    const btf_type* t = Type(id);
    if (t != nullptr && btf_is_var(t)) variables_.emplace(Name(t->name_off), t->type);
  }
  for (const KnownVariable& v : kKnownVariables) known_.emplace(v.symbol, &v);
}

// Named structs first (as KernelTypes looks names up: a struct wins over a union), then named
// unions, then the rest; forward declarations stand for the definition of their name.
void IsfBuilder::NameComposites() {
  auto typedefs = TypedefNames();
  for (int pass = 0; pass < 3; ++pass) {
    for (uint32_t id = 1; id < count_; ++id) {
      const btf_type* t = Type(id);
      if (t == nullptr || !btf_is_composite(t) || !names_[id].empty()) continue;
      std::string_view name = Name(t->name_off);
      bool take = pass == 0 ? btf_is_struct(t) && !name.empty() : pass == 1 ? !name.empty() : true;
      if (pass < 2 && (!take || user_names_.contains(std::string(name)))) continue;
      if (name.empty()) {
        auto it = typedefs.find(id);
        name = it != typedefs.end() ? it->second : std::string_view();
      }
      names_[id] = name.empty() ? ClaimUser(fmt::format("unnamed_{}", id), id)
                                : ClaimUser(name, id);
    }
  }
  for (uint32_t id = 1; id < count_; ++id) {
    const btf_type* t = Type(id);
    if (t == nullptr || !btf_is_fwd(t)) continue;
    std::string name(Name(t->name_off));
    // A definition, or the first forward declaration, of that name stands for this one.
    if (auto it = user_names_.find(name); it != user_names_.end() && !name.empty()) {
      definition_[id] = it->second;
      names_[id] = name;
    } else {
      names_[id] = ClaimUser(name.empty() ? fmt::format("unnamed_{}", id) : name, id);
    }
  }
}

void IsfBuilder::NameEnums() {
  auto typedefs = TypedefNames();
  for (uint32_t id = 1; id < count_; ++id) {
    const btf_type* t = Type(id);
    if (t == nullptr || !btf_is_any_enum(t)) continue;
    std::string_view name = Name(t->name_off);
    if (name.empty()) {
      auto it = typedefs.find(id);
      if (it != typedefs.end()) name = it->second;
    }
    names_[id] = name.empty() ? ClaimEnum(fmt::format("unnamed_enum_{}", id), id)
                              : ClaimEnum(name, id);
  }
}

void IsfBuilder::NameBaseTypes() {
  for (uint32_t id = 1; id < count_; ++id) {
    const btf_type* t = Type(id);
    if (t == nullptr) continue;
    std::string_view name = Name(t->name_off);
    if (btf_is_int(t)) {
      uint8_t encoding = btf_int_encoding(t);
      std::string_view kind = (encoding & BTF_INT_BOOL) ? "bool"
                              : ((encoding & BTF_INT_CHAR) || name.find("char") != name.npos)
                                  ? "char"
                                  : "int";
      names_[id] = ClaimBase(name, id, {t->size, (encoding & BTF_INT_SIGNED) != 0, kind});
    } else if (btf_is_float(t)) {
      names_[id] = ClaimBase(name, id, {t->size, true, "float"});
    }
  }
}

// --- Descriptors ---

uint32_t IsfBuilder::Strip(uint32_t id, int* depth) {
  for (; *depth < kMaxChain; ++*depth) {
    const btf_type* t = Type(id);
    if (t == nullptr || !(btf_is_typedef(t) || btf_is_mod(t))) return id;
    id = t->type;
  }
  ++chains_cut_;
  return 0;
}

void IsfBuilder::Named(std::string_view kind, std::string_view name) {
  w_.BeginObject();
  w_.Key("kind");
  w_.String(kind);
  w_.Key("name");
  w_.String(name);
  w_.EndObject();
}

void IsfBuilder::Descriptor(uint32_t id, int depth) {
  id = Strip(id, &depth);
  const btf_type* t = Type(id);
  if (t == nullptr) return Void();
  if (btf_is_fwd(t) && definition_[id] != 0) t = Type(id = definition_[id]);
  if (btf_is_int(t) || btf_is_float(t)) return Named("base", names_[id]);
  if (btf_is_struct(t) || (btf_is_fwd(t) && !btf_kflag(t))) return Named("struct", names_[id]);
  if (btf_is_union(t) || btf_is_fwd(t)) return Named("union", names_[id]);
  if (btf_is_any_enum(t)) return Named("enum", names_[id]);
  if (btf_is_func_proto(t) || btf_is_func(t)) {
    w_.BeginObject();
    w_.Key("kind");
    w_.String("function");
    return w_.EndObject();
  }
  if (depth + 1 >= kMaxChain) {
    ++chains_cut_;
    return Void();
  }
  w_.BeginObject();
  w_.Key("kind");
  if (btf_is_ptr(t)) {
    w_.String("pointer");
    w_.Key("subtype");
    Descriptor(t->type, depth + 1);
  } else if (btf_is_array(t)) {
    w_.String("array");
    w_.Key("count");
    w_.Uint(btf_array(t)->nelems);
    w_.Key("subtype");
    Descriptor(btf_array(t)->type, depth + 1);
  } else {  // VAR, DATASEC, tags: not types of a value
    w_.String("base");
    w_.Key("name");
    w_.String("void");
  }
  w_.EndObject();
}

std::string_view IsfBuilder::KnownKind(const KnownVariable& v) const {
  std::string type(v.type);
  if (auto it = user_names_.find(type); it != user_names_.end()) {
    const btf_type* t = Type(it->second);
    return t != nullptr && btf_is_union(t) ? "union" : "struct";
  }
  return base_types_.contains(type) ? "base" : "";
}

void IsfBuilder::KnownDescriptor(const KnownVariable& v, std::string_view kind) {
  auto wrap = [&](std::string_view k) {
    w_.BeginObject();
    w_.Key("kind");
    w_.String(k);
  };
  if (v.count != 0) {
    wrap("array");
    w_.Key("count");
    w_.Uint(v.count);
    w_.Key("subtype");
  }
  for (int i = 0; i < v.pointers; ++i) {
    wrap("pointer");
    w_.Key("subtype");
  }
  Named(kind, v.type);
  for (int i = 0; i < v.pointers + (v.count != 0); ++i) w_.EndObject();
}

// --- Sections ---

bool IsfBuilder::Full() {
  if (!full_ && w_.size() >= limits_.max_bytes) {
    full_ = true;
    out_.notes.push_back(fmt::format(
        "the ISF reached {} bytes: the entries after that point were left out", w_.size()));
  }
  return full_;
}

void IsfBuilder::Metadata() {
  w_.Key("metadata");
  w_.BeginObject();
  w_.Key("format");
  w_.String("6.2.0");
  w_.Key("producer");
  w_.BeginObject();
  w_.Key("name");
  w_.String("vmemfs");
  w_.Key("version");
  w_.String(source_.producer_version);
  if (!out_.notes.empty()) {  // the schema leaves the producer open for such extras
    w_.Key("notes");
    w_.BeginArray();
    for (const std::string& note : out_.notes) w_.String(note);
    w_.EndArray();
  }
  w_.EndObject();
  w_.Key("linux");
  w_.BeginObject();
  w_.Key("symbols");
  w_.BeginArray();
  w_.BeginObject();
  w_.Key("kind");
  w_.String("symtab");
  w_.Key("name");
  w_.String("kallsyms");
  w_.EndObject();
  w_.EndArray();
  w_.Key("types");
  w_.BeginArray();
  w_.BeginObject();
  w_.Key("name");
  w_.String("btf");
  w_.EndObject();
  w_.EndArray();
  w_.EndObject();
  w_.EndObject();
}

void IsfBuilder::BaseTypes() {
  w_.Key("base_types");
  w_.BeginObject();
  for (const auto& [name, t] : base_types_) {
    w_.Key(name);
    w_.BeginObject();
    w_.Key("size");
    w_.Uint(t.size);
    w_.Key("signed");
    w_.Bool(t.is_signed);
    w_.Key("kind");
    w_.String(t.kind);
    w_.Key("endian");
    w_.String("little");
    w_.EndObject();
    ++out_.base_types;
  }
  w_.EndObject();
}

void IsfBuilder::Enum(uint32_t id, const btf_type* t) {
  const bool is_signed = btf_kflag(t);
  w_.Key(names_[id]);
  w_.BeginObject();
  w_.Key("size");
  w_.Uint(t->size);
  w_.Key("base");
  w_.String(EnumBase(t->size, is_signed));
  w_.Key("constants");
  w_.BeginObject();
  std::unordered_set<std::string_view> seen;
  for (uint16_t i = 0; i < btf_vlen(t); ++i) {
    std::string_view name;
    uint64_t value;
    if (btf_is_enum(t)) {
      name = Name(btf_enum(t)[i].name_off);
      value = is_signed ? static_cast<uint64_t>(int64_t{btf_enum(t)[i].val})
                        : static_cast<uint32_t>(btf_enum(t)[i].val);
    } else {
      name = Name(btf_enum64(t)[i].name_off);
      value = btf_enum64_value(&btf_enum64(t)[i]);
    }
    if (name.empty() || !seen.insert(name).second) continue;
    w_.Key(name);
    if (is_signed) {
      w_.Int(static_cast<int64_t>(value));
    } else {
      w_.Uint(value);
    }
  }
  w_.EndObject();
  w_.EndObject();
  ++out_.enums;
}

// Enum bases are named while enums are written, so base_types come after enums in the file.
void IsfBuilder::Enums() {
  w_.Key("enums");
  w_.BeginObject();
  for (uint32_t id = 1; id < count_ && !Full(); ++id) {
    const btf_type* t = Type(id);
    if (t != nullptr && btf_is_any_enum(t)) Enum(id, t);
  }
  w_.EndObject();
}

void IsfBuilder::Field(const btf_type* t, uint16_t i, std::unordered_set<std::string>* seen) {
  const btf_member& m = btf_members(t)[i];
  uint64_t bits = btf_member_bit_offset(t, i);
  uint32_t length = btf_member_bitfield_size(t, i);
  std::string_view name = Name(m.name_off);
  int depth = 0;
  uint32_t stripped = Strip(m.type, &depth);
  const btf_type* type = Type(stripped);
  if (name.empty()) {  // an anonymous struct or union: its members belong to the outer type
    if (type == nullptr || !btf_is_composite(type) || bits % 8 != 0) return;
    std::string key = fmt::format("unnamed_field_{}", i);
    while (!seen->insert(key).second) key += '_';  // a hostile member may have that name
    w_.Key(key);
    w_.BeginObject();
    w_.Key("offset");
    w_.Uint(bits / 8);
    w_.Key("anonymous");
    w_.Bool(true);
    w_.Key("type");
    Descriptor(stripped, depth);
    return w_.EndObject();
  }
  if (!seen->insert(std::string(name)).second) return;
  if (length == 0) {
    if (bits % 8 != 0) return;
    w_.Key(name);
    w_.BeginObject();
    w_.Key("offset");
    w_.Uint(bits / 8);
    w_.Key("type");
    Descriptor(m.type);
    return w_.EndObject();
  }
  // A bit field: Volatility reads the storage unit (the base type) at `offset` and takes bits
  // bit_position.. of it. The unit is the naturally aligned one holding the field, when the
  // field fits in it (it does in C), else the byte holding its first bit.
  if (type == nullptr || !(btf_is_int(type) || btf_is_any_enum(type))) return;
  uint64_t unit = type->size;
  if (unit != 1 && unit != 2 && unit != 4 && unit != 8) return;
  uint64_t offset = bits / (8 * unit) * unit;
  if (bits - 8 * offset + length > 8 * unit) offset = bits / 8;
  w_.Key(name);
  w_.BeginObject();
  w_.Key("offset");
  w_.Uint(offset);
  w_.Key("type");
  w_.BeginObject();
  w_.Key("kind");
  w_.String("bitfield");
  w_.Key("bit_position");
  w_.Uint(bits - 8 * offset);
  w_.Key("bit_length");
  w_.Uint(length);
  w_.Key("type");
  Descriptor(stripped, depth);
  w_.EndObject();
  w_.EndObject();
}

void IsfBuilder::UserType(uint32_t id, const btf_type* t) {
  w_.Key(names_[id]);
  w_.BeginObject();
  w_.Key("kind");
  w_.String(btf_is_union(t) || (btf_is_fwd(t) && btf_kflag(t)) ? "union" : "struct");
  w_.Key("size");
  w_.Uint(btf_is_fwd(t) ? 0 : t->size);
  w_.Key("fields");
  w_.BeginObject();
  if (btf_is_composite(t)) {
    std::unordered_set<std::string> seen;
    for (uint16_t i = 0; i < btf_vlen(t) && !Full(); ++i) Field(t, i, &seen);
  }
  w_.EndObject();
  w_.EndObject();
  ++out_.user_types;
}

void IsfBuilder::UserTypes() {
  w_.Key("user_types");
  w_.BeginObject();
  for (uint32_t id = 1; id < count_ && !Full(); ++id) {
    const btf_type* t = Type(id);
    if (t == nullptr) continue;
    if (btf_is_composite(t) || (btf_is_fwd(t) && definition_[id] == 0)) UserType(id, t);
  }
  w_.EndObject();
}

void IsfBuilder::Symbol(const vmi::Symbol& s) {
  // Link-time address: the kernel image's symbols move by the KASLR slide, per-cpu offsets
  // (below the kernel half) do not.
  uint64_t address = s.address >> 63 ? s.address - source_.kaslr_offset : s.address;
  w_.Key(s.name);
  w_.BeginObject();
  w_.Key("address");
  w_.Uint(address);
  if (s.name == "linux_banner" && !source_.banner.empty()) {
    std::string bytes = source_.banner + '\0';  // as the kernel has it, and Volatility scans
    w_.Key("type");
    w_.BeginObject();
    w_.Key("kind");
    w_.String("array");
    w_.Key("count");
    w_.Uint(bytes.size());
    w_.Key("subtype");
    Named("base", base_types_.contains("char") ? "char" : "void");
    w_.EndObject();
    w_.Key("constant_data");
    w_.String(Base64(bytes));
  } else if (auto var = variables_.find(s.name); var != variables_.end()) {
    w_.Key("type");
    Descriptor(var->second);
  } else if (auto known = known_.find(s.name); known != known_.end()) {
    if (std::string_view kind = KnownKind(*known->second); !kind.empty()) {
      w_.Key("type");
      KnownDescriptor(*known->second, kind);
    }
  }
  w_.EndObject();
  ++out_.symbols;
}

void IsfBuilder::Symbols() {
  w_.Key("symbols");
  w_.BeginObject();
  std::unordered_set<std::string_view> seen;
  for (const vmi::Symbol& s : source_.symbols->symbols()) {
    if (Full()) break;
    if (!s.module.empty() || s.name.empty() || !seen.insert(s.name).second) continue;
    Symbol(s);
  }
  w_.EndObject();
}

void IsfBuilder::Build() {
  NameTypes();
  // About what a kernel gives (10 MB from 4 MB of BTF and 90,000 symbols), so the text is
  // rarely copied as it grows; the cap bounds what a hostile size could ask.
  out_.json.reserve(std::min<uint64_t>(
      limits_.max_bytes, 2 * uint64_t{source_.btf.size()} + 64 * source_.symbols->size()));
  w_.BeginObject();
  Symbols();
  Enums();
  UserTypes();
  BaseTypes();
  if (chains_cut_ > 0) {
    out_.notes.push_back(fmt::format(
        "{} type chains longer than {} links were written as void", chains_cut_, kMaxChain));
  }
  Metadata();  // last: it carries the notes
  w_.EndObject();
  out_.json += '\n';
}

// libbpf prints complaints about malformed BTF on stderr; the guest's BTF is not ours to
// complain about: errors come back as Status.
int SilentPrint(enum libbpf_print_level, const char*, va_list) { return 0; }

}  // namespace

Result<IsfOutput> WriteIsf(const IsfSource& source, const IsfLimits& limits) {
  if (source.btf.empty()) return BadDataError("ISF: no BTF");
  if (source.symbols == nullptr) return InvalidArgumentError("ISF: no symbol table");
  static std::once_flag silence;
  std::call_once(silence, [] { libbpf_set_print(SilentPrint); });
  errno = 0;
  std::unique_ptr<btf, BtfDeleter> b(
      btf__new(source.btf.data(), static_cast<uint32_t>(source.btf.size())));
  if (b == nullptr || libbpf_get_error(b.get()) != 0) {
    int err = errno;
    b.release();
    return BadDataError(std::string("ISF: libbpf rejected the BTF: ") +
                        (err != 0 ? std::strerror(err) : "invalid"));
  }
  IsfOutput out;
  IsfBuilder(b.get(), source, limits, &out).Build();
  return out;
}

}  // namespace vmemfs::vmi::linux_os
