#include "drivers/libvirt_watcher.h"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <optional>
#include <utility>

#include "drivers/libvirt_connection.h"

namespace vmemfs::drivers {
namespace {

// More domains than any host runs; a bound on what a hostile libvirtd can make us allocate.
constexpr int kMaxDomains = 65536;

Result<LibvirtDomainId> IdOf(virDomainPtr domain) {
  const char* name = virDomainGetName(domain);
  char uuid[VIR_UUID_STRING_BUFLEN] = {};
  if (name == nullptr || virDomainGetUUIDString(domain, uuid) < 0) {
    return LibvirtError("libvirt domain");
  }
  return LibvirtDomainId{name, uuid};
}

// What the event callbacks reach through libvirt's opaque pointer. Shared with the watcher so
// a callback libvirt is still running while the watcher dies finds `callback` empty instead
// of freed memory; libvirt frees its reference (the freecb) when it is done with it.
struct Shared {
  std::mutex mu;
  LibvirtEventCallback callback;  // guarded by mu; empty once the watcher is gone
  std::atomic<bool> connected{true};

  void Deliver(LibvirtEvent event, const LibvirtDomainId& id) {
    std::lock_guard lock(mu);
    if (callback) callback(event, id);
  }
};

void FreeShared(void* opaque) { delete static_cast<std::shared_ptr<Shared>*>(opaque); }
Shared& SharedOf(void* opaque) { return **static_cast<std::shared_ptr<Shared>*>(opaque); }

int OnLifecycle(virConnectPtr, virDomainPtr domain, int event, int, void* opaque) {
  std::optional<LibvirtEvent> kind;
  if (event == VIR_DOMAIN_EVENT_STARTED) kind = LibvirtEvent::kStarted;
  if (event == VIR_DOMAIN_EVENT_STOPPED) kind = LibvirtEvent::kStopped;
  if (!kind) return 0;  // suspended, resumed, defined, ...: the domain still runs or never did
  Result<LibvirtDomainId> id = IdOf(domain);
  if (id) SharedOf(opaque).Deliver(*kind, *id);
  return 0;
}

void OnClose(virConnectPtr, int, void* opaque) {
  Shared& shared = SharedOf(opaque);
  if (shared.connected.exchange(false)) shared.Deliver(LibvirtEvent::kDisconnected, {});
}

class Watcher final : public LibvirtWatcher {
 public:
  Watcher(std::string uri, LibvirtEventCallback callback)
      : uri_(std::move(uri)), shared_(std::make_shared<Shared>()) {
    shared_->callback = std::move(callback);
  }

  ~Watcher() override {
    {
      std::lock_guard lock(shared_->mu);
      shared_->callback = nullptr;
    }
    if (conn_ == nullptr) return;
    if (event_id_ >= 0) virConnectDomainEventDeregisterAny(conn_.get(), event_id_);
    if (close_registered_) virConnectUnregisterCloseCallback(conn_.get(), OnClose);
    conn_.reset();  // before loop_ (a member declared earlier) stops the loop thread
  }

  Status Connect() {
    VMEMFS_ASSIGN_OR_RETURN(conn_, OpenLibvirtConnection(uri_));
    event_id_ = virConnectDomainEventRegisterAny(
        conn_.get(), nullptr, VIR_DOMAIN_EVENT_ID_LIFECYCLE, VIR_DOMAIN_EVENT_CALLBACK(OnLifecycle),
        new std::shared_ptr<Shared>(shared_), FreeShared);
    if (event_id_ < 0) return LibvirtError("libvirt " + uri_ + ": domain events");
    close_registered_ =
        virConnectRegisterCloseCallback(conn_.get(), OnClose, new std::shared_ptr<Shared>(shared_),
                                        FreeShared) == 0;
    return Status::Ok();
  }

  Result<std::vector<LibvirtDomainId>> Running() override {
    if (!connected()) return UnavailableError("libvirt " + uri_ + ": connection lost");
    virDomainPtr* list = nullptr;
    const int n = virConnectListAllDomains(conn_.get(), &list, VIR_CONNECT_LIST_DOMAINS_ACTIVE);
    if (n < 0) return LibvirtError("libvirt " + uri_ + ": list domains");
    std::vector<LibvirtDomainId> ids;
    for (int i = 0; i < n; ++i) {
      if (i < kMaxDomains) {
        if (Result<LibvirtDomainId> id = IdOf(list[i])) ids.push_back(std::move(*id));
      }
      virDomainFree(list[i]);
    }
    free(list);
    std::sort(ids.begin(), ids.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return ids;
  }

  bool connected() const override {
    return shared_->connected.load() && virConnectIsAlive(conn_.get()) == 1;
  }
  const std::string& uri() const override { return uri_; }

 private:
  const std::string uri_;
  LibvirtEventLoop::Ref loop_;  // declared before conn_: outlives the connection
  std::shared_ptr<Shared> shared_;
  LibvirtConnection conn_;
  int event_id_ = -1;
  bool close_registered_ = false;
};

}  // namespace

std::string_view LibvirtEventName(LibvirtEvent event) {
  switch (event) {
    case LibvirtEvent::kStarted:
      return "started";
    case LibvirtEvent::kStopped:
      return "stopped";
    case LibvirtEvent::kDisconnected:
      return "disconnected";
  }
  return "unknown";
}

Result<std::unique_ptr<LibvirtWatcher>> LibvirtWatcher::Open(const std::string& uri,
                                                             LibvirtEventCallback callback) {
  auto watcher = std::make_unique<Watcher>(uri, std::move(callback));
  VMEMFS_TRY(watcher->Connect());
  return std::unique_ptr<LibvirtWatcher>(std::move(watcher));
}

}  // namespace vmemfs::drivers
