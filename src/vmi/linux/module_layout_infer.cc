#include "vmi/linux/module_layout_infer.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <optional>
#include <set>
#include <string_view>

#include "base/hex.h"
#include "vmi/linux/list_walk.h"

namespace vmemfs::vmi::linux_os {
namespace {

// struct module's start on a 32-bit kernel: state, list, name[64 - sizeof(long)].
constexpr uint64_t kList = 4, kName = 12, kNameSize = 60;
constexpr uint64_t kPage = 4096;
constexpr uint64_t kChunk = 1 << 20;
constexpr uint64_t kWindow = 1024;     // bytes of each struct module read (6.1 i386: 0x240)
constexpr size_t kMaxHeads = 64;       // candidate heads whose rings are walked
constexpr size_t kMaxRingsTried = 4;   // rings (longest first) the layout is looked for in
constexpr size_t kMaxModules = 4096;   // per ring
constexpr size_t kMaxRingSteps = 1 << 16;  // ring nodes visited over all candidates
constexpr size_t kMaxSample = 256;     // modules whose struct is read for the inference
// Reads a hostile image could otherwise multiply: list_heads probed for a back-link, module_use
// nodes and export entries checked, each over the whole inference.
constexpr size_t kMaxProbes = 1 << 18;
constexpr size_t kMaxUseSteps = 1 << 16;
constexpr size_t kMaxExportChecks = 1 << 18;
constexpr uint64_t kMaxCoreBytes = 256 << 20;
constexpr uint32_t kMaxExports = 100'000;
constexpr uint32_t kMaxSymbols = 500'000;
constexpr size_t kMaxUsers = 1000;
constexpr uint32_t kMaxRefcnt = 1u << 30;
constexpr uint32_t kTaintFlags = 1u << 19;  // TAINT_FLAGS_COUNT of 6.1: no higher bit
constexpr uint32_t kLive = 0, kUnformed = 3;
// struct module_use of 32-bit pointers: source_list, target_list, source, target.
constexpr uint64_t kUseTargetList = 8, kUseSource = 16, kUseTarget = 20;
// struct mod_kallsyms of 32-bit pointers: symtab, num_symtab, strtab, typetab.
constexpr uint64_t kKsNum = 4, kKsStrtab = 8, kKsTypetab = 12, kKsSize = 16;
constexpr uint64_t kElf32SymSize = 16;   // st_name, st_value, st_size, info, other, shndx
constexpr uint64_t kKernelSymbolSize = 12;  // PREL32: value, name, namespace offsets
// Bytes before core_layout that can hold init: the cacheline padding and init itself.
constexpr uint64_t kInitReach = 64;

bool PrintableName(std::string_view s) {
  size_t n = s.find('\0');
  if (n == 0 || n == std::string_view::npos) return false;
  return std::all_of(s.begin(), s.begin() + n, [](char c) { return c > 0x20 && c < 0x7f; });
}

// The start every struct module has: state <= UNFORMED and a printable NUL-terminated name.
Result<bool> LooksLikeModule(KernelMemory& mem, uint64_t module) {
  std::array<std::byte, kName + kNameSize> b;
  VMEMFS_ASSIGN_OR_RETURN(bool ok, mem.ReadIfMapped(module, b));
  if (!ok) return false;
  uint32_t state;
  std::memcpy(&state, b.data(), 4);
  return state <= kUnformed &&
         PrintableName({reinterpret_cast<const char*>(b.data()) + kName, kNameSize});
}

bool InImage(const ModuleInferInput& in, uint64_t va) {
  return va >= in.image_start && va < in.search_start + in.search_bytes;
}

// The struct modules on the ring through `head`, or nothing when a node is not one. `steps`
// counts the nodes visited (all candidates share kMaxRingSteps).
Result<std::optional<std::vector<uint64_t>>> ReadRing(KernelMemory& mem,
                                                      const ModuleInferInput& in, uint64_t head,
                                                      size_t& steps) {
  std::vector<uint64_t> modules;
  Status error;
  WalkEnd end = WalkList(mem, head, std::min(kMaxModules, kMaxRingSteps - steps),
                         [&](uint64_t node) -> Status {
    ++steps;
    if (node < in.page_offset || InImage(in, node)) return BadDataError("node in the image");
    auto ok = LooksLikeModule(mem, node - kList);
    if (!ok) error = ok.error();
    if (!ok || !*ok) return BadDataError("not a struct module");
    modules.push_back(node - kList);
    return Status();
  });
  if (!error.ok()) return error;
  if (!end.status.ok() || modules.empty()) return std::optional<std::vector<uint64_t>>();
  return std::optional(std::move(modules));
}

// list_heads in [start, start + bytes) (bytes <= kChunk) whose next and prev lead out of the
// image to a struct module that links back: the candidate heads, each with its ring.
// `probes` counts the list_heads whose links were read (kMaxProbes over all chunks).
Status ScanChunk(KernelMemory& mem, const ModuleInferInput& in, uint64_t start, uint64_t bytes,
                 size_t& heads, size_t& steps, size_t& probes,
                 std::vector<std::vector<uint64_t>>& rings, std::vector<uint64_t>& ring_heads) {
  std::vector<uint32_t> w((bytes + 8) / 4);
  auto buf = std::as_writable_bytes(std::span(w));
  VMEMFS_ASSIGN_OR_RETURN(bool ok, mem.ReadIfMapped(start, buf));
  if (!ok) {  // the tail may be past the image's last page: try without it
    w.resize(bytes / 4);
    VMEMFS_ASSIGN_OR_RETURN(ok, mem.ReadIfMapped(start, std::as_writable_bytes(std::span(w))));
    if (!ok) return Status();
  }
  for (size_t i = 0; i + 1 < w.size() && i * 4 < bytes && heads < kMaxHeads && probes < kMaxProbes;
       ++i) {
    const uint64_t at = start + i * 4, next = w[i], prev = w[i + 1];
    if (next < in.page_offset || prev < in.page_offset || next % 4 || prev % 4 ||
        InImage(in, next) || InImage(in, prev)) {
      continue;
    }
    ++probes;
    auto back = mem.Pointer(next + 4);
    auto fwd = mem.Pointer(prev);
    if (!back || !fwd || *back != at || *fwd != at) continue;
    VMEMFS_ASSIGN_OR_RETURN(bool first, LooksLikeModule(mem, next - kList));
    if (!first) continue;
    ++heads;
    VMEMFS_ASSIGN_OR_RETURN(auto ring, ReadRing(mem, in, at, steps));
    if (ring) {
      rings.push_back(std::move(*ring));
      ring_heads.push_back(at);
    }
  }
  return Status();
}

// The first kWindow bytes of each sampled struct module (fewer where its memory ends).
struct Mods {
  std::vector<uint64_t> addr;
  std::vector<std::vector<uint32_t>> w;
  std::vector<uint64_t> len;  // readable bytes of w[i]
  std::set<uint64_t> all;     // every struct module on the ring

