// A bounded little-endian cursor over untrusted bytes (snapshot headers, ELF notes, guest
// structures). Every Read* checks bounds first, leaves the position unchanged on error and
// reports the offset it failed at. Nothing here can read outside the span it was given.
#ifndef VMEMFS_BASE_BYTE_READER_H_
#define VMEMFS_BASE_BYTE_READER_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"

namespace vmemfs {

class ByteReader {
 public:
  explicit ByteReader(std::span<const std::byte> data, std::string_view what = "input")
      : data_(data), what_(what) {}

  size_t pos() const { return pos_; }
  size_t size() const { return data_.size(); }
  size_t remaining() const { return data_.size() - pos_; }

  Status Seek(size_t pos) {
    if (pos > data_.size()) return Truncated(pos, 0);
    pos_ = pos;
    return Status();
  }
  Status Skip(size_t n) {
    if (n > remaining()) return Truncated(pos_, n);
    pos_ += n;
    return Status();
  }

  template <typename T>
  Result<T> Read() {
    static_assert(std::is_trivially_copyable_v<T>);
    if (sizeof(T) > remaining()) return Truncated(pos_, sizeof(T));
    T v;
    std::memcpy(&v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // A view of the next n bytes (valid as long as the underlying span).
  Result<std::span<const std::byte>> ReadBytes(size_t n) {
    if (n > remaining()) return Truncated(pos_, n);
    auto s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
  }

  Result<std::string_view> ReadString(size_t n) {
    VMEMFS_ASSIGN_OR_RETURN(auto bytes, ReadBytes(n));
    return std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }

 private:
  Status Truncated(size_t at, size_t n) const {
    return BadDataError(std::string(what_) + ": truncated: need " + std::to_string(n) +
                        " bytes at offset " + std::to_string(at) + ", have " +
                        std::to_string(at <= data_.size() ? data_.size() - at : 0));
  }

  std::span<const std::byte> data_;
  size_t pos_ = 0;
  std::string_view what_;
};

}  // namespace vmemfs

#endif  // VMEMFS_BASE_BYTE_READER_H_
