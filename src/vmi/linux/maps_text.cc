#include "vmi/linux/maps_text.h"

#include <cinttypes>
#include <cstdio>

namespace vmemfs::vmi::linux_os {
namespace {

constexpr int kPageShift = 12;
// show_vma_header_prefix(): seq_setwidth(m, 25 + sizeof(void *) * 6 - 1); seq_pad() then pads
// to that width and adds one space, so names start at column 73 (49 on a 32-bit kernel).
size_t NameColumn(uint64_t pointer_size) { return 25 + pointer_size * 6 - 1; }

// mangle_path(..., "\n"): the characters in the escape set become a backslash and 3 octal
// digits.
std::string EscapeNewlines(const std::string& path) {
  std::string out;
  out.reserve(path.size());
  for (char c : path) {
    if (c == '\n') {
      out += "\\012";
    } else {
      out += c;
    }
  }
  return out;
}

// The name show_map_vma() prints for this VMA, or empty for none.
std::string Name(const Vma& vma, const MmInfo& mm) {
  if (vma.file != 0) return EscapeNewlines(vma.path);
  if (vma.special_name) return *vma.special_name;
  if (vma.start <= mm.brk && vma.end >= mm.start_brk) return "[heap]";
  if (vma.start <= mm.start_stack && vma.end >= mm.start_stack) return "[stack]";
  if (vma.anon_name) return "[anon:" + *vma.anon_name + "]";
  return {};
}

}  // namespace

std::string MapsLine(const Vma& vma, const MmInfo& mm, uint64_t pointer_size) {
  // Only file mappings show their offset, device and inode.
  uint64_t pgoff = vma.file != 0 ? vma.pgoff << kPageShift : 0;
  char header[160];
  int n = std::snprintf(header, sizeof(header),
                        "%08" PRIx64 "-%08" PRIx64 " %c%c%c%c %08" PRIx64 " %02x:%02x %" PRIu64 " ",
                        vma.start, vma.end, (vma.flags & kVmRead) ? 'r' : '-',
                        (vma.flags & kVmWrite) ? 'w' : '-', (vma.flags & kVmExec) ? 'x' : '-',
                        (vma.flags & kVmMayShare) ? 's' : 'p', pgoff, vma.dev_major, vma.dev_minor,
                        vma.file != 0 ? vma.inode : 0);
  std::string line(header, n > 0 ? static_cast<size_t>(n) : 0);
  std::string name = Name(vma, mm);
  if (!name.empty()) {
    const size_t column = NameColumn(pointer_size);
    if (line.size() < column) line.append(column - line.size(), ' ');
    line += ' ';
    line += name;
  }
  line += '\n';
  return line;
}

std::string MapsText(const std::vector<Vma>& vmas, const MmInfo& mm, uint64_t pointer_size) {
  std::string text;
  for (const Vma& vma : vmas) text += MapsLine(vma, mm, pointer_size);
  return text;
}

}  // namespace vmemfs::vmi::linux_os
