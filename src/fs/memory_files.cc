#include "fs/memory_files.h"

#include <unistd.h>

#include <algorithm>

namespace vmemfs::fs {
namespace {

using vmi::Guest;

// Copies page by page, so a failure keeps the pages before it as a short read.
Status PlanCopy(Guest& guest, uint64_t pa, uint64_t length, ReadPlan& plan) {
  std::byte* buf = plan.Allocate(length);
  uint64_t done = 0;
  Status s;
  while (done < length && s.ok()) {
    uint64_t n = std::min<uint64_t>(length - done, 4096 - ((pa + done) & 4095));
    s = guest.ReadPhys(pa + done, std::span(buf + done, n));
    if (s.ok()) done += n;
  }
  if (done > 0) plan.AddMemory(buf, done);
  return s;
}

// Adds `length` bytes of RAM at `pa` to the plan: spliced from the driver's file, viewed in
// its mapping, or copied, in that order of preference.
Status PlanPhysical(Guest& guest, uint64_t pa, uint64_t length, ReadPlan& plan) {
  const drivers::Driver& driver = guest.driver();
  while (length > 0) {
    uint64_t n;
    if (auto extent = driver.FileBacked(pa); extent && extent->length > 0) {
      n = std::min(length, extent->length);
      plan.AddFile(extent->fd, extent->offset, n);
    } else if (auto mapped = driver.Mapped(pa); !mapped.empty() && !driver.live()) {
      n = std::min<uint64_t>(length, mapped.size());
      plan.AddMemory(mapped.data(), n);
    } else {
      return PlanCopy(guest, pa, length, plan);
    }
    pa += n;
    length -= n;
  }
  return Status();
}

// Later failures shorten the read; only a failure at the first byte is an error.
Status ShortReadOrError(const Status& s, const ReadPlan& plan) {
  return s.ok() || !plan.empty() ? Status() : s;
}

class MemoryFile;

class MemoryHandle : public Handle {
 public:
  explicit MemoryHandle(MemoryFile& file) : file_(file) {}
  Status Read(uint64_t offset, size_t size, ReadPlan& plan) override;
  Result<size_t> Write(uint64_t offset, std::span<const std::byte> data) override;
  Result<uint64_t> Seek(uint64_t offset, int whence) override;

 private:
  MemoryFile& file_;
};

// Behaviour shared by pmem and kmem; MemoryHandle forwards here.
class MemoryFile : public File {
 public:
  MemoryFile(Guest& guest, bool writable) : guest_(guest), writable_(writable) {}
  bool writable() const override { return writable_; }
  Result<std::unique_ptr<Handle>> Open() override {
    auto h = std::make_unique<MemoryHandle>(*this);
    // Snapshot bytes never change behind us; a live guest's do, so every read() of a live
    // file goes to the guest (direct I/O; private mmap still works, as yara needs).
    h->keep_cache = !guest_.driver().live();
    h->direct_io = guest_.driver().live();
    return std::unique_ptr<Handle>(std::move(h));
  }
  virtual Status Plan(uint64_t offset, uint64_t length, ReadPlan& plan) = 0;
  virtual Status Store(uint64_t offset, std::span<const std::byte> data) = 0;
  virtual Result<uint64_t> Seek(uint64_t offset, int whence) = 0;

 protected:
  Guest& guest_;
  const bool writable_;
};

Status MemoryHandle::Read(uint64_t offset, size_t size, ReadPlan& plan) {
  uint64_t end = file_.Size();
  if (offset >= end) return Status();
  uint64_t n = std::min<uint64_t>(size, end - offset);
  return ShortReadOrError(file_.Plan(offset, n, plan), plan);
}

Result<size_t> MemoryHandle::Write(uint64_t offset, std::span<const std::byte> data) {
  if (!file_.writable()) return UnsupportedError("mounted read-only (use --rw)");
  if (offset >= file_.Size() || data.size() > file_.Size() - offset) {
    return Status(ErrorCode::kOs, "write past end of memory", EFBIG);
  }
  VMEMFS_TRY(file_.Store(offset, data));
  return data.size();
}

Result<uint64_t> MemoryHandle::Seek(uint64_t offset, int whence) {
  return file_.Seek(offset, whence);
}

class PhysicalMemoryFile : public MemoryFile {
 public:
  using MemoryFile::MemoryFile;
  uint64_t Size() const override { return guest_.memory_size(); }

