#include "vmi/linux/kernel_types.h"

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace vmemfs::vmi::linux_os {
namespace {

constexpr size_t kMaxBtfBytes = 64u << 20;
// Typedef/modifier chains and anonymous-member nesting are shallow in real kernels (< 10);
// hostile BTF can build cycles, so every chase stops here.
constexpr int kMaxDepth = 32;
constexpr size_t kMaxPathElements = 16;
// Members looked at per path element. Anonymous members can nest a type in itself many times
// over, so depth alone would still allow vlen^depth steps; task_struct, the biggest real
// search, needs a few hundred.
constexpr uint32_t kMaxMemberVisits = 100'000;

// libbpf prints every complaint about malformed BTF on stderr. The guest decides what the BTF
// looks like, so its complaints are not ours to print: errors come back as Status instead.
int SilentPrint(enum libbpf_print_level, const char*, va_list) { return 0; }
void SilenceLibbpfOnce() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(SilentPrint); });
}

struct BtfDeleter {
  void operator()(btf* b) const { btf__free(b); }
};

class BtfKernelTypes final : public KernelTypes {
 public:
  explicit BtfKernelTypes(btf* b) : btf_(b) { Index(); }

  Result<uint64_t> Size(std::string_view type) const override {
    VMEMFS_ASSIGN_OR_RETURN(uint32_t id, FindNamed(type));
    int64_t size = btf__resolve_size(btf_.get(), id);
    if (size < 0) return BadDataError("BTF: cannot size type " + std::string(type));
    return static_cast<uint64_t>(size);
  }

  Result<MemberInfo> Member(std::string_view type, std::string_view path) const override;
  Result<int64_t> Enumerator(std::string_view enum_type, std::string_view name) const override;

 private:
  void Index();
  Result<uint32_t> FindNamed(std::string_view type) const;
  // Strips typedefs and const/volatile/restrict/type_tag; nullptr on a bad id or a cycle.
  const btf_type* Resolve(uint32_t id, uint32_t* resolved_id) const;
  // Finds `name` among the members of composite `id`, descending into anonymous members.
  // Adds the member's bit offset to *bits and returns its btf_member, or nullptr.
  // *budget counts down the members looked at; nullptr once it is spent.
  const btf_member* FindMember(uint32_t id, std::string_view name, int depth, uint32_t* budget,
                               uint64_t* bits, uint32_t* bitfield_size) const;
  std::string_view Name(uint32_t name_off) const {
    const char* s = btf__name_by_offset(btf_.get(), name_off);
    return s ? std::string_view(s) : std::string_view();
  }

  std::unique_ptr<btf, BtfDeleter> btf_;
  // Name -> type id, built once: structs and unions (structs win a name clash), then typedefs,
  // and enums separately (they live in a different C namespace).
  std::unordered_map<std::string_view, uint32_t> composites_;
  std::unordered_map<std::string_view, uint32_t> typedefs_;
  std::unordered_map<std::string_view, uint32_t> enums_;
};

void BtfKernelTypes::Index() {
  uint32_t count = btf__type_cnt(btf_.get());
  for (uint32_t id = 1; id < count; ++id) {
    const btf_type* t = btf__type_by_id(btf_.get(), id);
    if (t == nullptr) continue;
    std::string_view name = Name(t->name_off);
    if (name.empty()) continue;
    if (btf_is_struct(t)) {
      // A struct replaces a union of the same name, never another struct (first one wins).
      auto [it, inserted] = composites_.emplace(name, id);
      const btf_type* old = btf__type_by_id(btf_.get(), it->second);
      if (!inserted && old && btf_is_union(old)) it->second = id;
    } else if (btf_is_union(t)) {
      composites_.emplace(name, id);
    } else if (btf_is_typedef(t)) {
      typedefs_.emplace(name, id);
    } else if (btf_is_enum(t) || btf_is_enum64(t)) {
      enums_.emplace(name, id);
    }
  }
}

Result<uint32_t> BtfKernelTypes::FindNamed(std::string_view type) const {
  if (auto it = composites_.find(type); it != composites_.end()) return it->second;
  if (auto it = typedefs_.find(type); it != typedefs_.end()) return it->second;
  if (auto it = enums_.find(type); it != enums_.end()) return it->second;
  return NotFoundError("BTF: no type named " + std::string(type));
}

const btf_type* BtfKernelTypes::Resolve(uint32_t id, uint32_t* resolved_id) const {
  for (int depth = 0; depth < kMaxDepth; ++depth) {
    const btf_type* t = btf__type_by_id(btf_.get(), id);
    if (t == nullptr) return nullptr;
    if (!btf_is_typedef(t) && !btf_is_mod(t)) {
      *resolved_id = id;
      return t;
    }
    id = t->type;
  }
  return nullptr;
}

