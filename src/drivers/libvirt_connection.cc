#include "drivers/libvirt_connection.h"

#include <atomic>
#include <mutex>
#include <thread>

namespace vmemfs::drivers {
namespace {

// libvirt's default handler prints each error on stderr, which would mix with FUSE's output
// and the tests' output; every caller turns errors into a Status instead.
void IgnoreLibvirtError(void*, virErrorPtr) {}

void SilenceLibvirtOnce() {
  static std::once_flag once;
  std::call_once(once, [] { virSetErrorFunc(nullptr, IgnoreLibvirtError); });
}

// Process-wide loop state; guarded by mu except `stop`, which the loop thread reads.
struct Loop {
  std::mutex mu;
  int refs = 0;
  bool registered = false;
  std::thread thread;
  std::atomic<bool> stop{false};
};

Loop& TheLoop() {
  static Loop* loop = new Loop();  // never destroyed: libvirt may call back during exit
  return *loop;
}

void WakeUp(int timer, void*) { virEventRemoveTimeout(timer); }

void RunLoop(Loop* loop) {
  while (!loop->stop.load()) {
    if (virEventRunDefaultImpl() < 0) break;
  }
}

}  // namespace

bool LibvirtErrorMeansGone() {
  const int code = virGetLastErrorCode();
  return code == VIR_ERR_NO_DOMAIN || code == VIR_ERR_OPERATION_INVALID ||
         code == VIR_ERR_NO_CONNECT || code == VIR_ERR_INVALID_CONN ||
         code == VIR_ERR_SYSTEM_ERROR || code == VIR_ERR_RPC || code == VIR_ERR_INVALID_DOMAIN;
}

Status LibvirtError(std::string_view context) {
  const int code = virGetLastErrorCode();
  const char* text = virGetLastErrorMessage();
  std::string message = std::string(context) + ": " + (text != nullptr ? text : "libvirt error");
  if (code == VIR_ERR_NO_DOMAIN) return UnavailableError(std::move(message));
  if (code == VIR_ERR_NO_SUPPORT) return UnsupportedError(std::move(message));
  if (LibvirtErrorMeansGone()) return UnavailableError(std::move(message));
  return InvalidArgumentError(std::move(message));
}

Result<LibvirtConnection> OpenLibvirtConnection(const std::string& uri) {
  SilenceLibvirtOnce();
  virConnectPtr conn = virConnectOpen(uri.c_str());
  if (conn == nullptr) {
    const char* text = virGetLastErrorMessage();
    return UnavailableError("libvirt " + uri + ": " + (text != nullptr ? text : "cannot connect"));
  }
  // A dead libvirtd on the far side of a remote URI is noticed after ~15 s instead of never.
  // Fails harmlessly (no keepalives) if no event implementation is registered.
  virConnectSetKeepAlive(conn, 5, 3);
  return LibvirtConnection(conn);
}

LibvirtEventLoop::Ref::Ref() {
  SilenceLibvirtOnce();
  Loop& loop = TheLoop();
  std::lock_guard lock(loop.mu);
  if (!loop.registered) {
    virEventRegisterDefaultImpl();
    loop.registered = true;
  }
  if (loop.refs++ == 0) {
    loop.stop = false;
    loop.thread = std::thread(RunLoop, &loop);
  }
}

LibvirtEventLoop::Ref::~Ref() {
  Loop& loop = TheLoop();
  std::lock_guard lock(loop.mu);
  if (--loop.refs > 0) return;
  loop.stop = true;
  // A timer due now makes virEventRunDefaultImpl return, so the join below is prompt.
  virEventAddTimeout(0, WakeUp, nullptr, nullptr);
  loop.thread.join();
}

}  // namespace vmemfs::drivers
