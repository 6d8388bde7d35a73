// Builders for snapshot files in tests and fuzz seeds: ELF cores with CORE/QEMU/VMCOREINFO
// notes and LiME files, assembled byte by byte so tests control every field.
#ifndef VMEMFS_TESTS_DRIVERS_SNAPSHOT_TEST_UTIL_H_
#define VMEMFS_TESTS_DRIVERS_SNAPSHOT_TEST_UTIL_H_

#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

namespace vmemfs::drivers::testing {

using Bytes = std::vector<std::byte>;

template <typename T>
void PutAt(Bytes& b, size_t offset, T v) {
  if (b.size() < offset + sizeof(T)) b.resize(offset + sizeof(T));
  std::memcpy(b.data() + offset, &v, sizeof(T));
}

template <typename T>
void Append(Bytes& b, T v) {
  PutAt(b, b.size(), v);
}

inline void AppendBytes(Bytes& b, const Bytes& more) {
  b.insert(b.end(), more.begin(), more.end());
}

inline void Pad4(Bytes& b) { b.resize((b.size() + 3) / 4 * 4); }

// `n` bytes whose value depends on position and `seed`, so misplaced reads show.
inline Bytes Pattern(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = std::byte(static_cast<uint8_t>(seed + i * 7 + (i >> 8)));
  return b;
}

inline Bytes Text(std::string_view s) {
  Bytes b(s.size());
  std::memcpy(b.data(), s.data(), s.size());
  return b;
}

struct NoteSpec {
  std::string name;  // written with a trailing NUL, as namesz counts it
  uint32_t type;
  Bytes desc;
};

inline Bytes EncodeNote(const NoteSpec& n) {
  Bytes b;
  Append<uint32_t>(b, static_cast<uint32_t>(n.name.size() + 1));
  Append<uint32_t>(b, static_cast<uint32_t>(n.desc.size()));
  Append<uint32_t>(b, n.type);
  AppendBytes(b, Text(n.name));
  b.push_back(std::byte{0});
  Pad4(b);
  AppendBytes(b, n.desc);
  Pad4(b);
  return b;
}

// x86_64 elf_prstatus (336 bytes): user_regs_struct word i = base + i.
inline Bytes Prstatus64(uint64_t base) {
  Bytes b(336);
  for (size_t i = 0; i < 27; ++i) PutAt<uint64_t>(b, 112 + 8 * i, base + i);
  return b;
}

// i386 elf_prstatus (144 bytes): user_regs_struct word i = base + i.
inline Bytes Prstatus32(uint32_t base) {
  Bytes b(144);
  for (size_t i = 0; i < 17; ++i) PutAt<uint32_t>(b, 72 + 4 * i, base + static_cast<uint32_t>(i));
  return b;
}

struct QemuState {
  uint64_t gpr_base = 0x1000;  // rax = base, rbx = base + 1, ... in QEMU's order
  uint64_t rip = 0xffffffff81000000, rflags = 0x246;
  uint16_t cs = 0x10, ds = 0x18, es = 0x18, fs = 0, gs = 0, ss = 0x18;
  uint64_t fs_base = 0x7f0000001000, gs_base = 0xffff888000000000;
  uint64_t gdt_base = 0xfffffe0000001000, idt_base = 0xfffffe0000000000;
  uint32_t gdt_limit = 0x7f, idt_limit = 0xfff;
  uint64_t cr0 = 0x80050033, cr2 = 0x7f00dead0000, cr3 = 0x1234000, cr4 = 0x3706f0;
  uint64_t kernel_gs_base = 0xffff88807fc00000;
  bool with_kernel_gs_base = true;
  uint32_t version = 1;
};

inline Bytes EncodeQemuState(const QemuState& s) {
  const uint32_t size = s.with_kernel_gs_base ? 440 : 432;
  Bytes b(size);
  PutAt<uint32_t>(b, 0, s.version);
  PutAt<uint32_t>(b, 4, size);
  for (size_t i = 0; i < 16; ++i) PutAt<uint64_t>(b, 8 + 8 * i, s.gpr_base + i);
  PutAt<uint64_t>(b, 136, s.rip);
  PutAt<uint64_t>(b, 144, s.rflags);
  const uint16_t sel[6] = {s.cs, s.ds, s.es, s.fs, s.gs, s.ss};
  for (size_t i = 0; i < 6; ++i) PutAt<uint32_t>(b, 152 + 24 * i, sel[i]);
  PutAt<uint64_t>(b, 152 + 24 * 3 + 16, s.fs_base);
  PutAt<uint64_t>(b, 152 + 24 * 4 + 16, s.gs_base);
  PutAt<uint32_t>(b, 152 + 24 * 8 + 4, s.gdt_limit);
  PutAt<uint64_t>(b, 152 + 24 * 8 + 16, s.gdt_base);
  PutAt<uint32_t>(b, 152 + 24 * 9 + 4, s.idt_limit);
  PutAt<uint64_t>(b, 152 + 24 * 9 + 16, s.idt_base);
  const uint64_t cr[5] = {s.cr0, 0, s.cr2, s.cr3, s.cr4};
  for (size_t i = 0; i < 5; ++i) PutAt<uint64_t>(b, 392 + 8 * i, cr[i]);
  if (s.with_kernel_gs_base) PutAt<uint64_t>(b, 432, s.kernel_gs_base);
  return b;
}

struct LoadSpec {
  uint64_t paddr;
  Bytes data;
  uint64_t memsz = 0;     // 0: data.size()
  size_t gap_before = 0;  // bytes of filler in the file before this segment's data
};

struct ElfSpec {
  bool is64 = true;
  uint16_t machine = 62;  // EM_X86_64
  std::vector<NoteSpec> notes;
  std::vector<LoadSpec> loads;
};

// Layout: ELF header, program headers (one PT_NOTE if there are notes, then the PT_LOADs),
// note data, then each load's data in order.
inline Bytes BuildElf(const ElfSpec& spec) {
  const size_t ehsize = spec.is64 ? 64 : 52, phsize = spec.is64 ? 56 : 32;
  const size_t phnum = spec.loads.size() + (spec.notes.empty() ? 0 : 1);
  Bytes notes;
  for (const NoteSpec& n : spec.notes) AppendBytes(notes, EncodeNote(n));
  Bytes b(ehsize + phnum * phsize);
  const char ident[] = {0x7f, 'E', 'L', 'F', static_cast<char>(spec.is64 ? 2 : 1), 1, 1};
  std::memcpy(b.data(), ident, sizeof(ident));
  PutAt<uint16_t>(b, 16, 4);  // ET_CORE
  PutAt<uint16_t>(b, 18, spec.machine);
  PutAt<uint32_t>(b, 20, 1);
  auto put_addr = [&](size_t off, uint64_t v) {
    spec.is64 ? PutAt<uint64_t>(b, off, v) : PutAt<uint32_t>(b, off, static_cast<uint32_t>(v));
  };
  put_addr(spec.is64 ? 32 : 28, ehsize);  // e_phoff
  PutAt<uint16_t>(b, spec.is64 ? 52 : 40, static_cast<uint16_t>(ehsize));
  PutAt<uint16_t>(b, spec.is64 ? 54 : 42, static_cast<uint16_t>(phsize));
  PutAt<uint16_t>(b, spec.is64 ? 56 : 44, static_cast<uint16_t>(phnum));
  auto put_phdr = [&](size_t i, uint32_t type, uint64_t off, uint64_t paddr, uint64_t filesz,
                      uint64_t memsz) {
    const size_t p = ehsize + i * phsize;
    PutAt<uint32_t>(b, p, type);
    if (spec.is64) {
      PutAt<uint64_t>(b, p + 8, off);
      PutAt<uint64_t>(b, p + 24, paddr);
      PutAt<uint64_t>(b, p + 32, filesz);
      PutAt<uint64_t>(b, p + 40, memsz);
    } else {
      PutAt<uint32_t>(b, p + 4, static_cast<uint32_t>(off));
      PutAt<uint32_t>(b, p + 12, static_cast<uint32_t>(paddr));
      PutAt<uint32_t>(b, p + 16, static_cast<uint32_t>(filesz));
      PutAt<uint32_t>(b, p + 20, static_cast<uint32_t>(memsz));
    }
  };
  size_t index = 0;
  if (!spec.notes.empty()) put_phdr(index++, 4, b.size(), 0, notes.size(), 0);
  AppendBytes(b, notes);
  for (const LoadSpec& l : spec.loads) {
    b.resize(b.size() + l.gap_before, std::byte{0xee});
    const uint64_t memsz = l.memsz ? l.memsz : l.data.size();
    put_phdr(index++, 1, b.size(), l.paddr, l.data.size(), memsz);
    AppendBytes(b, l.data);
  }
  return b;
}

struct LimeRangeSpec {
  uint64_t start;
  Bytes data;
};

inline Bytes BuildLime(const std::vector<LimeRangeSpec>& ranges) {
  Bytes b;
  for (const LimeRangeSpec& r : ranges) {
    Append<uint32_t>(b, 0x4C694D45);
    Append<uint32_t>(b, 1);
    Append<uint64_t>(b, r.start);
    Append<uint64_t>(b, r.start + r.data.size() - 1);
    Append<uint64_t>(b, 0);
    AppendBytes(b, r.data);
  }
  return b;
}

// A 64-bit QEMU-style core: 2 vCPUs (CORE + QEMU notes), VMCOREINFO, three RAM segments:
// [0, 0x3000) in two file-contiguous halves, and [0x10000, 0x11000) after a file gap.
inline ElfSpec SampleElf64() {
  ElfSpec spec;
  spec.notes.push_back({"CORE", 1, Prstatus64(0x100)});
  spec.notes.push_back({"CORE", 1, Prstatus64(0x200)});
  QemuState q0, q1;
  q1.cr3 = 0x5678000;
  q1.gpr_base = 0x2000;
  spec.notes.push_back({"QEMU", 0, EncodeQemuState(q0)});
  spec.notes.push_back({"QEMU", 0, EncodeQemuState(q1)});
  spec.notes.push_back({"VMCOREINFO", 0, Text("OSRELEASE=6.1.0\nPAGESIZE=4096\n")});
  spec.loads.push_back({0x0, Pattern(0x1000, 1)});
  spec.loads.push_back({0x1000, Pattern(0x2000, 2)});
  spec.loads.push_back({0x10000, Pattern(0x1000, 3), 0, 16});
  return spec;
}

// A directory under $TMPDIR removed with everything in it at destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vmemfs_test_XXXXXX").string();
    path_ = mkdtemp(tmpl.data()) ? tmpl : std::string();
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }

  std::string Write(const std::string& name, const Bytes& bytes) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
    return p;
  }

  static Bytes Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return Text(s);
  }

 private:
  std::string path_;
};

}  // namespace vmemfs::drivers::testing

#endif  // VMEMFS_TESTS_DRIVERS_SNAPSHOT_TEST_UTIL_H_
