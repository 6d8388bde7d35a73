#include "vmi/linux/modules.h"

#include <fmt/format.h>

#include <cctype>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <set>
#include <span>

#include "base/checked.h"
#include "vmi/linux/list_walk.h"

namespace vmemfs::vmi::linux_os {
namespace {

// include/linux/module.h: a loaded module's refcnt starts at MODULE_REF_BASE.
constexpr int64_t kModuleRefBase = 1;
// KSYM_NAME_LEN of 6.1 (names are cut there by /proc/kallsyms too).
constexpr size_t kKsymNameLen = 512;
// struct kernel_symbol with CONFIG_HAVE_ARCH_PREL32_RELOCATIONS (x86_64): value_offset,
// name_offset, namespace_offset, each an s32 relative to its own address.
constexpr uint64_t kKernelSymbolSize = 12;

// "0x" and 16 (or 8) hex digits, as the kernel's %px prints a 64-bit (32-bit) pointer.
std::string PointerText(uint64_t v, uint64_t pointer_size = 8) {
  return fmt::format("0x{:0{}x}", v, pointer_size * 2);
}

void AddSizePart(ModuleLayout& l, Field f) {
  if (l.num_size_parts < ModuleLayout::kMaxSizeParts) l.size_parts[l.num_size_parts++] = f;
}

// Up to 6.3: core_layout + init_layout (+ data_layout); from 6.4: mod->mem[MOD_MEM_NUM_TYPES].
void ResolveSizes(LayoutResolver& r, const KernelTypes& types, ModuleLayout& l) {
  if (types.Has("module", "core_layout")) {
    AddSizePart(l, r.Integer("module", "core_layout.size"));
    AddSizePart(l, r.Integer("module", "init_layout.size"));
    if (types.Has("module", "data_layout")) AddSizePart(l, r.Integer("module", "data_layout.size"));
    l.base = r.Offset("module", "core_layout.base");
    return;
  }
  auto mem = types.Member("module", "mem");
  auto entry = types.Size("module_memory");
  if (!mem || !entry || *entry == 0) {
    return r.Fail(NotFoundError("kernel has neither module.core_layout nor module.mem"));
  }
  Field size = r.Integer("module_memory", "size");
  l.base = mem->offset + r.Offset("module_memory", "base");  // mem[MOD_TEXT], MOD_TEXT == 0
  for (uint64_t i = 0; i < mem->size / *entry && i < ModuleLayout::kMaxSizeParts; ++i) {
    AddSizePart(l, {mem->offset + i * *entry + size.offset, size.size});
  }
}

}  // namespace

Result<ModuleLayout> ResolveModuleLayout(const KernelTypes& types) {
  LayoutResolver r(types);
  ModuleLayout l;
  l.list = r.Offset("module", "list");
  l.name = r.Offset("module", "name");
  if (auto name = types.Member("module", "name")) l.name_size = name->size;
  l.state = r.Integer("module", "state");
  ResolveSizes(r, types, l);
  l.refcnt = r.Integer("module", "refcnt.counter");
  l.source_list = r.Offset("module", "source_list");
  l.init = r.Offset("module", "init");
  l.exit = r.Offset("module", "exit");
  l.taints = r.Integer("module", "taints");
  l.kallsyms = r.Offset("module", "kallsyms");
  l.syms = r.Offset("module", "syms");
  l.num_syms = r.Integer("module", "num_syms");
  l.use_source_list = r.Offset("module_use", "source_list");
  l.use_source = r.Offset("module_use", "source");
  l.kallsyms_symtab = r.Offset("mod_kallsyms", "symtab");
  l.kallsyms_num_symtab = r.Integer("mod_kallsyms", "num_symtab");
  l.kallsyms_strtab = r.Offset("mod_kallsyms", "strtab");
  l.kallsyms_typetab = r.Offset("mod_kallsyms", "typetab");
  VMEMFS_TRY(r.status());
  if (l.name_size == 0 || l.name_size > 256) {
    return BadDataError("module.name of " + std::to_string(l.name_size) + " bytes");
  }
  return l;
}

namespace {

void Note(Module& m, Status s, std::string_view what) {
  if (m.error.ok() && !s.ok()) m.error = s.WithContext(what);
}

Result<std::string> ModuleName(KernelMemory& mem, const ModuleLayout& l, uint64_t module) {
  return mem.String(module + l.name, l.name_size - 1);
}

// The names of the modules on source_list (the users of this one).
void ReadUsers(KernelMemory& mem, const ModuleLayout& l, const ModuleLimits& limits, Module& m) {
  WalkEnd end =
      WalkList(mem, m.address + l.source_list, limits.max_users, [&](uint64_t node) -> Status {
        uint64_t use = node - l.use_source_list;
        VMEMFS_ASSIGN_OR_RETURN(uint64_t source, mem.Pointer(use + l.use_source));
        VMEMFS_ASSIGN_OR_RETURN(std::string name, ModuleName(mem, l, source));
        m.used_by.push_back(std::move(name));
        return Status();
      });
  Note(m, end.status, "used-by list");
}

// Reads everything but the users; an error only when the name or state is unreadable.
Result<Module> ReadModule(KernelMemory& mem, const ModuleLayout& l, uint64_t address) {
  Module m;
  m.address = address;
  VMEMFS_ASSIGN_OR_RETURN(m.name, ModuleName(mem, l, address));
  VMEMFS_ASSIGN_OR_RETURN(uint64_t state, mem.Unsigned(address + l.state.offset, l.state.size));
  m.state = static_cast<uint32_t>(state);
  for (size_t i = 0; i < l.num_size_parts && i < ModuleLayout::kMaxSizeParts; ++i) {
    auto part = mem.Unsigned(address + l.size_parts[i].offset, l.size_parts[i].size);
    Note(m, part.status(), "layout size");
    m.size += part.value_or(0);
  }
  m.size &= 0xffffffff;  // /proc/modules prints an unsigned int
  auto refcnt = mem.Unsigned(address + l.refcnt.offset, l.refcnt.size);
  Note(m, refcnt.status(), "refcnt");
  m.refcount = static_cast<int32_t>(refcnt.value_or(kModuleRefBase)) - kModuleRefBase;
  if (l.has_init) {
    auto init = mem.Pointer(address + l.init), exit = mem.Pointer(address + l.exit);
    Note(m, init.status(), "init");
    Note(m, exit.status(), "exit");
    m.permanent = init.value_or(0) != 0 && exit.has_value() && *exit == 0;
  }
  auto base = mem.Pointer(address + l.base);
  Note(m, base.status(), "base");
  m.base = base.value_or(0);
  if (l.taints.size != 0) {
    auto taints = mem.Unsigned(address + l.taints.offset, l.taints.size);
    Note(m, taints.status(), "taints");
    m.taints = taints.value_or(0);
  }
  return m;
}

}  // namespace

Result<std::vector<Module>> ListModules(KernelMemory& mem, const ModuleLayout& layout,
                                        uint64_t modules_head, const ModuleLimits& limits,
                                        ModuleWalkReport* report) {
  VMEMFS_TRY(mem.Pointer(modules_head).status().WithContext("modules list head"));
  std::vector<Module> modules;
  WalkEnd end = WalkList(mem, modules_head, limits.max_modules, [&](uint64_t node) -> Status {
    uint64_t address = node - layout.list;
    auto m = ReadModule(mem, layout, address);
    if (!m) return m.error().WithContext("module at " + PointerText(address));
    ReadUsers(mem, layout, limits, *m);
    if (report != nullptr && !m->error.ok()) {
      report->errors.push_back(m->error.WithContext("module " + m->name));
    }
    modules.push_back(std::move(*m));
    return Status();
  });
  if (report != nullptr && !end.status.ok()) {
    report->stopped = end.status.WithContext(
        end.at == modules_head ? "at the list head" : "at module " + PointerText(end.at - layout.list));
    report->truncated = report->truncated || end.capped;
  }
  return modules;
}

namespace {

uint64_t Load(std::span<const std::byte> buf, uint64_t offset, size_t size) {
  uint64_t v = 0;  // callers keep offset + size within buf
  std::memcpy(&v, buf.data() + offset, size);
  return v;
}

// Reads count entries of `entry_size` bytes at va, count already capped by the caller.
Result<std::vector<std::byte>> ReadArray(KernelMemory& mem, uint64_t va, uint64_t count,
                                         uint64_t entry_size) {
  std::vector<std::byte> buf(count * entry_size);
  VMEMFS_TRY(mem.Read(va, buf));
  return buf;
}

// Module exports by EXPORT_SYMBOL (mod->syms; EXPORT_SYMBOL_GPL ones are in gpl_syms, which
// /proc/kallsyms does not consult) as (name, address) pairs.
using Exports = std::set<std::pair<std::string, uint64_t>>;

Exports ReadExports(KernelMemory& mem, const ModuleLayout& l, const ModuleLimits& limits,
                    uint64_t module) {
  Exports out;
  if (!l.has_exports) return out;
  auto syms = mem.Pointer(module + l.syms);
  auto num = mem.Unsigned(module + l.num_syms.offset, l.num_syms.size);
  if (!syms || !num || *syms == 0 || *num == 0 || *num > limits.max_exports) return out;
  auto table = ReadArray(mem, *syms, *num, kKernelSymbolSize);
  if (!table) return out;
  for (uint64_t i = 0; i < *num; ++i) {
    uint64_t entry = *syms + i * kKernelSymbolSize;
    auto value_off = static_cast<int32_t>(Load(*table, i * kKernelSymbolSize, 4));
    auto name_off = static_cast<int32_t>(Load(*table, i * kKernelSymbolSize + 4, 4));
    auto name = mem.String(entry + 4 + static_cast<int64_t>(name_off), kKsymNameLen - 1);
    if (name) out.emplace(std::move(*name), entry + static_cast<int64_t>(value_off));
  }
  return out;
}

}  // namespace

Result<std::vector<Symbol>> ModuleSymbols(KernelMemory& mem, const ModuleLayout& l,
                                          const Module& module, const ModuleLimits& limits) {
  if (module.state == static_cast<uint32_t>(ModuleState::kUnformed)) return std::vector<Symbol>();
  VMEMFS_ASSIGN_OR_RETURN(uint64_t ks, mem.Pointer(module.address + l.kallsyms));
  if (ks == 0) return std::vector<Symbol>();
  VMEMFS_ASSIGN_OR_RETURN(uint64_t symtab, mem.Pointer(ks + l.kallsyms_symtab));
  VMEMFS_ASSIGN_OR_RETURN(
      uint64_t count, mem.Unsigned(ks + l.kallsyms_num_symtab.offset, l.kallsyms_num_symtab.size));
  VMEMFS_ASSIGN_OR_RETURN(uint64_t strtab, mem.Pointer(ks + l.kallsyms_strtab));
  VMEMFS_ASSIGN_OR_RETURN(uint64_t typetab, mem.Pointer(ks + l.kallsyms_typetab));
  if (count > limits.max_symbols) {
    return BadDataError("module " + module.name + " claims " + std::to_string(count) + " symbols");
  }
  if (l.sym_size < 8 || l.sym_value.offset + l.sym_value.size > l.sym_size ||
      l.sym_value.size > 8) {
    return BadDataError("Elf_Sym layout");
  }
  VMEMFS_ASSIGN_OR_RETURN(auto syms, ReadArray(mem, symtab, count, l.sym_size));
  VMEMFS_ASSIGN_OR_RETURN(auto types, ReadArray(mem, typetab, count, 1));
  auto exports = ReadExports(mem, l, limits, module.address);
  std::vector<Symbol> out;
  out.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    uint64_t st_name = Load(syms, i * l.sym_size, 4);  // st_name leads both Elf32/64_Sym
    uint64_t value = Load(syms, i * l.sym_size + l.sym_value.offset, l.sym_value.size);
    auto name_va = CheckedAdd(strtab, st_name);
    if (!name_va) return FaultError(strtab, "module strtab");
    VMEMFS_ASSIGN_OR_RETURN(std::string name, mem.String(*name_va, kKsymNameLen - 1));
    if (name.empty()) continue;
    auto type = static_cast<unsigned char>(Load(types, i, 1));
    // /proc/kallsyms labels a module symbol global only when the module exports it.
    bool exported = exports.contains({name, value});
    char letter = static_cast<char>(exported ? std::toupper(type) : std::tolower(type));
    out.push_back({value, letter, std::move(name), module.name});
  }
  return out;
}

