#include "vmi/linux/isf.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "vmi/linux/kallsyms.h"
#include "vmi/linux/system_map.h"

namespace vmemfs::vmi::linux_os {
namespace {

using Json = nlohmann::json;

// Type descriptor chains (array of array of typedef'd struct) are shallow; hostile files can
// nest deeper than the parser's recursion should go, so everything stops here.
constexpr int kMaxTypeDepth = 16;
constexpr size_t kMaxPathElements = 16;
constexpr uint32_t kMaxFieldVisits = 100'000;  // per path element, across anonymous members
constexpr uint64_t kMaxTypeSize = 1ull << 40;

// Deepest bracket nesting outside strings; nlohmann's parser recurses once per level.
int NestingDepth(std::string_view text) {
  int depth = 0, max_depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      max_depth = std::max(max_depth, ++depth);
      if (max_depth > kMaxIsfNesting) return max_depth;
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
  return max_depth;
}

size_t LineOf(std::string_view text, size_t byte) {
  byte = std::min(byte, text.size());
  return 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + byte, '\n'));
}

const Json* Child(const Json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

bool Unsigned(const Json* j, uint64_t* out) {
  if (j == nullptr || !j->is_number_unsigned()) return false;
  *out = j->get<uint64_t>();
  return true;
}

uint64_t StorageBytes(uint64_t bits) {
  for (uint64_t bytes : {1, 2, 4, 8}) {
    if (bits <= bytes * 8) return bytes;
  }
  return 0;
}

bool Anonymous(std::string_view field_name) { return field_name.rfind("unnamed_", 0) == 0; }

class IsfKernelTypes final : public KernelTypes {
 public:
  IsfKernelTypes(Json root, std::string name) : root_(std::move(root)), name_(std::move(name)) {}

  Result<uint64_t> Size(std::string_view type) const override;
  Result<MemberInfo> Member(std::string_view type, std::string_view path) const override;
  Result<int64_t> Enumerator(std::string_view enum_type, std::string_view name) const override;

 private:
  Status Bad(std::string why) const { return BadDataError(name_ + ": " + why); }
  Status Missing(std::string why) const { return NotFoundError(name_ + ": " + why); }
  const Json* Table(std::string_view table, std::string_view name) const {
    const Json* t = Child(root_, table);
    return t ? Child(*t, name) : nullptr;
  }
  Result<uint64_t> SizeOfDescriptor(const Json& type, int depth) const;
  Result<uint64_t> NamedSize(std::string_view table, const Json& type) const;
  // The user type a descriptor names (struct/union/class), or nullptr.
  const Json* Composite(const Json& type) const;
  // Finds `name` in composite `type`, descending into anonymous members; adds offsets to *at.
  const Json* FindField(const Json& type, std::string_view name, int depth, uint32_t* budget,
                        uint64_t* at) const;

  Json root_;
  std::string name_;
};

Result<uint64_t> IsfKernelTypes::NamedSize(std::string_view table, const Json& type) const {
  const Json* n = Child(type, "name");
  if (n == nullptr || !n->is_string()) return Bad("type descriptor without a name");
  const Json* entry = Table(table, n->get_ref<const std::string&>());
  uint64_t size;
  if (entry == nullptr) return Missing("no " + std::string(table) + " entry " + n->dump());
  if (!Unsigned(Child(*entry, "size"), &size) || size > kMaxTypeSize) {
    return Bad(std::string(table) + " " + n->dump() + " has no valid size");
  }
  return size;
}

Result<uint64_t> IsfKernelTypes::SizeOfDescriptor(const Json& type, int depth) const {
  if (depth > kMaxTypeDepth) return Bad("type descriptors nest too deep");
  const Json* kind = Child(type, "kind");
  if (kind == nullptr || !kind->is_string()) return Bad("type descriptor without a kind");
  const std::string& k = kind->get_ref<const std::string&>();
  if (k == "base") return NamedSize("base_types", type);
  if (k == "struct" || k == "union" || k == "class") return NamedSize("user_types", type);
  if (k == "enum") return NamedSize("enums", type);
  if (k == "pointer") {
    uint64_t size = 8;  // ISF files describe the pointer width as base type "pointer"
    if (const Json* p = Table("base_types", "pointer")) Unsigned(Child(*p, "size"), &size);
    return size;
  }
  const Json* sub = Child(type, k == "array" ? "subtype" : "type");
  if ((k != "array" && k != "bitfield") || sub == nullptr) {
    return Bad("cannot size a type of kind '" + k.substr(0, 32) + "'");
  }
  VMEMFS_ASSIGN_OR_RETURN(uint64_t element, SizeOfDescriptor(*sub, depth + 1));
  if (k == "bitfield") return element;
  uint64_t count;
  if (!Unsigned(Child(type, "count"), &count)) return Bad("array without a count");
  if (element != 0 && count > kMaxTypeSize / element) return Bad("array too large");
  return count * element;
}

const Json* IsfKernelTypes::Composite(const Json& type) const {
  const Json* kind = Child(type, "kind");
  const Json* n = Child(type, "name");
  if (!kind || !n || !n->is_string() || !kind->is_string()) return nullptr;
  const std::string& k = kind->get_ref<const std::string&>();
  if (k != "struct" && k != "union" && k != "class") return nullptr;
  return Table("user_types", n->get_ref<const std::string&>());
}

const Json* IsfKernelTypes::FindField(const Json& type, std::string_view name, int depth,
                                      uint32_t* budget, uint64_t* at) const {
  const Json* fields = Child(type, "fields");
  if (depth > kMaxTypeDepth || fields == nullptr || !fields->is_object()) return nullptr;
  if (const Json* f = Child(*fields, name)) {
    uint64_t offset;
    if (!Unsigned(Child(*f, "offset"), &offset) || offset > kMaxTypeSize) return nullptr;
    *at += offset;
    return f;
  }
  for (const auto& [field_name, f] : fields->items()) {
    if (*budget == 0) return nullptr;
    --*budget;
    if (!Anonymous(field_name)) continue;
    const Json* t = Child(f, "type");
    const Json* inner = t ? Composite(*t) : nullptr;
    uint64_t offset, inner_at = 0;
    if (!inner || !Unsigned(Child(f, "offset"), &offset) || offset > kMaxTypeSize) continue;
    if (const Json* found = FindField(*inner, name, depth + 1, budget, &inner_at)) {
      *at += offset + inner_at;
      return found;
    }
  }
  return nullptr;
}

Result<uint64_t> IsfKernelTypes::Size(std::string_view type) const {
  for (std::string_view table : {"user_types", "base_types", "enums"}) {
    if (Table(table, type) == nullptr) continue;
    return NamedSize(table, Json{{"name", std::string(type)}});
  }
  return Missing("no type named " + std::string(type));
}

Result<MemberInfo> IsfKernelTypes::Member(std::string_view type, std::string_view path) const {
  auto missing = [&](std::string_view why) {
    return Missing(std::string(type) + "." + std::string(path) + ": " + std::string(why));
  };
  const Json* current = Table("user_types", type);
  if (current == nullptr) return Missing("no struct named " + std::string(type));
  const Json* field = nullptr;
  uint64_t offset = 0;
  size_t start = 0;
  for (size_t n = 0;; ++n) {
    if (n >= kMaxPathElements) return InvalidArgumentError("ISF: member path too long");
    size_t dot = path.find('.', start);
    std::string_view element = path.substr(start, dot == path.npos ? dot : dot - start);
    if (element.empty()) return missing("empty path element");
    uint32_t budget = kMaxFieldVisits;
    field = FindField(*current, element, 0, &budget, &offset);
    if (field == nullptr) return missing("no member " + std::string(element));
    if (dot == path.npos) break;
    const Json* t = Child(*field, "type");
    current = t ? Composite(*t) : nullptr;
    if (current == nullptr) return missing(std::string(element) + " is not a struct or union");
    start = dot + 1;
  }
  const Json* t = Child(*field, "type");
  if (t == nullptr) return Bad(std::string(type) + "." + std::string(path) + " has no type");
  VMEMFS_ASSIGN_OR_RETURN(uint64_t size, SizeOfDescriptor(*t, 0));
  MemberInfo info{.offset = offset, .size = size};
  const Json* kind = Child(*t, "kind");
  if (kind && *kind == "bitfield") {
    uint64_t position, length;
    if (!Unsigned(Child(*t, "bit_position"), &position) ||
        !Unsigned(Child(*t, "bit_length"), &length) || length == 0 || length > 64 ||
        position > 8 * kMaxTypeSize) {
      return Bad(std::string(type) + "." + std::string(path) + ": bad bit field");
    }
    info.offset += position / 8;
    info.bit_offset = static_cast<uint32_t>(position % 8);
    info.bit_size = static_cast<uint32_t>(length);
    info.size = StorageBytes(info.bit_offset + length);
    if (info.size == 0) return Bad(std::string(path) + ": bit field too wide");
  }
  return info;
}

Result<int64_t> IsfKernelTypes::Enumerator(std::string_view enum_type,
                                           std::string_view name) const {
  const Json* e = Table("enums", enum_type);
  if (e == nullptr) return Missing("no enum named " + std::string(enum_type));
  const Json* constants = Child(*e, "constants");
  const Json* v = constants ? Child(*constants, name) : nullptr;
  if (v == nullptr)
    return Missing("enum " + std::string(enum_type) + " has no " + std::string(name));
  if (v->is_number_unsigned()) return static_cast<int64_t>(v->get<uint64_t>());
  if (v->is_number_integer()) return v->get<int64_t>();
  return Bad("enum " + std::string(enum_type) + "." + std::string(name) + " is not an integer");
}

// Every user type must be {size, fields: {name: {offset, type}}}, so lookups later only meet
// well-formed entries (type descriptors are checked when followed).
Status CheckUserTypes(const Json& root, const std::string& name) {
  const Json* types = Child(root, "user_types");
  if (types == nullptr || !types->is_object()) return BadDataError(name + ": no user_types object");
  for (const auto& [type_name, t] : types->items()) {
    uint64_t size;
    const Json* fields = Child(t, "fields");
    if (!Unsigned(Child(t, "size"), &size) || fields == nullptr || !fields->is_object()) {
      return BadDataError(name + ": user type '" + type_name.substr(0, 64) +
                          "' needs a size and a fields object");
    }
    for (const auto& [field_name, f] : fields->items()) {
      uint64_t offset;
      const Json* ft = Child(f, "type");
      if (!Unsigned(Child(f, "offset"), &offset) || ft == nullptr || !ft->is_object()) {
        return BadDataError(name + ": field '" + type_name.substr(0, 64) + "." +
                            field_name.substr(0, 64) + "' needs an offset and a type");
      }
    }
  }
  for (std::string_view table : {"base_types", "enums", "symbols"}) {
    const Json* t = Child(root, table);
    if (t != nullptr && !t->is_object()) {
      return BadDataError(name + ": " + std::string(table) + " is not an object");
    }
  }
  return Status();
}

char TypeLetter(const Json& sym) {
  const Json* type = Child(sym, "type");
  if (type == nullptr) return '?';
  const Json* kind = Child(*type, "kind");
  return kind && *kind == "function" ? 'T' : 'D';
}

Result<std::vector<Symbol>> IsfSymbols(const Json& root, const std::string& name) {
  std::vector<Symbol> out;
  const Json* symbols = Child(root, "symbols");
  if (symbols == nullptr) return out;
  if (symbols->size() > kMaxKallsyms) return BadDataError(name + ": too many symbols");
  for (const auto& [sym_name, sym] : symbols->items()) {
    uint64_t address;
    if (!Unsigned(Child(sym, "address"), &address)) {
      return BadDataError(name + ": symbol '" + sym_name.substr(0, 64) + "' has no address");
    }
    if (sym_name.empty() || sym_name.size() > kMaxNameLength) {
      return BadDataError(name + ": a symbol name is empty or too long");
    }
    out.push_back({address, TypeLetter(sym), sym_name, ""});
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const Symbol& a, const Symbol& b) { return a.address < b.address; });
  return out;
}

}  // namespace

