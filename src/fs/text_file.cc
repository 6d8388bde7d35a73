#include "fs/text_file.h"

#include <unistd.h>

#include <algorithm>
#include <mutex>

namespace vmemfs::fs {
namespace {

using Text = std::shared_ptr<const std::string>;

// One open: the text as it was then (shared, so a newer text does not disturb it).
class TextHandle : public Handle {
 public:
  TextHandle(Text text, const WriteHandler& on_write, bool live)
      : text_(std::move(text)), on_write_(on_write) {
    keep_cache = !live;
    direct_io = live;  // the size may change between opens
  }

  Status Read(uint64_t offset, size_t size, ReadPlan& plan) override {
    if (offset >= text_->size()) return Status();
    plan.AddMemory(text_->data() + offset, std::min<uint64_t>(size, text_->size() - offset));
    return Status();
  }

  Result<uint64_t> Seek(uint64_t offset, int whence) override {
    if (offset >= text_->size()) return NotFoundError("past end of file");
    return whence == SEEK_DATA ? offset : text_->size();
  }

  Result<size_t> Write(uint64_t, std::span<const std::byte> data) override {
    if (!on_write_) return UnsupportedError("file is not writable");
    std::string_view text(reinterpret_cast<const char*>(data.data()), data.size());
    constexpr std::string_view kSpace = " \t\r\n";
    text.remove_prefix(std::min(text.find_first_not_of(kSpace), text.size()));
    text.remove_suffix(text.size() - (text.find_last_not_of(kSpace) + 1));
    VMEMFS_TRY(on_write_(text));
    return data.size();
  }

 private:
  const Text text_;
  const WriteHandler& on_write_;  // the file's, which outlives its handles
};

class TextFile : public File {
 public:
  TextFile(vmi::Guest* guest, TextGenerator generate, WriteHandler on_write)
      : guest_(guest), generate_(std::move(generate)), on_write_(std::move(on_write)) {}

  uint64_t Size() const override {
    auto text = TextNow(/*fresh=*/false);
    return text ? (*text)->size() : 0;
  }
  bool writable() const override { return static_cast<bool>(on_write_); }

  Result<std::unique_ptr<Handle>> Open() override {
    const bool live = guest_ != nullptr && guest_->may_change();
    VMEMFS_ASSIGN_OR_RETURN(Text text, TextNow(/*fresh=*/live));
    return std::unique_ptr<Handle>(std::make_unique<TextHandle>(std::move(text), on_write_, live));
  }

 private:
  // The text of the guest's current generation, made now if there is none or `fresh`.
  Result<Text> TextNow(bool fresh) const {
    const uint64_t generation = guest_ != nullptr ? guest_->generation() : 0;
    std::lock_guard lock(mu_);
    if (fresh || !made_ || generation != generation_) {
      Result<std::string> text = generate_();
      status_ = text.status();
      text_ = std::make_shared<const std::string>(text ? std::move(*text) : std::string());
      generation_ = generation;
      made_ = true;
    }
    if (!status_.ok()) return status_;
    return text_;
  }

  vmi::Guest* const guest_;
  const TextGenerator generate_;
  const WriteHandler on_write_;
  mutable std::mutex mu_;
  mutable bool made_ = false;      // GUARDED_BY(mu_)
  mutable uint64_t generation_ = 0;  // GUARDED_BY(mu_)
  mutable Text text_;              // GUARDED_BY(mu_)
  mutable Status status_;          // GUARDED_BY(mu_)
};

}  // namespace

std::unique_ptr<File> MakeTextFile(vmi::Guest* guest, TextGenerator generate,
                                   WriteHandler on_write) {
  return std::make_unique<TextFile>(guest, std::move(generate), std::move(on_write));
}

}  // namespace vmemfs::fs
