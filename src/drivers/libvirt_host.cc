#include "drivers/libvirt_host.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "drivers/libvirt_watcher.h"

namespace vmemfs::drivers {
namespace {

constexpr std::chrono::seconds kFirstBackoff{1};
// How often the thread looks at a connection that has not told us it closed: libvirt's close
// callback can be missed (it is delivered by the event loop, which may be busy elsewhere).
constexpr std::chrono::seconds kCheckEvery{1};

class LibvirtHost final : public SourceSet {
 public:
  explicit LibvirtHost(std::string uri) : uri_(std::move(uri)) {}

  ~LibvirtHost() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  Status ConnectNow() {
    VMEMFS_ASSIGN_OR_RETURN(auto watcher, OpenWatcher());
    Install(std::move(watcher));
    return Status::Ok();
  }

  void Start() { thread_ = std::thread([this] { Run(); }); }

  Result<std::vector<SourceEntry>> Current() override {
    std::shared_ptr<LibvirtWatcher> watcher;
    {
      std::lock_guard lock(mu_);
      watcher = watcher_;
    }
    // The round trip happens outside mu_: a slow host delays only this listing.
    if (watcher && watcher->connected()) {
      if (Result<std::vector<LibvirtDomainId>> running = watcher->Running()) {
        std::vector<SourceEntry> entries;
        for (const auto& d : *running) {
          entries.push_back({d.name, "libvirt:" + d.uuid + "?uri=" + uri_});
        }
        std::lock_guard lock(mu_);
        if (watcher_ == watcher) last_ = entries;
        return entries;
      }
      Wake();  // the call failed: let the thread look at the connection now
    }
    std::lock_guard lock(mu_);
    return last_;
  }

  uint64_t generation() const override { return generation_.load(); }
  bool connected() const override {
    std::lock_guard lock(mu_);
    return watcher_ && watcher_->connected();
  }
  bool ever_connected() const override { return generation_.load() > 0; }

 private:
  Result<std::unique_ptr<LibvirtWatcher>> OpenWatcher() {
    // The callback runs on libvirt's event loop thread: it only wakes ours.
    return LibvirtWatcher::Open(uri_, [this](LibvirtEvent event, const LibvirtDomainId&) {
      if (event == LibvirtEvent::kDisconnected) Wake();
    });
  }

  void Install(std::unique_ptr<LibvirtWatcher> watcher) {
    std::shared_ptr<LibvirtWatcher> old;
    {
      std::lock_guard lock(mu_);
      old = std::exchange(watcher_, std::move(watcher));
      generation_.fetch_add(1);
    }
    // `old` is closed here, outside mu_ (closing talks to libvirt).
  }

  void Wake() {
    {
      std::lock_guard lock(mu_);
      poke_ = true;
    }
    wake_.notify_all();
  }

  // Sleeps up to `d`, or until woken; false once the host is being destroyed.
  bool Sleep(std::chrono::steady_clock::duration d) {
    std::unique_lock lock(mu_);
    wake_.wait_for(lock, d, [this] { return stop_ || poke_; });
    poke_ = false;
    return !stop_;
  }

  bool Stopping() {
    std::lock_guard lock(mu_);
    return stop_;
  }

  // Watches the connection; when it is down, reconnects with a doubling backoff.
  void Run() {
    auto backoff = std::chrono::duration_cast<std::chrono::steady_clock::duration>(kFirstBackoff);
    bool first = generation_.load() == 0;  // no connection yet: try at once
    while (!Stopping()) {
      if (connected()) {
        backoff = kFirstBackoff;
        if (!Sleep(kCheckEvery)) return;
        continue;
      }
      if (!first && !SleepUninterrupted(backoff)) return;
      first = false;
      if (Result<std::unique_ptr<LibvirtWatcher>> watcher = OpenWatcher()) {
        Install(std::move(*watcher));
      } else {
        backoff = std::min<std::chrono::steady_clock::duration>(backoff * 2, kMaxBackoff);
      }
    }
  }

  // A backoff is not cut short by further news of the same loss; only by destruction.
  bool SleepUninterrupted(std::chrono::steady_clock::duration d) {
    const auto until = std::chrono::steady_clock::now() + d;
    std::unique_lock lock(mu_);
    wake_.wait_until(lock, until, [this] { return stop_; });
    poke_ = false;
    return !stop_;
  }

  const std::string uri_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  bool stop_ = false;                        // GUARDED_BY(mu_)
  bool poke_ = false;                        // GUARDED_BY(mu_)
  std::shared_ptr<LibvirtWatcher> watcher_;  // GUARDED_BY(mu_); null until the first connection
  std::vector<SourceEntry> last_;            // GUARDED_BY(mu_)
  std::atomic<uint64_t> generation_{0};      // connections made so far
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<SourceSet>> OpenLibvirtHost(const std::string& uri, bool must_connect) {
  auto host = std::make_unique<LibvirtHost>(uri);
  if (must_connect) VMEMFS_TRY(host->ConnectNow());
  host->Start();
  return std::unique_ptr<SourceSet>(std::move(host));
}

}  // namespace vmemfs::drivers
