#include "vmi/linux/vmas.h"

#include <cstring>
#include <unordered_map>

#include "vmi/linux/file_path.h"
#include "vmi/linux/maple_tree.h"

namespace vmemfs::vmi::linux_os {
namespace {

// sizeof(struct vm_area_struct) is ~200 bytes; anything this large is a corrupt layout.
constexpr uint64_t kMaxVmaSize = 4096;
// ANON_VMA_NAME_MAX_LEN is 80; vm_special_mapping names are short literals.
constexpr size_t kMaxNameLen = 256;

bool FieldFits(uint64_t offset, uint64_t size, size_t buffer) {
  return offset <= buffer && size <= buffer - offset;
}

// An unsigned long or pointer member: `width` bytes (the kernel's pointer size).
uint64_t Field(const std::vector<std::byte>& buf, uint64_t width, uint64_t offset) {
  uint64_t v = 0;
  std::memcpy(&v, buf.data() + offset, width);
  return v;
}

struct FileInfo {
  uint32_t major = 0;
  uint32_t minor = 0;
  uint64_t inode = 0;
  std::string path;
  Status status;
};

class VmaReader {
 public:
  VmaReader(KernelMemory& mem, const VmaLayout& l) : mem_(mem), l_(l) {}

  Status CheckLayout() const;
  // Reads the VMA at va and appends it; it must start at or after the previous one's end.
  Status Add(uint64_t va, std::vector<Vma>& out);
  uint64_t next() const { return next_; }

 private:
  const FileInfo& File(uint64_t file);
  FileInfo ReadFile(uint64_t file);
  void Names(const std::vector<std::byte>& buf, Vma& vma);

