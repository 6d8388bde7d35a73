#include "fs/memory_files.h"

#include <unistd.h>

#include <algorithm>
#include <mutex>

#include "vmi/mapped_memory.h"

namespace vmemfs::fs {
namespace {

using vmi::Guest;
using vmi::MemoryRun;

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

}  // namespace

Status AddMemoryRuns(Guest& guest, const std::vector<MemoryRun>& runs, ReadPlan& plan) {
  for (const MemoryRun& run : runs) {
    switch (run.kind) {
      case MemoryRun::Kind::kFile:
        plan.AddFile(run.fd, run.file_offset, run.length);
        break;
      case MemoryRun::Kind::kMapped:
        plan.AddMemory(run.data, run.length);
        break;
      case MemoryRun::Kind::kCopy:
        VMEMFS_TRY(PlanCopy(guest, run.pa, run.length, plan));
        break;
      case MemoryRun::Kind::kHole:
        plan.AddZeros(run.length);
        break;
    }
  }
  return Status();
}

namespace {

// Later failures shorten the read; only a failure at the first byte is an error. Bytes the
// source lost (a snapshot file cut short, a VM gone) fail the whole read: the kernel takes a
// short read of a cached file for its end, and would then hide the rest of it.
Status ShortReadOrError(const Status& s, const ReadPlan& plan) {
  if (s.code() == ErrorCode::kUnavailable) return s;
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

// Behaviour shared by every memory file; MemoryHandle forwards here.
class MemoryFile : public File {
 public:
  explicit MemoryFile(Guest& guest) : guest_(guest) {}
  bool writable() const override { return guest_.writable(); }
  Result<std::unique_ptr<Handle>> Open() override {
    auto h = std::make_unique<MemoryHandle>(*this);
    // Snapshot bytes never change behind us; a live guest's do.
    h->keep_cache = !guest_.live();
    h->direct_io = guest_.live();
    return std::unique_ptr<Handle>(std::move(h));
  }
  // Counted once per generation of the guest (once for a snapshot, at most once a second
  // for a running VM); a count that fails keeps the last one.
  uint64_t DataBytes() override {
    const uint64_t generation = guest_.generation();
    std::lock_guard lock(count_mu_);
    if (counted_ && counted_generation_ == generation) return count_;
    if (Result<uint64_t> n = CountDataBytes()) {
      count_ = *n;
      counted_ = true;
      counted_generation_ = generation;
    }
    return count_;
  }
  virtual Status Plan(uint64_t offset, uint64_t length, ReadPlan& plan) = 0;
  virtual Status Store(uint64_t offset, std::span<const std::byte> data) = 0;
  virtual Result<uint64_t> Seek(uint64_t offset, int whence) = 0;
  virtual Result<uint64_t> CountDataBytes() = 0;
  Guest& guest() { return guest_; }

 protected:
  Guest& guest_;

 private:
  std::mutex count_mu_;  // held while counting: concurrent stats wait for one count
  bool counted_ = false;
  uint64_t counted_generation_ = 0;
  uint64_t count_ = 0;
};

Status MemoryHandle::Read(uint64_t offset, size_t size, ReadPlan& plan) {
  uint64_t end = file_.Size();
  if (offset >= end) return Status();
  // Translations, copies and splices of one read together: the batch lives until the reply
  // is sent (a snapshot file must not shrink under a splice).
  auto batch = std::make_shared<const vmi::Guest::Batch>(file_.guest());
  plan.Keep(batch);
  uint64_t n = std::min<uint64_t>(size, end - offset);
  return ShortReadOrError(file_.Plan(offset, n, plan), plan);
}

Result<size_t> MemoryHandle::Write(uint64_t offset, std::span<const std::byte> data) {
  if (!file_.writable()) return UnsupportedError("mounted read-only (use --write-memory)");
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
    return AddMemoryRuns(guest_, guest_.PlanPhysical(offset, length), plan);
  }

  Status Store(uint64_t offset, std::span<const std::byte> data) override {
    return guest_.WritePhys(offset, data);
  }

  Result<uint64_t> CountDataBytes() override {
    return vmi::BytesInRanges(guest_.ranges(), 0, Size());
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
  VirtualMemoryFile(Guest& guest, vmi::PagingMode mode, SpaceSource space, uint64_t base,
                    uint64_t size)
      : MemoryFile(guest), mode_(mode), space_(std::move(space)), base_(base), size_(size) {}
  uint64_t Size() const override { return size_; }

  Status Plan(uint64_t offset, uint64_t length, ReadPlan& plan) override {
    // Each call resolves up to this many physically contiguous runs or holes.
    constexpr size_t kMaxRunsPerCall = 512;
    VMEMFS_ASSIGN_OR_RETURN(vmi::AddressSpace space, Space());
    uint64_t done = 0;
    while (done < length) {
      VMEMFS_ASSIGN_OR_RETURN(auto runs, guest_.PlanVirtual(space, base_ + offset + done,
                                                            length - done, kMaxRunsPerCall));
      // A copy that fails part-way returns its error after the bytes before it: the caller
      // makes that a short read.
      VMEMFS_TRY(AddMemoryRuns(guest_, runs, plan));
      for (const MemoryRun& run : runs) done += run.length;
    }
    return Status();
  }

  Status Store(uint64_t offset, std::span<const std::byte> data) override {
    VMEMFS_ASSIGN_OR_RETURN(vmi::AddressSpace space, Space());
    return guest_.WriteVirtual(space, vmi::OffsetToVirtual(mode_, base_ + offset), data);
  }

  // Mapped RAM pages, counted in one walk of the page tables (an estimate past its budget).
  Result<uint64_t> CountDataBytes() override {
    VMEMFS_ASSIGN_OR_RETURN(vmi::AddressSpace space, Space());
    VMEMFS_ASSIGN_OR_RETURN(vmi::MappedBytes counted,
                            vmi::CountMappedRam(guest_, space, base_, size_));
    return counted.bytes;
  }

  Result<uint64_t> Seek(uint64_t offset, int whence) override {
    if (offset >= size_) return NotFoundError("past end of file");
    VMEMFS_ASSIGN_OR_RETURN(vmi::AddressSpace space, Space());
    if (whence == SEEK_HOLE) {
      VMEMFS_ASSIGN_OR_RETURN(uint64_t hole, guest_.NextHoleOffset(space, base_ + offset));
      return std::min(hole - base_, size_);
    }
    VMEMFS_ASSIGN_OR_RETURN(auto data, guest_.NextDataOffset(space, base_ + offset));
    if (!data || *data - base_ >= size_) return NotFoundError("no data after offset");
    return *data - base_;
  }

 private:
  // The space now; one whose paging mode is not the file's (a new kernel) cannot be read
  // through this file.
  Result<vmi::AddressSpace> Space() {
    VMEMFS_ASSIGN_OR_RETURN(vmi::AddressSpace space, space_());
    if (space.mode != mode_) return UnavailableError("the guest changed its paging mode");
    return space;
  }

  const vmi::PagingMode mode_;
  const SpaceSource space_;
  const uint64_t base_;
  const uint64_t size_;
};

}  // namespace

std::unique_ptr<File> MakePhysicalMemoryFile(Guest& guest) {
  return std::make_unique<PhysicalMemoryFile>(guest);
}

std::unique_ptr<File> MakeVirtualMemoryFile(Guest& guest, vmi::PagingMode mode,
                                            SpaceSource space) {
  return std::make_unique<VirtualMemoryFile>(guest, mode, std::move(space), 0,
                                             vmi::AddressSpaceSize(mode));
}

std::unique_ptr<File> MakeVirtualWindowFile(Guest& guest, vmi::PagingMode mode,
                                            SpaceSource space, uint64_t va, uint64_t length) {
  const uint64_t size = vmi::AddressSpaceSize(mode);
  const uint64_t base = vmi::VirtualToOffset(mode, va);
  length = std::min(length, size - std::min(base, size));
  return std::make_unique<VirtualMemoryFile>(guest, mode, std::move(space), base, length);
}

}  // namespace vmemfs::fs
