#include "vmi/linux/kernel_finder.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <unordered_set>
#include <utility>
#include <vector>

#include "base/checked.h"
#include "base/hex.h"
#include "vmi/linux/i386_split.h"
#include "vmi/linux/kernel_image.h"

namespace vmemfs::vmi::linux_os {
namespace {

constexpr uint64_t kPage = 4096;
// x86_64's kernel-text region (kernel_image.h): only the image is mapped there.
constexpr uint64_t kImageRegionStart = kKernelImageRegionStart;
constexpr uint64_t kImageRegionEnd = kKernelImageRegionEnd;
// The real-mode blob (and its trampoline_pgd) is placed in the first megabyte.
constexpr uint64_t kLowMemoryEnd = 1ull << 20;
constexpr uint64_t kPtiUserBit = 1ull << 12;  // user PGD = kernel PGD + 4 KiB
constexpr uint64_t kPresent = 1ull << 0;
constexpr uint64_t kLargePage = 1ull << 7;  // reserved in a PML4/PML5 entry
constexpr uint64_t kEntryAddress = 0x000ffffffffff000ull;
constexpr size_t kEntries = 512;
constexpr size_t kKernelHalfBytes = kEntries / 2 * 8;
constexpr size_t kScanChunk = 64 << 10;
constexpr uint64_t kDirectMapAlign = 1ull << 30;  // PUD_SIZE (arch/x86/mm/kaslr.c)

// The note: {n_namesz, n_descsz, n_type}, then the name padded to 12 bytes.
constexpr std::string_view kNoteName("VMCOREINFO\0", 11);
constexpr size_t kNoteHeader = 12 + 12;

// The i386 real-mode trampoline header (arch/x86/realmode/rm/trampoline_32.S, filled by
// setup_real_mode()): {u32 start = __pa(startup_32_smp); u16 gdt_pad = 0;
// u16 gdt_limit = __BOOT_DS + 7; u32 gdt_base = __pa(boot_gdt)}.
constexpr size_t kI386HeaderBytes = 12;
constexpr uint32_t kI386GdtPadAndLimit = 0x001f0000;  // pad 0, limit 0x1f, little-endian
// From startup_32_smp (just after _text) to boot_gdt (.data): text and rodata, a few MiB.
constexpr uint64_t kMaxI386TextBytes = 64ull << 20;
// _stext is at _text, startup_32_smp a few bytes on in .head.text.
constexpr uint64_t kMaxI386HeadBytes = 1ull << 20;

uint32_t Load32(const std::byte* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

uint64_t Load64(const std::byte* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// Passes reads through while they fit in the budget, and counts them. Past the budget every
// read fails (kBadData, which the page-table walker passes up rather than skips) and
// exhausted() says why.
class BudgetedMemory : public PhysicalMemory {
 public:
  BudgetedMemory(PhysicalMemory& inner, uint64_t budget) : inner_(inner), budget_(budget) {}

  Status Read(uint64_t pa, std::span<std::byte> out) override {
    if (out.size() > budget_ - used_) {
      exhausted_ = true;
      return BadDataError("kernel finder read budget of " + std::to_string(budget_) +
                          " bytes exhausted");
    }
    used_ += out.size();
    return inner_.Read(pa, out);
  }
  uint64_t used() const { return used_; }
  bool exhausted() const { return exhausted_; }

 private:
  PhysicalMemory& inner_;
  uint64_t budget_;
  uint64_t used_ = 0;
  bool exhausted_ = false;
};

// Keeps the last few whole pages that small reads touched. NextMapping walks from the root for
// every mapping and re-reads the rest of each table on the way; an image mapped with 4 KiB
// pages would read its page directory thousands of times without this.
class TableCache : public PhysicalMemory {
 public:
  explicit TableCache(PhysicalMemory& inner) : inner_(inner), slots_(kSlots) {}

  Status Read(uint64_t pa, std::span<std::byte> out) override {
    const uint64_t page = pa & ~(kPage - 1);
    if (out.size() > kPage - (pa - page)) return inner_.Read(pa, out);  // crosses a page
    const Slot* slot = Find(page);
    if (slot == nullptr) {
      Slot& s = slots_[next_++ % kSlots];
      s.page = kNone;
      Status status = inner_.Read(page, s.bytes);
      // A page only partly RAM: the bytes asked for may still be readable.
      if (status.code() == ErrorCode::kFault) return inner_.Read(pa, out);
      VMEMFS_TRY(status);
      s.page = page;
      slot = &s;
    }
    std::memcpy(out.data(), slot->bytes.data() + (pa - page), out.size());
    return Status();
  }

 private:
  static constexpr size_t kSlots = 32;
  static constexpr uint64_t kNone = ~0ull;  // never page-aligned
  struct Slot {
    uint64_t page = kNone;
    std::array<std::byte, kPage> bytes;
  };
  const Slot* Find(uint64_t page) const {
    for (const Slot& s : slots_) {
      if (s.page == page) return &s;
    }
    return nullptr;
  }

  PhysicalMemory& inner_;
  std::vector<Slot> slots_;
  size_t next_ = 0;
};

bool InRam(std::span<const drivers::PhysRange> ranges, uint64_t pa, uint64_t size) {
  auto it = std::upper_bound(ranges.begin(), ranges.end(), pa,
                             [](uint64_t a, const drivers::PhysRange& r) { return a < r.start; });
  if (it == ranges.begin()) return false;
  --it;
  return pa >= it->start && RangeWithin(pa - it->start, size, it->size());
}

bool IsIa32e(PagingMode mode) { return mode == PagingMode::kIa32e4 || mode == PagingMode::kIa32e5; }

// Could `v` be the direct-map address of the note: a page-aligned canonical upper-half address.
bool IsKernelPagePointer(PagingMode mode, uint64_t v) {
  return (v & (kPage - 1)) == 0 && (v >> 63) != 0 &&
         OffsetToVirtual(mode, VirtualToOffset(mode, v)) == v;
}

// A top-level table whose kernel half looks like init_top_pgt's: the entry that covers the
// kernel image is present, and every present entry points at a table in RAM without the
// (reserved) large-page bit.
bool PlausibleKernelHalf(std::span<const std::byte> half,
                         std::span<const drivers::PhysRange> ranges) {
  if (!(Load64(half.data() + kKernelHalfBytes - 8) & kPresent)) return false;
  for (size_t off = 0; off < kKernelHalfBytes; off += 8) {
    const uint64_t e = Load64(half.data() + off);
    if (!(e & kPresent)) continue;
    if ((e & kLargePage) || !InRam(ranges, e & kEntryAddress, kPage)) return false;
  }
  return true;
}

struct Root {
  PagingMode mode;
  uint64_t table;
  std::string source;  // "vCPU 0 CR3", "the real-mode trampoline page table at 0x9c000"
};

struct WritableRun {
  uint64_t va;
  uint64_t pa;
  uint64_t size;
};

// What the kernel-text region holds through one root.
struct Image {
  uint64_t start = 0;
  uint64_t end = 0;
  uint32_t mappings = 0;
  std::vector<WritableRun> writable;  // coalesced where both va and pa are contiguous
};

void AddWritable(std::vector<WritableRun>& runs, uint64_t va, uint64_t pa, uint64_t size) {
  if (!runs.empty()) {
    WritableRun& last = runs.back();
    if (last.va + last.size == va && last.pa + last.size == pa) {
      last.size += size;
      return;
    }
  }
  runs.push_back({va, pa, size});
}

// One search: the roots to try, what was tried, and what it cost.
class Search {
 public:
  explicit Search(const KernelFinderInput& in)
      : in_(in), budget_(in.memory, in.limits.max_bytes), tables_(budget_) {}

  // The registers' roots first; low memory is searched only if none of them leads to the note.
  Result<KernelFinding> Run() {
    VMEMFS_ASSIGN_OR_RETURN(std::optional<KernelFinding> found, TryRoots(RegisterRoots()));
    if (!found && !stopped_) {
      VMEMFS_ASSIGN_OR_RETURN(std::vector<Root> low, TrampolineRoots());
      VMEMFS_ASSIGN_OR_RETURN(found, TryRoots(low));
    }
    if (!found && !stopped_) {
      VMEMFS_ASSIGN_OR_RETURN(found, ThroughI386Trampoline());
    }
    if (!found) return NotFound();
    found->cost = cost_;
    found->cost.bytes_read = budget_.used();
    return std::move(*found);
  }

 private:
  // Each IA-32e CR3 as given, then with the PTI user bit cleared (a vCPU caught in user mode
  // holds the user half of the pair, which maps little of the kernel).
  std::vector<Root> RegisterRoots() {
    std::vector<Root> roots;
    for (const RegisterRoot& c : in_.registers) {
      if (!IsIa32e(c.mode)) {
        // An i386 kernel: found through its trampoline header (ThroughI386Trampoline).
        Note(c.source + ": " + std::string(PagingModeName(c.mode)) + " is not x86_64 paging");
        continue;
      }
      const uint64_t dtb = DtbFromCr3(c.mode, c.cr3);
      roots.push_back({c.mode, dtb, c.source});
      if (dtb & kPtiUserBit) {
        roots.push_back({c.mode, dtb & ~kPtiUserBit, c.source + " with the PTI user bit cleared"});
      }
      if (!register_mode_) register_mode_ = c.mode;
    }
    return roots;
  }

  // Pages of RAM below 1 MiB that look like a top-level table with the kernel's upper half,
  // each in the registers' paging mode or, without registers, in both IA-32e modes.
  Result<std::vector<Root>> TrampolineRoots() {
    std::vector<Root> roots;
    uint32_t tables = 0;
    for (const drivers::PhysRange& r : in_.ranges) {
      if (r.start >= kLowMemoryEnd) break;
      const uint64_t end = std::min(r.end, kLowMemoryEnd);
      for (uint64_t page = (r.start + kPage - 1) & ~(kPage - 1);
           page < end && end - page >= kPage && tables < in_.limits.max_trampoline_tables;
           page += kPage) {
        VMEMFS_ASSIGN_OR_RETURN(bool plausible, PlausibleTopTable(page));
        if (!plausible) continue;
        ++tables;
        const std::string source = "the real-mode trampoline page table at " + Hex(page);
        if (register_mode_) {
          roots.push_back({*register_mode_, page, source});
        } else {
          roots.push_back({PagingMode::kIa32e4, page, source});
          roots.push_back({PagingMode::kIa32e5, page, source});
        }
      }
    }
    return roots;
  }

  // Reads the image-covering entry first, the whole upper half only if that one is sane.
  Result<bool> PlausibleTopTable(uint64_t page) {
    std::array<std::byte, kKernelHalfBytes> half;
    auto last = std::span(half).last(8);
    VMEMFS_ASSIGN_OR_RETURN(bool ok, ReadOrSkip(page + kPage - 8, last));
    if (!ok) return false;
    const uint64_t e = Load64(last.data());
    if (!(e & kPresent) || (e & kLargePage) || !InRam(in_.ranges, e & kEntryAddress, kPage)) {
      return false;
    }
    VMEMFS_ASSIGN_OR_RETURN(ok, ReadOrSkip(page + kPage / 2, half));
    return ok && PlausibleKernelHalf(half, in_.ranges);
  }

  Result<std::optional<KernelFinding>> TryRoots(const std::vector<Root>& roots) {
    for (const Root& root : roots) {
      if (stopped_) break;
      VMEMFS_ASSIGN_OR_RETURN(std::optional<KernelFinding> found, TryRoot(root));
      if (found) return found;
    }
    return std::optional<KernelFinding>();
  }

  // The root's verdict: a finding, nullopt when this root leads nowhere (the reason is noted),
  // or an error that ends the search (a failing source).
  Result<std::optional<KernelFinding>> TryRoot(const Root& root) {
    VMEMFS_ASSIGN_OR_RETURN(bool fresh, FreshRoot(root));
    if (!fresh || stopped_) return std::optional<KernelFinding>();
    if (cost_.roots_walked >= in_.limits.max_roots) {
      Halt("walked " + std::to_string(cost_.roots_walked) + " roots");
      return std::optional<KernelFinding>();
    }
    ++cost_.roots_walked;
    // Per root: the same value may translate elsewhere through another root.
    seen_pointers_.clear();
    seen_notes_.clear();
    VMEMFS_ASSIGN_OR_RETURN(std::optional<Image> image, WalkImage(root));
    if (!image) return std::optional<KernelFinding>();
    return ScanImage(root, *image);
  }

  // False when an earlier root had the same mode and the same kernel half: it would walk the
  // same tables to the same end (every vCPU of a guest shares them).
  Result<bool> FreshRoot(const Root& root) {
    std::string half(kKernelHalfBytes, '\0');
    VMEMFS_ASSIGN_OR_RETURN(
        bool ok, ReadOrSkip(root.table + kPage / 2, std::as_writable_bytes(std::span(half))));
    if (!ok) {
      if (!stopped_) Note(root.source + ": root " + Hex(root.table) + " is not in RAM");
      return false;
    }
    auto key = std::make_pair(root.mode, std::move(half));
    if (std::find(seen_roots_.begin(), seen_roots_.end(), key) != seen_roots_.end()) return false;
    seen_roots_.push_back(std::move(key));
    return true;
  }

  Result<std::optional<Image>> WalkImage(const Root& root) {
    Image image;
    const uint64_t limit = VirtualToOffset(root.mode, kImageRegionEnd);
    for (uint64_t at = VirtualToOffset(root.mode, kImageRegionStart); at < limit;) {
      if (image.mappings >= in_.limits.max_image_mappings) {
        Note(Where(root) + ": more than " + std::to_string(image.mappings) +
             " mappings in the kernel-text region");
        return std::optional<Image>();
      }
      Result<std::optional<Mapping>> next = NextMapping(tables_, root.mode, root.table, at, limit);
      if (!next) {
        VMEMFS_TRY(Fatal(next.error()));
        if (!stopped_) Note(Where(root) + ": " + next.error().message());
        return std::optional<Image>();
      }
      if (!*next) break;
      const Mapping& m = **next;
      ++image.mappings;
      ++cost_.mappings_seen;
      // Clipped to the region: a hostile 1 GiB page may start below it.
      const uint64_t va = std::max(m.va, kImageRegionStart);
      const uint64_t end = std::min(m.va + m.size, kImageRegionEnd);
      if (image.mappings == 1) image.start = va;
      image.end = end;
      if (m.writable) AddWritable(image.writable, va, m.pa + (va - m.va), end - va);
      at = VirtualToOffset(root.mode, m.va) + m.size;
    }
    if (image.mappings == 0 || image.writable.empty()) {
      Note(Where(root) + (image.mappings == 0 ? ": nothing mapped" : ": no writable mapping") +
           " in the kernel-text region");
      return std::optional<Image>();
    }
    return std::optional<Image>(std::move(image));
  }

  // The writable data from the image's end down: the pointer is in .bss, near the end.
  Result<std::optional<KernelFinding>> ScanImage(const Root& root, const Image& image) {
    uint64_t scanned = 0;
    std::vector<std::byte> chunk;
    for (auto run = image.writable.rbegin(); run != image.writable.rend(); ++run) {
      for (uint64_t end = run->size; end > 0;) {
        const uint64_t size = std::min<uint64_t>(kScanChunk, end);
        const uint64_t begin = end - size;
        end = begin;
        if (scanned >= in_.limits.max_bytes_per_root) {
          Note(Where(root) + ": scanned " + std::to_string(scanned) + " bytes of image data");
          return std::optional<KernelFinding>();
        }
        scanned += size;
        chunk.resize(size);
        VMEMFS_ASSIGN_OR_RETURN(bool ok, ReadOrSkip(run->pa + begin, chunk));
        if (!ok) continue;
        VMEMFS_ASSIGN_OR_RETURN(std::optional<KernelFinding> found,
                                ScanChunk(root, image, chunk, run->va + begin));
        if (found || stopped_) return found;
      }
    }
    Note(Where(root) + ": no pointer to a valid note in " + std::to_string(scanned) +
         " bytes of image data");
    return std::optional<KernelFinding>();
  }

  Result<std::optional<KernelFinding>> ScanChunk(const Root& root, const Image& image,
                                                 std::span<const std::byte> chunk, uint64_t va) {
    for (size_t off = chunk.size() & ~size_t{7}; off >= 8;) {
      off -= 8;
      const uint64_t v = Load64(chunk.data() + off);
      if (!IsKernelPagePointer(root.mode, v) || !seen_pointers_.insert(v).second) continue;
      if (cost_.pointers_checked >= in_.limits.max_pointers) {
        Halt("checked " + std::to_string(cost_.pointers_checked) + " pointers");
        return std::optional<KernelFinding>();
      }
      ++cost_.pointers_checked;
      VMEMFS_ASSIGN_OR_RETURN(std::optional<KernelFinding> found,
                              CheckPointer(root, image, va + off, v));
      if (found || stopped_) return found;
    }
    return std::optional<KernelFinding>();
  }

  // Whether `target`, read at `slot`, points at an acceptable note.
  Result<std::optional<KernelFinding>> CheckPointer(const Root& root, const Image& image,
                                                    uint64_t slot, uint64_t target) {
    Result<Mapping> m = Translate(tables_, root.mode, root.table, target);
    if (!m) {
      VMEMFS_TRY(Fatal(m.error()));
      return std::optional<KernelFinding>();
    }
    const uint64_t pa = m->pa + (target - m->va);
    // The note is in the direct map, whose base (page_offset_base) KASLR aligns to 1 GiB: a
    // pointer into vmalloc space or the struct-page array almost never passes, and is not read.
    if ((target - pa) % kDirectMapAlign != 0) return std::optional<KernelFinding>();
    if (!seen_notes_.insert(pa).second) return std::optional<KernelFinding>();
    VMEMFS_ASSIGN_OR_RETURN(std::optional<VmcoreInfo> info, ReadNote(pa));
    if (!info) return std::optional<KernelFinding>();
    auto stext = info->Symbol("_stext");
    if (!stext || *stext < image.start || *stext >= image.end) {
      Note("note at " + Hex(pa) + ": SYMBOL(_stext) is not in the image " + Hex(image.start) + "-" +
           Hex(image.end));
      return std::optional<KernelFinding>();
    }
    if (in_.verify && !in_.verify(*info)) {
      Note("note at " + Hex(pa) + ": rejected by the caller's check");
      return std::optional<KernelFinding>();
    }
    KernelFinding f{info->text(), pa, slot, root.mode, root.table, image.start, image.end, "", {}};
    f.how = "pointer in kernel .data/.bss at " + Hex(slot) + " to the note at physical " + Hex(pa) +
            ", kernel image " + Hex(image.start) + "-" + Hex(image.end) + " found through " +
            Where(root);
    return std::optional<KernelFinding>(std::move(f));
  }

  // The note at `pa` if its header, name and text are valid; nullopt otherwise.
  Result<std::optional<VmcoreInfo>> ReadNote(uint64_t pa) {
    std::array<std::byte, kNoteHeader> head;
    VMEMFS_ASSIGN_OR_RETURN(bool ok, ReadOrSkip(pa, head));
    if (!ok) return std::optional<VmcoreInfo>();
    uint32_t word[3];
    std::memcpy(word, head.data(), sizeof word);
    if (word[0] != kNoteName.size() || word[1] == 0 || word[1] > VmcoreInfo::kMaxTextBytes ||
        word[2] != 0 || std::memcmp(head.data() + 12, kNoteName.data(), kNoteName.size()) != 0) {
      return std::optional<VmcoreInfo>();
    }
    if (cost_.notes_parsed >= in_.limits.max_notes) {
      Halt("parsed " + std::to_string(cost_.notes_parsed) + " notes");
      return std::optional<VmcoreInfo>();
    }
    ++cost_.notes_parsed;
    std::string text(word[1], '\0');
    VMEMFS_ASSIGN_OR_RETURN(ok,
                            ReadOrSkip(pa + kNoteHeader, std::as_writable_bytes(std::span(text))));
    if (!ok) return std::optional<VmcoreInfo>();
    Result<VmcoreInfo> info = VmcoreInfo::Parse(text);
    if (!info) return std::optional<VmcoreInfo>();
    return std::optional<VmcoreInfo>(std::move(*info));
  }

  // An i386 kernel, registers or not: the trampoline header below 1 MiB gives the image's
  // physical place (i386 has no trampoline page table, and its direct map covers all lowmem,
  // so page permissions do not single the image out). boot_gdt is in .data, which .bss (with
  // vmcoreinfo_note) follows, so the image is scanned from there on, physically.
  Result<std::optional<KernelFinding>> ThroughI386Trampoline() {
    VMEMFS_ASSIGN_OR_RETURN(std::vector<I386Header> headers, I386Headers());
    if (headers.empty()) Note("no i386 trampoline header below 1 MiB");
    for (const I386Header& h : headers) {
      seen_pointers_.clear();
      seen_notes_.clear();
      VMEMFS_ASSIGN_OR_RETURN(std::optional<KernelFinding> found, ScanI386Image(h));
      if (found || stopped_) return found;
    }
    return std::optional<KernelFinding>();
  }

  struct I386Header {
    uint64_t at;        // physical address of the header
    uint64_t start;     // physical startup_32_smp
    uint64_t gdt_base;  // physical boot_gdt
  };

  // Headers in the RAM below 1 MiB, at 4-byte alignment, whose two addresses are in RAM
  // above 1 MiB, in order and close enough to be one image's text.
  Result<std::vector<I386Header>> I386Headers() {
    std::vector<I386Header> headers;
    std::vector<std::byte> chunk;
    for (const drivers::PhysRange& r : in_.ranges) {
      if (r.start >= kLowMemoryEnd) break;
      const uint64_t begin = (r.start + 3) & ~uint64_t{3};
      const uint64_t end = std::min(r.end, kLowMemoryEnd);
      if (end <= begin || end - begin < kI386HeaderBytes) continue;
      chunk.resize(end - begin);
      VMEMFS_ASSIGN_OR_RETURN(bool ok, ReadOrSkip(begin, chunk));
      if (!ok) continue;
      for (size_t off = 0; off + kI386HeaderBytes <= chunk.size(); off += 4) {
        if (Load32(chunk.data() + off + 4) != kI386GdtPadAndLimit) continue;
        const uint64_t start = Load32(chunk.data() + off);
        const uint64_t gdt = Load32(chunk.data() + off + 8);
        if (start < kLowMemoryEnd || gdt <= start || gdt - start > kMaxI386TextBytes ||
            !InRam(in_.ranges, start, 1) || !InRam(in_.ranges, gdt, 8)) {
          continue;
        }
        if (headers.size() >= in_.limits.max_trampoline_tables) return headers;
        headers.push_back({begin + off, start, gdt});
      }
    }
    return headers;
  }

  // The image from boot_gdt's page on, for 4-byte page-aligned values that are a note's
  // direct-map address at one of the splits.
  Result<std::optional<KernelFinding>> ScanI386Image(const I386Header& h) {
    uint64_t scanned = 0;
    std::vector<std::byte> chunk;
    for (uint64_t pa = h.gdt_base & ~(kPage - 1);; pa += kScanChunk) {
      if (scanned >= in_.limits.max_bytes_per_root) {
        Note(I386Where(h) + ": scanned " + std::to_string(scanned) + " bytes of image data");
        return std::optional<KernelFinding>();
      }
      chunk.resize(kScanChunk);
      VMEMFS_ASSIGN_OR_RETURN(bool ok, ReadOrSkip(pa, chunk));
      if (!ok) break;  // the end of RAM, or of the budget
      scanned += chunk.size();
      for (size_t off = 0; off < chunk.size(); off += 4) {
        const uint64_t v = Load32(chunk.data() + off);
        if ((v & (kPage - 1)) != 0 || v < kI386LowestPageOffset ||
            !seen_pointers_.insert(v).second) {
          continue;
        }
        if (cost_.pointers_checked >= in_.limits.max_pointers) {
          Halt("checked " + std::to_string(cost_.pointers_checked) + " pointers");
          return std::optional<KernelFinding>();
        }
        ++cost_.pointers_checked;
        VMEMFS_ASSIGN_OR_RETURN(std::optional<KernelFinding> found,
                                CheckI386Pointer(h, pa + off, v));
        if (found || stopped_) return found;
      }
    }
    Note(I386Where(h) + ": no pointer to a valid note in " + std::to_string(scanned) +
         " bytes of image data");
    return std::optional<KernelFinding>();
  }

  // Whether `target`, read at physical `slot`, is an acceptable note's address at a split
  // that also puts SYMBOL(_stext) just below startup_32_smp.
  Result<std::optional<KernelFinding>> CheckI386Pointer(const I386Header& h, uint64_t slot,
                                                        uint64_t target) {
    for (uint64_t page_offset : kI386PageOffsets) {
      if (target < page_offset) continue;
      const uint64_t pa = target - page_offset;
      if (!InRam(in_.ranges, pa, kNoteHeader) || !seen_notes_.insert(pa).second) continue;
      VMEMFS_ASSIGN_OR_RETURN(std::optional<VmcoreInfo> info, ReadNote(pa));
      if (stopped_) break;
      if (!info) continue;
      auto stext = info->Symbol("_stext");
      if (!stext || *stext < page_offset || *stext - page_offset > h.start ||
          h.start - (*stext - page_offset) > kMaxI386HeadBytes) {
        Note("note at " + Hex(pa) + ": SYMBOL(_stext) is not just below startup_32_smp " +
             Hex(h.start) + " at PAGE_OFFSET " + Hex(page_offset));
        continue;
      }
      if (in_.verify && !in_.verify(*info)) {
        Note("note at " + Hex(pa) + ": rejected by the caller's check");
        continue;
      }
      const bool pae = info->Get("CONFIG_X86_PAE").value_or("") == "y";
      const uint64_t pgd = info->Symbol("swapper_pg_dir").value_or(page_offset) - page_offset;
      const uint64_t slot_va = slot + page_offset;
      KernelFinding f{info->text(), pa, slot_va, pae ? PagingMode::kPae : PagingMode::kLegacy32,
                      pgd, *stext, slot_va + 4, "", {}};
      f.how = "pointer in kernel .data/.bss at " + Hex(slot_va) + " to the note at physical " +
              Hex(pa) + ", i386 kernel image from " + Hex(*stext) + " found through " +
              I386Where(h) + ", PAGE_OFFSET " + Hex(page_offset);
      return std::optional<KernelFinding>(std::move(f));
    }
    return std::optional<KernelFinding>();
  }

  static std::string I386Where(const I386Header& h) {
    return "the i386 real-mode trampoline header at " + Hex(h.at) + " (startup_32_smp at physical " +
           Hex(h.start) + ", boot_gdt at " + Hex(h.gdt_base) + ")";
  }

  // Reads through the budget; false on a hole (kFault), an error when the search must end.
  Result<bool> ReadOrSkip(uint64_t pa, std::span<std::byte> out) {
    if (stopped_) return false;
    Status s = budget_.Read(pa, out);
    if (s.ok()) return true;
    VMEMFS_TRY(Fatal(s));
    return false;
  }

  // OK for errors that only end one item or root (a hole, a hostile table); the budget's own
  // refusal stops the search (kNotFound follows); a failing source is returned as is.
  Status Fatal(const Status& s) {
    if (budget_.exhausted()) {
      stopped_ = true;
      stop_reason_ = "read " + std::to_string(budget_.used()) + " bytes, the budget";
      return Status();
    }
    if (s.code() == ErrorCode::kFault || s.code() == ErrorCode::kBadData) return Status();
    return s;
  }

  // Ends the search at a bound.
  void Halt(std::string why) {
    stopped_ = true;
    stop_reason_ = std::move(why) + ", the limit";
  }

  static std::string Where(const Root& root) {
    std::string s = root.source;
    if (s.find("trampoline") == std::string::npos) s += " (root " + Hex(root.table) + ")";
    return s + ", " + std::string(PagingModeName(root.mode));
  }

  // Keeps the first few reasons for the error message.
  void Note(std::string reason) {
    if (reasons_.size() < 4) reasons_.push_back(std::move(reason));
  }

  Status NotFound() const {
    std::string msg = "no VMCOREINFO pointer found in the kernel image through " +
                      std::to_string(cost_.roots_walked) + " page-table roots";
    if (stopped_) msg += " (stopped: " + stop_reason_ + ")";
    msg += "; read " + std::to_string(budget_.used()) + " bytes, " +
           std::to_string(cost_.mappings_seen) + " mappings, " +
           std::to_string(cost_.pointers_checked) + " pointers, " +
           std::to_string(cost_.notes_parsed) + " notes";
    for (const std::string& r : reasons_) msg += "; " + r;
    return NotFoundError(msg);
  }

  const KernelFinderInput& in_;
  BudgetedMemory budget_;
  TableCache tables_;
  std::optional<PagingMode> register_mode_;
  std::vector<std::pair<PagingMode, std::string>> seen_roots_;
  std::unordered_set<uint64_t> seen_pointers_;
  std::unordered_set<uint64_t> seen_notes_;
  KernelFinderCost cost_;
  bool stopped_ = false;
  std::string stop_reason_;
  std::vector<std::string> reasons_;
};

}  // namespace

Result<KernelFinding> FindKernelVmcoreInfo(const KernelFinderInput& input) {
  return Search(input).Run();
}

}  // namespace vmemfs::vmi::linux_os
