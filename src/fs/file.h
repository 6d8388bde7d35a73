// What a regular file in the mount is: an interface the FUSE layer calls, with one
// implementation per kind of content (memory_files.h, text_file.h).
#ifndef VMEMFS_FS_FILE_H_
#define VMEMFS_FS_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "base/status.h"
#include "fs/read_plan.h"

namespace vmemfs::fs {

// One open() of a file: FUSE's file handle. Called from many threads at once.
class Handle {
 public:
  virtual ~Handle() = default;
  // Plans the bytes [offset, offset + size) clipped to the file size. A short plan means the
  // bytes after it could not be read; an error means not even the first byte could.
  virtual Status Read(uint64_t offset, size_t size, ReadPlan& plan) = 0;
  // Returns the bytes written. Default: kUnsupported.
  virtual Result<size_t> Write(uint64_t offset, std::span<const std::byte> data);
  // SEEK_DATA or SEEK_HOLE; kNotFound means ENXIO (no data at or after offset).
  virtual Result<uint64_t> Seek(uint64_t offset, int whence) = 0;

  // Let the kernel keep this file's pages cached across opens (unchanging content only).
  bool keep_cache = true;
  // Bypass the kernel page cache (content whose size is not known in advance).
  bool direct_io = false;
};

class File {
 public:
  virtual ~File() = default;
  virtual uint64_t Size() const = 0;
  // The bytes that hold data, for st_blocks: what SEEK_DATA finds in a sparse file, so du,
  // ls -s, tar -S and cp --sparse see the holes. Default: all of them.
  virtual uint64_t DataBytes() { return Size(); }
  // Writable in this mount: memory only with --write-memory, command files always.
  virtual bool writable() const { return false; }
  virtual Result<std::unique_ptr<Handle>> Open() = 0;
};

}  // namespace vmemfs::fs

#endif  // VMEMFS_FS_FILE_H_