  size_t size() const { return addr.size(); }
  // Every window holds [0, end).
  bool Fits(uint64_t end) const {
    return std::all_of(len.begin(), len.end(), [end](uint64_t l) { return l >= end; });
  }
  uint32_t At(size_t i, uint64_t off) const { return off + 4 <= len[i] ? w[i][off / 4] : 0; }
  uint32_t State(size_t i) const { return At(i, 0); }
};

Result<Mods> ReadMods(KernelMemory& mem, const std::vector<uint64_t>& ring) {
  Mods m;
  m.all.insert(ring.begin(), ring.end());
  for (uint64_t a : ring) {
    if (m.size() >= kMaxSample) break;
    std::vector<uint32_t> w(kWindow / 4, 0);
    uint64_t len = 0;
    while (len < kWindow) {  // page by page: the struct may end near its memory's end
      uint64_t n = std::min(kWindow - len, kPage - (a + len) % kPage);
      auto part = std::as_writable_bytes(std::span(w)).subspan(len, n);
      VMEMFS_ASSIGN_OR_RETURN(bool ok, mem.ReadIfMapped(a + len, part));
      if (!ok) break;
      len += n;
    }
    m.addr.push_back(a);
    m.w.push_back(std::move(w));
    m.len.push_back(len);
  }
  return m;
}

struct Core {
  uint64_t off = 0;
  const Mods* m = nullptr;
  uint64_t Base(size_t i) const { return m->At(i, off); }
  uint64_t Size(size_t i) const { return m->At(i, off + 4); }
  uint64_t Text(size_t i) const { return m->At(i, off + 8); }
  bool In(size_t i, uint64_t va) const { return va >= Base(i) && va < Base(i) + Size(i); }
};

// core_layout {base, size, text_size}: the module's own struct lies in its data.
std::optional<Core> FindCore(const Mods& m, uint64_t page_offset) {
  for (uint64_t off = kName + kNameSize; m.Fits(off + 12); off += 4) {
    bool ok = true;
    for (size_t i = 0; i < m.size() && ok; ++i) {
      uint64_t base = m.At(i, off), size = m.At(i, off + 4), text = m.At(i, off + 8);
      ok = base >= page_offset && base % kPage == 0 && size > 0 && size <= kMaxCoreBytes &&
           text <= size && m.addr[i] >= base + text && m.addr[i] + kName + kNameSize <= base + size;
    }
    if (ok) return Core{off, &m};
  }
  return std::nullopt;
}

// sizeof(struct module_layout): with CONFIG_MODULES_TREE_LOOKUP both layouts' mtn.mod (after
// base and four sizes) point back at the module; without, five words. nullopt: init_layout
// (base and size zero once init ran, else a page-aligned base and a size) does not fit.
std::optional<uint64_t> FindLayoutSize(const Mods& m, const Core& c, bool* tree) {
  auto back_at = [&](uint64_t off) {
    if (!m.Fits(off + 4)) return false;
    for (size_t i = 0; i < m.size(); ++i) {
      if (m.At(i, off) != m.addr[i]) return false;
    }
    return true;
  };
  std::optional<uint64_t> size;
  *tree = back_at(c.off + 20);
  if (!*tree) size = 20;
  for (uint64_t l = 24; *tree && l <= 128 && !size; l += 4) {
    if (back_at(c.off + l + 20)) size = l;
  }
  if (!size || !m.Fits(c.off + 2 * *size + 4)) return std::nullopt;
  for (size_t i = 0; i < m.size(); ++i) {
    uint64_t base = m.At(i, c.off + *size), bytes = m.At(i, c.off + *size + 4);
    bool done = base == 0 && bytes == 0;
    if (!done && (base % kPage != 0 || base == 0 || bytes == 0 || bytes > kMaxCoreBytes)) {
      return std::nullopt;
    }
  }
  return size;
}

// kallsyms: points at core_kallsyms right after it in every live module, whose symtab, strtab
// and typetab lie in the core, symtab[0] the null symbol and typetab letters.
Result<std::optional<uint64_t>> FindKallsyms(KernelMemory& mem, const Mods& m, const Core& c,
                                             uint64_t from) {
  for (uint64_t q = from; m.Fits(q + 4 + kKsSize); q += 4) {
    bool ok = true, live = false;
    for (size_t i = 0; i < m.size() && ok; ++i) {
      if (m.State(i) != kLive) continue;
      live = true;
      uint64_t ks = q + 4;
      uint32_t num = m.At(i, ks + kKsNum);
      ok = m.At(i, q) == m.addr[i] + ks && c.In(i, m.At(i, ks)) && num > 0 &&
           num <= kMaxSymbols && c.In(i, m.At(i, ks + kKsStrtab)) &&
           c.In(i, m.At(i, ks + kKsTypetab));
    }
    if (!ok || !live) continue;
    for (size_t i = 0; i < m.size() && ok; ++i) {
      if (m.State(i) != kLive) continue;
      std::array<std::byte, kElf32SymSize> null;
      std::array<char, 2> type;
      VMEMFS_ASSIGN_OR_RETURN(bool read, mem.ReadIfMapped(m.At(i, q + 4), null));
      VMEMFS_ASSIGN_OR_RETURN(bool read2,
                              mem.ReadIfMapped(m.At(i, q + 4 + kKsTypetab),
                                               std::as_writable_bytes(std::span(type))));
      ok = read && read2 && std::all_of(null.begin(), null.end(), [](std::byte b) {
             return b == std::byte{0};
           });
      // typetab[1]: the first real symbol's letter (entry 0's is the null symbol's).
      ok = ok && (m.At(i, q + 4 + kKsNum) < 2 || std::isalpha(static_cast<unsigned char>(type[1])));
    }
    if (ok) return std::optional(q);
  }
  return std::optional<uint64_t>();
}

// Every entry of an export table resolves, value and name, into the module's core.
// `checks` counts the entries read (kMaxExportChecks over the inference).
Result<bool> ExportsResolve(KernelMemory& mem, const Core& c, size_t i, uint64_t syms,
                            uint32_t num, size_t& checks) {
  if (syms + uint64_t{num} * kKernelSymbolSize > c.Base(i) + c.Size(i)) return false;
  if (num > kMaxExportChecks - checks) return false;
  checks += num;
  std::vector<int32_t> t(num * 3);
  VMEMFS_ASSIGN_OR_RETURN(bool ok, mem.ReadIfMapped(syms, std::as_writable_bytes(std::span(t))));
  for (uint32_t k = 0; ok && k < num; ++k) {
    uint64_t entry = syms + k * kKernelSymbolSize;
    uint64_t value = (entry + static_cast<int64_t>(t[k * 3])) & 0xffffffff;
    uint64_t name = (entry + 4 + static_cast<int64_t>(t[k * 3 + 1])) & 0xffffffff;
    ok = c.In(i, value) && c.In(i, name);
    if (ok) {
      std::array<char, 64> s{};
      auto n = std::as_writable_bytes(std::span(s));
      VMEMFS_ASSIGN_OR_RETURN(bool read, mem.ReadIfMapped(name, n.first(std::min<uint64_t>(
                                                                  n.size(), c.Base(i) + c.Size(i) - name))));
      ok = read && s[0] != '\0';
    }
  }
  return ok;
}

// syms, [crcs,] num_syms before core_layout: every module's table resolves; nullopt when no
// module exports anything (nothing to find it by). Returns {syms, num_syms} offsets.
Result<std::optional<std::pair<uint64_t, uint64_t>>> FindExports(KernelMemory& mem, const Mods& m,
                                                                  const Core& c) {
  using Found = std::optional<std::pair<uint64_t, uint64_t>>;
  size_t checks = 0;
  for (uint64_t y = kName + kNameSize; y + 12 <= c.off; y += 4) {
    for (uint64_t gap : {8, 4}) {  // crcs between (CONFIG_MODVERSIONS) or not
      bool ok = true, some = false;
      for (size_t i = 0; i < m.size() && ok; ++i) {
        uint32_t syms = m.At(i, y), crcs = m.At(i, y + 4), num = m.At(i, y + gap);
        if (syms == 0 && num == 0) continue;
        some = true;
        ok = c.In(i, syms) && (gap == 4 || crcs == 0 || c.In(i, crcs)) && num > 0 &&
             num <= kMaxExports;
      }
      if (!ok || !some) continue;
      for (size_t i = 0; i < m.size() && ok; ++i) {
        uint32_t syms = m.At(i, y), num = m.At(i, y + gap);
        if (num == 0) continue;
        VMEMFS_ASSIGN_OR_RETURN(ok, ExportsResolve(mem, c, i, syms, num, checks));
      }
      if (ok) return Found(std::pair{y, y + gap});
    }
  }
  return Found();
}

// A module_use list of module `i` at `list`: empty (pointing at itself) or uses naming the
// module as `self_at` (kUseTarget on source_list, kUseSource on target_list) and a listed
// module at the other end. Counts the uses seen; `steps` the nodes visited (kMaxUseSteps
// over the inference).
Result<bool> UsesFit(KernelMemory& mem, const Mods& m, size_t i, uint64_t list, uint64_t node_at,
                     uint64_t self_at, uint64_t other_at, size_t& links, size_t& steps) {
  if (steps >= kMaxUseSteps) return false;
  WalkEnd end = WalkList(mem, list, std::min(kMaxUsers, kMaxUseSteps - steps),
                         [&](uint64_t node) -> Status {
    ++steps;
    uint64_t use = node - node_at;
    VMEMFS_ASSIGN_OR_RETURN(uint64_t self, mem.Pointer(use + self_at));
    VMEMFS_ASSIGN_OR_RETURN(uint64_t other, mem.Pointer(use + other_at));
    if (self != m.addr[i] || !m.all.contains(other)) return BadDataError("not a module_use");
    ++links;
    return Status();
  });
  return end.status.ok();
}

// source_list, target_list, exit, refcnt: after kallsyms; see the header. Returns the offset
// of source_list and counts the module_use links that confirm it.
Result<std::optional<uint64_t>> FindUnload(KernelMemory& mem, const Mods& m, const Core& c,
                                           uint64_t from, size_t& links) {
  size_t steps = 0;
  for (uint64_t s = from; m.Fits(s + 24); s += 4) {
    bool ok = true;
    for (size_t i = 0; i < m.size() && ok; ++i) {
      const uint64_t self = m.addr[i] + s;
      uint32_t exit = m.At(i, s + 16), ref = m.At(i, s + 20);
      auto list_ok = [&](uint64_t off) {
        uint32_t next = m.At(i, off), prev = m.At(i, off + 4);
        bool empty = next == self + (off - s) && prev == next;
        return empty || (next != self + (off - s) && prev != self + (off - s) && next % 4 == 0);
      };
      ok = list_ok(s) && list_ok(s + 8) && (exit == 0 || (exit >= c.Base(i) && exit < c.Base(i) + c.Text(i))) &&
           ref <= kMaxRefcnt && (m.State(i) != kLive || ref >= 1);
    }
    if (!ok) continue;
    size_t seen = 0;
    for (size_t i = 0; i < m.size() && ok; ++i) {
      const uint64_t a = m.addr[i];
      VMEMFS_ASSIGN_OR_RETURN(ok, UsesFit(mem, m, i, a + s, 0, kUseTarget, kUseSource, seen, steps));
      if (ok) {
        VMEMFS_ASSIGN_OR_RETURN(
            ok, UsesFit(mem, m, i, a + s + 8, kUseTargetList, kUseSource, kUseTarget, seen, steps));
      }
    }
    if (ok) {
      links = seen;
      return std::optional(s);
    }
  }
  return std::optional<uint64_t>();
}

// init: the last word before core_layout that is not padding, NULL or outside the core.
std::optional<uint64_t> FindInit(const Mods& m, const Core& c, uint64_t page_offset) {
  for (uint64_t off = c.off - 4; off + kInitReach >= c.off && off >= kName + kNameSize; off -= 4) {
    bool any = false, ok = true;
    for (size_t i = 0; i < m.size() && ok; ++i) {
      uint32_t v = m.At(i, off);
      any |= v != 0;
      ok = v == 0 || (v >= page_offset && !c.In(i, v));
    }
    if (any) return ok ? std::optional(off) : std::nullopt;
  }
  return std::nullopt;
}

}  // namespace

Result<InferredModules> InferModuleLayout32(KernelMemory& mem, const ModuleInferInput& in) {
  size_t heads = 0, steps = 0, probes = 0;
  std::vector<std::vector<uint64_t>> rings;
  std::vector<uint64_t> ring_heads;
  for (uint64_t off = 0; off < in.search_bytes && heads < kMaxHeads; off += kChunk) {
    VMEMFS_TRY(ScanChunk(mem, in, in.search_start + off,
                         std::min(kChunk, in.search_bytes - off) & ~uint64_t{3}, heads, steps,
                         probes, rings, ring_heads));
  }
  if (rings.empty()) {
    return NotFoundError(fmt::format("no list_head in {} bytes after {} leads to a ring of "
                                     "struct modules ({})",
                                     in.search_bytes, Hex(in.search_start),
                                     probes >= kMaxProbes ? "stopped after 262144 candidates"
                                                          : "no module loaded?"));
  }
  // The longest ring whose modules all fit the layout.
  std::vector<size_t> order(rings.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return rings[a].size() > rings[b].size(); });
  Status last = NotFoundError("no ring");
  if (order.size() > kMaxRingsTried) order.resize(kMaxRingsTried);
  for (size_t r : order) {
    VMEMFS_ASSIGN_OR_RETURN(Mods m, ReadMods(mem, rings[r]));
    auto core = FindCore(m, in.page_offset);
    if (!core) {
      last = NotFoundError("no core_layout offset fits (a struct module inside its base/size)");
      continue;
    }
    bool tree = false;
    auto layout_size = FindLayoutSize(m, *core, &tree);
    if (!layout_size) {
      last = NotFoundError("no init_layout fits after core_layout");
      continue;
    }
    const uint64_t init_layout = core->off + *layout_size, taints = init_layout + *layout_size;
    bool taints_ok = m.Fits(taints + 4);
    for (size_t i = 0; i < m.size() && taints_ok; ++i) taints_ok = m.At(i, taints) < kTaintFlags;
    VMEMFS_ASSIGN_OR_RETURN(auto kallsyms, FindKallsyms(mem, m, *core, taints + 4));
    if (!kallsyms) {
      last = NotFoundError("no kallsyms offset fits (a pointer at core_kallsyms after it)");
      continue;
    }
    size_t links = 0;
    VMEMFS_ASSIGN_OR_RETURN(auto unload, FindUnload(mem, m, *core, *kallsyms + 4 + kKsSize, links));
    if (!unload) {
      last = NotFoundError("no source_list/target_list/exit/refcnt offsets fit");
      continue;
    }
    VMEMFS_ASSIGN_OR_RETURN(auto exports, FindExports(mem, m, *core));
    auto init = FindInit(m, *core, in.page_offset);

    InferredModules out;
    out.head = ring_heads[r];
    out.modules = rings[r].size();
    ModuleLayout& l = out.layout;
    l.list = kList;
    l.name = kName;
    l.name_size = kNameSize;
    l.state = {0, 4};
    l.size_parts[0] = {core->off + 4, 4};
    l.size_parts[1] = {init_layout + 4, 4};
    l.num_size_parts = 2;
    l.base = core->off;
    l.refcnt = {*unload + 20, 4};
    l.source_list = *unload;
    l.exit = *unload + 16;
    l.has_init = init.has_value();
    l.init = init.value_or(0);
    l.taints = taints_ok ? Field{taints, 4} : Field{};
    l.kallsyms = *kallsyms;
    l.has_exports = exports.has_value();
    if (exports) {
      l.syms = exports->first;
      l.num_syms = {exports->second, 4};
    }
    l.use_source_list = 0;
    l.use_source = kUseSource;
    l.kallsyms_symtab = 0;
    l.kallsyms_num_symtab = {kKsNum, 4};
    l.kallsyms_strtab = kKsStrtab;
    l.kallsyms_typetab = kKsTypetab;
    l.sym_size = kElf32SymSize;
    l.sym_value = {4, 4};

    out.how.push_back(
        {"modules-head", Hex(out.head),
         fmt::format("no `modules` in kallsyms: the list_head in the image's data whose ring "
                     "holds {} struct modules (state, printable name), none in the image",
                     out.modules)});
    out.how.push_back(
        {"module-offsets",
         fmt::format("list {} name {} core_layout {} init_layout {} taints {} kallsyms {} syms {} "
                     "source_list {} exit {} refcnt {} init {}",
                     Hex(l.list), Hex(l.name), Hex(l.base), Hex(init_layout),
                     taints_ok ? Hex(taints) : "?", Hex(l.kallsyms),
                     exports ? Hex(l.syms) : "?", Hex(l.source_list), Hex(l.exit),
                     Hex(l.refcnt.offset), init ? Hex(l.init) : "?"),
         fmt::format("inferred from {} modules: core_layout holds its struct module{}; "
                     "init_layout zero after init; kallsyms points at core_kallsyms after it, "
                     "symtab[0] null; {}; module_use lists name their modules ({} links), "
                     "exit in core text, refcnt >= 1; {}; {}",
                     m.size(), tree ? ", mtn.mod points back" : "",
                     exports ? "exports resolve into each module's core"
                             : "no module exports symbols (all shown local)",
                     links,
                     init ? "init: the last word before core_layout, outside the core"
                          : "init not found (no [permanent])",
                     taints_ok ? "taints: the word after init_layout, taint bits only"
                               : "taints not found")});
    return out;
  }
  return last;
}

}  // namespace vmemfs::vmi::linux_os
