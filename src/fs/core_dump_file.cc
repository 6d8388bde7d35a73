#include "fs/core_dump_file.h"

#include <unistd.h>

#include <vector>

#include "fs/memory_files.h"

namespace vmemfs::fs {
namespace {

using vmi::CorePiece;

// One open(): the header as of then. A tool reads it once and then follows its offsets, so
// the registers it sees are those of one moment.
class CoreDumpHandle : public Handle {
 public:
  CoreDumpHandle(vmi::Guest& guest, const vmi::CoreDump& core)
      : guest_(guest), core_(core), header_(core.Header(vmi::CoreRegisters(guest, core))) {
    keep_cache = !guest.live();
    direct_io = guest.live();
  }

  Status Read(uint64_t offset, size_t size, ReadPlan& plan) override {
    vmi::Guest::Batch batch(guest_);  // translations and copies of one read together
    Status s;
    for (const CorePiece& piece : core_.Plan(offset, size)) {
      switch (piece.kind) {
        case CorePiece::Kind::kHeader:
          plan.AddMemory(header_.data() + piece.at, piece.length);
          break;
        case CorePiece::Kind::kZeros:
          plan.AddZeros(piece.length);
          break;
        case CorePiece::Kind::kPhysical:
          s = AddMemoryRuns(guest_, guest_.PlanPhysical(piece.at, piece.length), plan);
          break;
      }
      if (!s.ok()) break;
    }
    // Later failures shorten the read; only a failure at the first byte is an error.
    return s.ok() || !plan.empty() ? Status() : s;
  }

  Result<uint64_t> Seek(uint64_t offset, int whence) override {
    if (offset >= core_.size()) return NotFoundError("past end of file");
    if (whence == SEEK_HOLE) return core_.NextHole(offset);
    auto data = core_.NextData(offset);
    if (!data) return NotFoundError("no data after offset");
    return *data;
  }

 private:
  vmi::Guest& guest_;
  const vmi::CoreDump& core_;  // the file's, which outlives its handles
  const std::vector<std::byte> header_;
};

class CoreDumpFile : public File {
 public:
  CoreDumpFile(vmi::Guest& guest, vmi::CoreDump core) : guest_(guest), core_(std::move(core)) {}
  uint64_t Size() const override { return core_.size(); }
  Result<std::unique_ptr<Handle>> Open() override {
    return std::unique_ptr<Handle>(std::make_unique<CoreDumpHandle>(guest_, core_));
  }

 private:
  vmi::Guest& guest_;
  const vmi::CoreDump core_;
};

}  // namespace

std::unique_ptr<File> MakeCoreDumpFile(vmi::Guest& guest, vmi::CoreDump core) {
  return std::make_unique<CoreDumpFile>(guest, std::move(core));
}

}  // namespace vmemfs::fs