const btf_member* BtfKernelTypes::FindMember(uint32_t id, std::string_view name, int depth,
                                             uint32_t* budget, uint64_t* bits,
                                             uint32_t* bitfield_size) const {
  if (depth >= kMaxDepth) return nullptr;
  uint32_t rid;
  const btf_type* t = Resolve(id, &rid);
  if (t == nullptr || !btf_is_composite(t)) return nullptr;
  const struct btf_member* m = btf_members(t);
  for (uint16_t i = 0; i < btf_vlen(t); ++i, ++m) {
    if (*budget == 0) return nullptr;
    --*budget;
    uint64_t here = btf_member_bit_offset(t, i);
    std::string_view member_name = Name(m->name_off);
    if (member_name == name) {
      *bits += here;
      *bitfield_size = btf_member_bitfield_size(t, i);
      return m;
    }
    if (!member_name.empty()) continue;
    // Anonymous struct/union: its members belong to the outer type.
    uint64_t inner_bits = 0;
    const btf_member* found =
        FindMember(m->type, name, depth + 1, budget, &inner_bits, bitfield_size);
    if (found != nullptr) {
      *bits += here + inner_bits;
      return found;
    }
  }
  return nullptr;
}

// Smallest readable integer width (1, 2, 4, 8) covering `bits` bits, or 0 if none does.
uint64_t StorageBytes(uint64_t bits) {
  for (uint64_t bytes : {1, 2, 4, 8}) {
    if (bits <= bytes * 8) return bytes;
  }
  return 0;
}

Result<MemberInfo> BtfKernelTypes::Member(std::string_view type, std::string_view path) const {
  VMEMFS_ASSIGN_OR_RETURN(uint32_t id, FindNamed(type));
  auto missing = [&](std::string_view why) {
    return NotFoundError("BTF: " + std::string(type) + "." + std::string(path) + ": " +
                         std::string(why));
  };
  uint64_t bits = 0;
  uint32_t bitfield_size = 0;
  const btf_member* m = nullptr;
  size_t start = 0;
  for (size_t n = 0; start <= path.size(); ++n) {
    if (n >= kMaxPathElements) return InvalidArgumentError("BTF: member path too long");
    size_t dot = path.find('.', start);
    std::string_view element =
        path.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (element.empty()) return missing("empty path element");
    if (m != nullptr && bitfield_size != 0) return missing("bit field has no members");
    uint32_t budget = kMaxMemberVisits;
    m = FindMember(m ? m->type : id, element, 0, &budget, &bits, &bitfield_size);
    if (m == nullptr) return missing("no member " + std::string(element));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  MemberInfo info{.offset = bits / 8, .size = 0};
  if (bitfield_size != 0) {
    info.bit_offset = static_cast<uint32_t>(bits % 8);
    info.bit_size = bitfield_size;
    // Wide enough to read the whole field in one integer read from `offset`.
    info.size = StorageBytes(info.bit_offset + uint64_t{bitfield_size});
    if (info.size == 0) return BadDataError("BTF: bit field too wide: " + std::string(path));
    return info;
  }
  if (bits % 8 != 0) return BadDataError("BTF: member not byte aligned: " + std::string(path));
  int64_t size = btf__resolve_size(btf_.get(), m->type);
  if (size < 0) return BadDataError("BTF: cannot size member " + std::string(path));
  info.size = static_cast<uint64_t>(size);
  return info;
}

Result<int64_t> BtfKernelTypes::Enumerator(std::string_view enum_type,
                                           std::string_view name) const {
  auto it = enums_.find(enum_type);
  if (it == enums_.end()) return NotFoundError("BTF: no enum named " + std::string(enum_type));
  const btf_type* t = btf__type_by_id(btf_.get(), it->second);
  if (t == nullptr) return BadDataError("BTF: bad enum id");
  if (btf_is_enum(t)) {
    const struct btf_enum* e = btf_enum(t);
    for (uint16_t i = 0; i < btf_vlen(t); ++i, ++e) {
      if (Name(e->name_off) != name) continue;
      // kflag set: signed values; otherwise the 32 bits are unsigned.
      return btf_kflag(t) ? int64_t{e->val} : int64_t{static_cast<uint32_t>(e->val)};
    }
  } else {
    const struct btf_enum64* e = btf_enum64(t);
    for (uint16_t i = 0; i < btf_vlen(t); ++i, ++e) {
      if (Name(e->name_off) == name) return static_cast<int64_t>(btf_enum64_value(e));
    }
  }
  return NotFoundError("BTF: enum " + std::string(enum_type) + " has no " + std::string(name));
}

}  // namespace

Result<std::unique_ptr<KernelTypes>> KernelTypes::FromBtf(std::span<const std::byte> bytes) {
  if (bytes.empty()) return BadDataError("BTF: empty");
  if (bytes.size() > kMaxBtfBytes) {
    return BadDataError("BTF: " + std::to_string(bytes.size()) + " bytes is more than 64 MiB");
  }
  SilenceLibbpfOnce();
  // btf__new copies the bytes, so the caller's buffer may go away afterwards.
  errno = 0;
  btf* b = btf__new(bytes.data(), static_cast<uint32_t>(bytes.size()));
  if (b == nullptr || libbpf_get_error(b) != 0) {
    int err = errno;
    return BadDataError(std::string("BTF: libbpf rejected it: ") +
                        (err != 0 ? std::strerror(err) : "invalid"));
  }
  if (btf__type_cnt(b) <= 1) {
    btf__free(b);
    return BadDataError("BTF: no types");
  }
  return std::unique_ptr<KernelTypes>(new BtfKernelTypes(b));
}

}  // namespace vmemfs::vmi::linux_os