namespace {

// kernel/panic.c taint_flags with .module set: bit, letter.
constexpr std::pair<int, char> kModuleTaints[] = {{0, 'P'},  {1, 'F'},  {10, 'C'},
                                                  {12, 'O'}, {13, 'E'}, {15, 'K'},
                                                  {16, 'X'}, {17, 'T'}, {18, 'N'}};

// module_flags(mod, buf, true): "(taint letters[-|+])".
std::string TaintText(const Module& m) {
  std::string s = "(";
  for (auto [bit, letter] : kModuleTaints) {
    if (m.taints & (1ull << bit)) s += letter;
  }
  if (m.state == static_cast<uint32_t>(ModuleState::kGoing)) s += '-';
  if (m.state == static_cast<uint32_t>(ModuleState::kComing)) s += '+';
  return s + ")";
}

std::string_view StateText(uint32_t state) {
  if (state == static_cast<uint32_t>(ModuleState::kGoing)) return "Unloading";
  if (state == static_cast<uint32_t>(ModuleState::kComing)) return "Loading";
  return "Live";
}

}  // namespace

std::string ModulesText(const std::vector<Module>& modules, uint64_t pointer_size) {
  std::string out;
  for (const Module& m : modules) {
    if (m.state == static_cast<uint32_t>(ModuleState::kUnformed)) continue;
    out += m.name + " " + std::to_string(m.size) + " " + std::to_string(m.refcount) + " ";
    for (const std::string& user : m.used_by) out += user + ",";
    if (m.permanent) out += "[permanent],";
    if (m.used_by.empty() && !m.permanent) out += "-";
    out += " " + std::string(StateText(m.state)) + " " + PointerText(m.base, pointer_size);
    if (m.taints != 0) out += " " + TaintText(m);
    out += "\n";
  }
  return out;
}

}  // namespace vmemfs::vmi::linux_os