Result<Isf> ParseIsf(std::string_view json, std::string_view name_view) {
  std::string name(name_view);
  if (NestingDepth(json) > kMaxIsfNesting) return BadDataError(name + ": JSON nests too deep");
  Json root;
  try {
    root = Json::parse(json.begin(), json.end());
  } catch (const Json::parse_error& e) {
    return BadDataError(name + ":" + std::to_string(LineOf(json, e.byte)) +
                        ": not JSON (ISF files are JSON; decompress .json.xz first)");
  } catch (const Json::exception& e) {
    return BadDataError(name + ": not JSON");
  }
  if (!root.is_object()) return BadDataError(name + ": not an ISF object");
  const Json* metadata = Child(root, "metadata");
  const Json* format = metadata ? Child(*metadata, "format") : nullptr;
  if (format == nullptr || !format->is_string()) {
    return BadDataError(name + ": no metadata.format (not an ISF file)");
  }
  VMEMFS_TRY(CheckUserTypes(root, name));
  Isf isf;
  VMEMFS_ASSIGN_OR_RETURN(isf.symbols, IsfSymbols(root, name));
  isf.types = std::make_unique<IsfKernelTypes>(std::move(root), name);
  return isf;
}

Result<Isf> ReadIsf(const std::string& path) {
  VMEMFS_ASSIGN_OR_RETURN(std::string text, ReadOverrideFile(path, kMaxIsfBytes));
  return ParseIsf(text, path);
}

}  // namespace vmemfs::vmi::linux_os
