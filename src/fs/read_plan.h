// The answer to one read, as pieces the FUSE layer can send without copying: file extents
// (spliced by the kernel), views of memory that outlives the request, and zeros.
#ifndef VMEMFS_FS_READ_PLAN_H_
#define VMEMFS_FS_READ_PLAN_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace vmemfs::fs {

struct ReadPiece {
  enum class Kind { kFile, kMemory, kZeros };
  Kind kind;
  size_t length;
  int fd = -1;                 // kFile
  uint64_t file_offset = 0;    // kFile
  const void* data = nullptr;  // kMemory: valid until the reply is sent
};

class ReadPlan {
 public:
  void AddFile(int fd, uint64_t offset, size_t length) {
    pieces_.push_back({ReadPiece::Kind::kFile, length, fd, offset, nullptr});
    total_ += length;
  }
  void AddMemory(const void* data, size_t length) {
    pieces_.push_back({ReadPiece::Kind::kMemory, length, -1, 0, data});
    total_ += length;
  }
  void AddZeros(size_t length);
  // Memory the plan owns (for bytes that had to be copied), valid as long as the plan; it is
  // not part of the reply until passed to AddMemory.
  std::byte* Allocate(size_t length);
  // Keeps `object` alive until the plan is gone, i.e. until the reply was sent: what makes
  // its pieces valid (a batch during which a source file cannot change under a splice).
  void Keep(std::shared_ptr<const void> object) { kept_.push_back(std::move(object)); }

  const std::vector<ReadPiece>& pieces() const { return pieces_; }
  size_t total() const { return total_; }
  bool empty() const { return total_ == 0; }

 private:
  std::vector<ReadPiece> pieces_;
  std::vector<std::unique_ptr<std::byte[]>> owned_;
  std::vector<std::shared_ptr<const void>> kept_;
  size_t total_ = 0;
};

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_READ_PLAN_H_
