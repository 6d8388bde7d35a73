#include "drivers/snapshot_driver.h"

#include <cstring>
#include <utility>
#include <vector>

#include "drivers/elf_core.h"
#include "drivers/lime.h"
#include "drivers/mapped_file.h"
#include "drivers/phys_map.h"
#include "drivers/rom.h"
#include "drivers/snapshot_layout.h"

namespace vmemfs::drivers {
namespace {

// Guest RAM that is contiguous both in guest-physical space and in the file, with its file
// offset: the unit of lookup, so a read crossing two adjacent PT_LOADs written back to back is
// one memcpy.
using FileRun = PhysRun<uint64_t>;

// REQUIRES: `segments` satisfies the SnapshotLayout contract (sorted, disjoint, non-empty).
std::vector<FileRun> MergeSegments(std::span<const SnapshotSegment> segments) {
  std::vector<FileRun> runs;
  for (const SnapshotSegment& s : segments) {
    if (!runs.empty() && runs.back().end == s.phys_start &&
        runs.back().value + runs.back().size() == s.file_offset) {
      runs.back().end += s.size;
      continue;
    }
    runs.push_back({s.phys_start, s.phys_start + s.size, s.file_offset});
  }
  return runs;
}

// The ROM of a snapshot: an ELF core's firmware at the reset vector (rom.h); raw files and
// LiME (which holds only the guest's System RAM) mark none. Sets `kept` to the number of
// leading segments that are served.
std::vector<RomRange> SnapshotRom(const SnapshotLayout& layout, size_t& kept) {
  std::vector<MemoryPart> parts;
  uint64_t prev_end = 0;
  for (const SnapshotSegment& s : layout.segments) {
    const uint64_t end = s.phys_start + s.size;
    parts.push_back({s.phys_start, end,
                     layout.format.starts_with("elf")
                         ? ResetVectorFirmware(s.phys_start, end, prev_end)
                         : std::nullopt});
    prev_end = end;
  }
  return SplitRom(parts, kept);
}

// How ParseSnapshot recognised `format`.
std::string FormatHow(std::string_view format) {
  if (format == "raw") return "no ELF or LiME magic: the whole file is RAM from address 0";
  if (format == "lime") return "LiME magic";
  return "ELF magic";
}

class SnapshotDriver final : public Driver {
 public:
  SnapshotDriver(std::string path, MappedFile file, SnapshotLayout layout, PhysMap<uint64_t> runs,
                 std::vector<RomRange> rom, bool writable)
      : path_(std::move(path)),
        file_(std::move(file)),
        layout_(std::move(layout)),
        writable_(writable),
        runs_(std::move(runs)),
        rom_(std::move(rom)) {}

  std::string_view kind() const override { return "snapshot"; }
  std::span<const PhysRange> ranges() const override { return runs_.ranges(); }
  std::span<const RomRange> rom() const override { return rom_; }
  bool writable() const override { return writable_; }
  bool may_change() const override { return !file_.watch().stable(); }
  unsigned vcpu_count() const override { return static_cast<unsigned>(layout_.vcpus.size()); }
  std::optional<std::string> VmcoreInfo() const override { return layout_.vmcoreinfo; }

  // Copies, then checks: bytes another program cut from the file meanwhile read as zeros from
  // the mapping (file_watch.h), and are an error here.
  Status ReadPhys(uint64_t pa, std::span<std::byte> out) override {
    auto copy = [&](const FileRun& run, uint64_t at, uint64_t done, uint64_t n) {
      std::memcpy(out.data() + done, Memory(run, at), n);
      return Intact(run, at, n);
    };
    return runs_.ForEachPiece(pa, out.size(), copy);
  }

  Status WritePhys(uint64_t pa, std::span<const std::byte> in) override {
    if (!writable_) return UnsupportedError(path_ + ": snapshot opened read-only");
    auto copy = [&](const FileRun& run, uint64_t at, uint64_t done, uint64_t n) {
      std::memcpy(Memory(run, at), in.data() + done, n);
      return Intact(run, at, n);
    };
    return runs_.ForEachPiece(pa, in.size(), copy);
  }

