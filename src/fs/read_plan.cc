#include "fs/read_plan.h"

namespace vmemfs::fs {

void ReadPlan::AddZeros(size_t length) {
  if (length == 0) return;
  if (!pieces_.empty() && pieces_.back().kind == ReadPiece::Kind::kZeros) {
    pieces_.back().length += length;
  } else {
    pieces_.push_back({ReadPiece::Kind::kZeros, length});
  }
  total_ += length;
}

std::byte* ReadPlan::Allocate(size_t length) {
  owned_.push_back(std::make_unique_for_overwrite<std::byte[]>(length));
  return owned_.back().get();
}

}  // namespace vmemfs::fs