  KernelMemory& mem_;
  const VmaLayout& l_;
  uint64_t next_ = 0;  // vm_next of the last VMA read (list form)
  // Executables and libraries map the same file several times: one d_path per file.
  std::unordered_map<uint64_t, FileInfo> files_;
};

Status VmaReader::CheckLayout() const {
  if (l_.vma_size > kMaxVmaSize) return BadDataError("vm_area_struct too large");
  for (uint64_t off : {l_.vm_start, l_.vm_end, l_.vm_flags, l_.vm_pgoff, l_.vm_file, l_.vm_ops,
                       l_.vm_private_data, l_.vm_next, l_.vm_anon_name.value_or(0)}) {
    if (!FieldFits(off, mem_.pointer_size(), l_.vma_size)) {
      return BadDataError("VMA layout outside the struct");
    }
  }
  return Status();
}

Status VmaReader::Add(uint64_t va, std::vector<Vma>& out) {
  if (out.size() >= kMaxVmas) return BadDataError("too many VMAs");
  std::vector<std::byte> buf(l_.vma_size);
  VMEMFS_TRY(mem_.Read(va, buf));
  Vma vma;
  vma.start = Field(buf, mem_.pointer_size(), l_.vm_start);
  vma.end = Field(buf, mem_.pointer_size(), l_.vm_end);
  vma.flags = Field(buf, mem_.pointer_size(), l_.vm_flags);
  vma.pgoff = Field(buf, mem_.pointer_size(), l_.vm_pgoff);
  vma.file = Field(buf, mem_.pointer_size(), l_.vm_file);
  next_ = l_.index == VmaIndex::kLinkedList ? Field(buf, mem_.pointer_size(), l_.vm_next) : 0;
  if (vma.start >= vma.end) return BadDataError("VMA with start >= end");
  if (!out.empty() && vma.start < out.back().end) return BadDataError("VMAs out of order");
  if (vma.file != 0) {
    const FileInfo& f = File(vma.file);
    vma.dev_major = f.major;
    vma.dev_minor = f.minor;
    vma.inode = f.inode;
    vma.path = f.path;
    vma.file_status = f.status;
  } else {
    Names(buf, vma);
  }
  out.push_back(std::move(vma));
  return Status();
}

const FileInfo& VmaReader::File(uint64_t file) {
  auto it = files_.find(file);
  if (it == files_.end()) it = files_.emplace(file, ReadFile(file)).first;
  return it->second;
}

FileInfo VmaReader::ReadFile(uint64_t file) {
  FileInfo info;
  auto fail = [&info](const Status& s) {
    info.status = s.WithContext("vm_file");
    return std::move(info);
  };
  auto inode = mem_.Pointer(file + l_.file_inode);
  if (!inode) return fail(inode.error());
  auto sb = mem_.Pointer(*inode + l_.inode_sb);
  if (!sb) return fail(sb.error());
  auto dev = mem_.U32(*sb + l_.sb_dev);
  if (!dev) return fail(dev.error());
  auto ino = mem_.Unsigned(*inode + l_.inode_ino, l_.inode_ino_size);
  if (!ino) return fail(ino.error());
  info.major = *dev >> 20;  // MAJOR()/MINOR() of the kernel's internal dev_t
  info.minor = *dev & 0xfffff;
  info.inode = *ino;
  auto path = FilePath(mem_, l_.path, file);
  if (!path) return fail(path.error());
  info.path = std::move(*path);
  return info;
}

// Names for anonymous VMAs. Unreadable names are left unset: the line still prints.
void VmaReader::Names(const std::vector<std::byte>& buf, Vma& vma) {
  uint64_t ops = Field(buf, mem_.pointer_size(), l_.vm_ops);
  if (ops != 0) {
    auto fn = mem_.Pointer(ops + l_.vm_ops_name);
    bool special =
        fn && *fn != 0 && (l_.special_mapping_name_fn == 0 || *fn == l_.special_mapping_name_fn);
    if (special) {
      // special_mapping_name(): ((struct vm_special_mapping *)vm_private_data)->name
      uint64_t sm = Field(buf, mem_.pointer_size(), l_.vm_private_data);
      auto name_ptr = mem_.Pointer(sm + l_.special_mapping_name);
      if (name_ptr && *name_ptr != 0) {
        if (auto name = mem_.String(*name_ptr, kMaxNameLen)) vma.special_name = std::move(*name);
      }
    }
  }
  if (l_.vm_anon_name) {
    uint64_t anon = Field(buf, mem_.pointer_size(), *l_.vm_anon_name);
    if (anon != 0) {
      if (auto name = mem_.String(anon + l_.anon_vma_name_name, kMaxNameLen)) {
        vma.anon_name = std::move(*name);
      }
    }
  }
}

Result<std::vector<Vma>> FromMapleTree(KernelMemory& mem, const VmaLayout& l, uint64_t mm_va,
                                       VmaReader& reader) {
  VMEMFS_ASSIGN_OR_RETURN(uint64_t root, mem.Pointer(mm_va + l.mm_mt_root));
  MemoryReader read = [&mem](uint64_t va, std::span<std::byte> out) { return mem.Read(va, out); };
  MapleWalkLimits limits{.max_entries = kMaxVmas};
  VMEMFS_ASSIGN_OR_RETURN(std::vector<MapleEntry> entries,
                          MapleTreeEntries(l.maple, read, root, limits));
  std::vector<Vma> vmas;
  vmas.reserve(entries.size());
  for (const MapleEntry& e : entries) {
    // Skip XArray internal values (e.g. XA_ZERO_ENTRY): they are not VMAs.
    if ((e.value & 3) == 2) continue;
    VMEMFS_TRY(reader.Add(e.value, vmas));
    if (vmas.back().start != e.min || vmas.back().end - 1 != e.max) {
      return BadDataError("VMA range differs from its maple tree range");
    }
  }
  return vmas;
}

Result<std::vector<Vma>> FromList(KernelMemory& mem, const VmaLayout& l, uint64_t mm_va,
                                  VmaReader& reader) {
  VMEMFS_ASSIGN_OR_RETURN(uint64_t va, mem.Pointer(mm_va + l.mm_mmap));
  std::vector<Vma> vmas;
  // Bounded by kMaxVmas inside Add; a cycle breaks the strict address order there.
  while (va != 0) {
    VMEMFS_TRY(reader.Add(va, vmas));
    va = reader.next();
  }
  return vmas;
}

}  // namespace

Result<std::vector<Vma>> ListVmas(KernelMemory& mem, const VmaLayout& layout, uint64_t mm_va) {
  if (mm_va == 0) return InvalidArgumentError("ListVmas: NULL mm");
  VmaReader reader(mem, layout);
  VMEMFS_TRY(reader.CheckLayout());
  if (layout.index == VmaIndex::kMapleTree) return FromMapleTree(mem, layout, mm_va, reader);
  return FromList(mem, layout, mm_va, reader);
}

}  // namespace vmemfs::vmi::linux_os