  // Zero copy only while a lease promises that the file cannot change unannounced: a view of
  // the mapping could show zeros for lost bytes, and a splice would end early.
  std::span<const std::byte> Mapped(uint64_t pa) const override {
    const FileRun* run = file_.watch().stable() ? runs_.Find(pa) : nullptr;
    if (run == nullptr) return {};
    return {Memory(*run, pa), static_cast<size_t>(run->end - pa)};
  }

  std::optional<FileExtent> FileBacked(uint64_t pa) const override {
    const FileRun* run = file_.watch().stable() ? runs_.Find(pa) : nullptr;
    if (run == nullptr) return std::nullopt;
    return FileExtent{file_.fd(), run->value + (pa - run->start), run->end - pa};
  }

  // A batch's reader announces itself, so that a lease is given back only after its splices
  // are done; a file without a lease is looked at once per batch.
  bool BeginBatch() override {
    if (!file_.watch().BeginRead()) file_.watch().Recheck();
    return false;
  }
  void EndBatch() override { file_.watch().EndRead(); }

  Result<RegisterSet> Registers(unsigned vcpu) override {
    if (vcpu >= layout_.vcpus.size()) {
      return NotFoundError(path_ + ": no registers for vCPU " + std::to_string(vcpu));
    }
    return layout_.vcpus[vcpu];
  }

  std::vector<Fact> Describe() const override {
    std::vector<Fact> facts = {
        {"format", layout_.format, FormatHow(layout_.format)},
        {"file-size", std::to_string(file_.bytes().size())},
        {"segments", std::to_string(layout_.segments.size())},
    };
    for (Fact& fact : file_.Describe()) facts.push_back(std::move(fact));
    return facts;
  }

 private:
  std::byte* Memory(const FileRun& run, uint64_t pa) const {
    return file_.bytes().data() + run.value + (pa - run.start);
  }
  // On the path of every read: an intact file costs two loads and no copy of the Status.
  Status Intact(const FileRun& run, uint64_t pa, uint64_t n) const {
    Status s = file_.watch().Check(run.value + (pa - run.start), n);
    if (!s.ok()) [[unlikely]] s = s.WithContext(path_);
    return s;
  }

  const std::string path_;
  const MappedFile file_;
  const SnapshotLayout layout_;
  const bool writable_;
  const PhysMap<uint64_t> runs_;  // values: file offsets
  const std::vector<RomRange> rom_;
};

Result<SnapshotLayout> ParseSnapshot(std::span<const std::byte> bytes) {
  if (LooksLikeElf(bytes)) return ParseElfCore(bytes);
  if (LooksLikeLime(bytes)) return ParseLime(bytes);
  return RawLayout(bytes.size());
}

}  // namespace

Result<std::unique_ptr<Driver>> OpenSnapshot(const std::string& path, const OpenOptions& options) {
  VMEMFS_ASSIGN_OR_RETURN(MappedFile file,
                          MappedFile::Open(path, {.writable = options.writable, .lease = true}));
  Result<SnapshotLayout> layout = ParseSnapshot(file.bytes());
  if (!layout) return layout.error().WithContext(path);
  if (file.watch().intact() < file.bytes().size()) {
    return UnavailableError(path + ": the file shrank while it was being read");
  }
  size_t kept = 0;
  std::vector<RomRange> rom = SnapshotRom(*layout, kept);
  if (kept == 0) return BadDataError(path + ": no guest RAM in the file");
  Result<PhysMap<uint64_t>> runs =
      PhysMap<uint64_t>::Create(MergeSegments(std::span(layout->segments).first(kept)));
  if (!runs) return runs.error().WithContext(path);
  return std::unique_ptr<Driver>(new SnapshotDriver(path, std::move(file), *std::move(layout),
                                                    *std::move(runs), std::move(rom),
                                                    options.writable));
}

}  // namespace vmemfs::drivers