  Status Plan(uint64_t offset, uint64_t length, ReadPlan& plan) override {
    auto ranges = guest_.ranges();
    uint64_t pa = offset, end = offset + length;
    for (const auto& r : ranges) {
      if (r.end <= pa) continue;
      if (r.start >= end) break;
      plan.AddZeros(std::max(r.start, pa) - pa);  // gap before this range
      pa = std::max(r.start, pa);
      uint64_t n = std::min(end, r.end) - pa;
      VMEMFS_TRY(PlanPhysical(guest_, pa, n, plan));
      pa += n;
    }
    plan.AddZeros(end - pa);
    return Status();
  }

  Status Store(uint64_t offset, std::span<const std::byte> data) override {
    return guest_.WritePhys(offset, data);
  }

  Result<uint64_t> Seek(uint64_t offset, int whence) override {
    auto ranges = guest_.ranges();
    if (offset >= Size()) return NotFoundError("past end of file");
    for (size_t i = 0; i < ranges.size(); ++i) {
      if (ranges[i].end <= offset) continue;
      if (whence == SEEK_DATA) return std::max(offset, ranges[i].start);
      if (offset < ranges[i].start) return offset;  // in the gap before range i
      // Inside range i: the hole starts where contiguous RAM ends.
      uint64_t hole = ranges[i].end;
      while (i + 1 < ranges.size() && ranges[i + 1].start == hole) hole = ranges[++i].end;
      return hole;
    }
    if (whence == SEEK_DATA) return NotFoundError("no data after offset");
    return offset;
  }
};

// File offset o is the address-space offset base_ + o (see vmi::VirtualToOffset).
class VirtualMemoryFile : public MemoryFile {
 public:
  VirtualMemoryFile(Guest& guest, uint64_t dtb, bool writable, uint64_t base, uint64_t size)
      : MemoryFile(guest, writable),
        dtb_(dtb),
        mode_(*guest.paging_mode()),
        base_(base),
        size_(size) {}
  uint64_t Size() const override { return size_; }

  Status Plan(uint64_t offset, uint64_t length, ReadPlan& plan) override {
    // Each call resolves up to this many physically contiguous runs or holes.
    constexpr size_t kMaxRunsPerCall = 512;
    uint64_t done = 0;
    while (done < length) {
      VMEMFS_ASSIGN_OR_RETURN(auto runs, guest_.MapVirtualRange(dtb_, base_ + offset + done,
                                                                length - done, kMaxRunsPerCall));
      for (const vmi::VirtualRun& run : runs) {
        if (run.pa) {
          VMEMFS_TRY(PlanPhysical(guest_, *run.pa, run.length, plan));
        } else {
          plan.AddZeros(run.length);
        }
        done += run.length;
      }
    }
    return Status();
  }

  Status Store(uint64_t offset, std::span<const std::byte> data) override {
    return guest_.WriteVirtual(dtb_, vmi::OffsetToVirtual(mode_, base_ + offset), data);
  }

  Result<uint64_t> Seek(uint64_t offset, int whence) override {
    if (offset >= size_) return NotFoundError("past end of file");
    if (whence == SEEK_HOLE) {
      VMEMFS_ASSIGN_OR_RETURN(uint64_t hole, guest_.NextHoleOffset(dtb_, base_ + offset));
      return std::min(hole - base_, size_);
    }
    VMEMFS_ASSIGN_OR_RETURN(auto data, guest_.NextDataOffset(dtb_, base_ + offset));
    if (!data || *data - base_ >= size_) return NotFoundError("no data after offset");
    return *data - base_;
  }

 private:
  const uint64_t dtb_;
  const vmi::PagingMode mode_;
  const uint64_t base_;
  const uint64_t size_;
};

}  // namespace

std::unique_ptr<File> MakePhysicalMemoryFile(Guest& guest, bool writable) {
  return std::make_unique<PhysicalMemoryFile>(guest, writable && guest.driver().writable());
}

std::unique_ptr<File> MakeVirtualMemoryFile(Guest& guest, uint64_t dtb, bool writable) {
  return std::make_unique<VirtualMemoryFile>(guest, dtb, writable && guest.driver().writable(), 0,
                                             vmi::AddressSpaceSize(*guest.paging_mode()));
}

std::unique_ptr<File> MakeVirtualWindowFile(Guest& guest, uint64_t dtb, uint64_t va,
                                            uint64_t length, bool writable) {
  vmi::PagingMode mode = *guest.paging_mode();
  uint64_t base = vmi::VirtualToOffset(mode, va);
  length =
      std::min(length, vmi::AddressSpaceSize(mode) - std::min(base, vmi::AddressSpaceSize(mode)));
  return std::make_unique<VirtualMemoryFile>(guest, dtb, writable && guest.driver().writable(),
                                             base, length);
}

}  // namespace vmemfs::fs
