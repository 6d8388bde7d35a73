// The watcher against a real libvirtd: a domain starting and stopping is seen both as events
// and in Running(). Skipped when libvirtd is not running.
#if VMEMFS_WITH_LIBVIRT
#include "drivers/libvirt_watcher.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "libvirt_test_util.h"

namespace vmemfs::drivers {
namespace {

using namespace std::chrono_literals;

struct Recorder {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<LibvirtEvent, std::string>> events;

  void Add(LibvirtEvent e, const LibvirtDomainId& id) {
    std::lock_guard lock(mu);
    events.emplace_back(e, id.name);
    cv.notify_all();
  }
  bool WaitFor(LibvirtEvent e, const std::string& name) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, 20s, [&] {
      return std::find(events.begin(), events.end(), std::pair(e, name)) != events.end();
    });
  }
};

bool Contains(const std::vector<LibvirtDomainId>& ids, const std::string& name) {
  return std::any_of(ids.begin(), ids.end(), [&](const auto& id) { return id.name == name; });
}

TEST(LibvirtWatcherTest, SeesADomainStartAndStop) {
  VMEMFS_REQUIRE_LIBVIRTD();
  const std::string name = "vmemfs-test-watch";
  testing::StopDomain(name);
  Recorder recorder;
  Result<std::unique_ptr<LibvirtWatcher>> watcher = LibvirtWatcher::Open(
      testing::kUri, [&](LibvirtEvent e, const LibvirtDomainId& id) { recorder.Add(e, id); });
  ASSERT_TRUE(watcher) << watcher.error().ToString();
  EXPECT_TRUE((*watcher)->connected());
  Result<std::vector<LibvirtDomainId>> before = (*watcher)->Running();
  ASSERT_TRUE(before) << before.error().ToString();
  EXPECT_FALSE(Contains(*before, name));

  ASSERT_TRUE(testing::StartDomain(name, /*wait=*/false));
  EXPECT_TRUE(recorder.WaitFor(LibvirtEvent::kStarted, name));
  Result<std::vector<LibvirtDomainId>> during = (*watcher)->Running();
  ASSERT_TRUE(during);
  EXPECT_TRUE(Contains(*during, name));
  for (const LibvirtDomainId& id : *during) EXPECT_EQ(id.uuid.size(), 36u) << id.name;

  testing::StopDomain(name);
  EXPECT_TRUE(recorder.WaitFor(LibvirtEvent::kStopped, name));
  Result<std::vector<LibvirtDomainId>> after = (*watcher)->Running();
  ASSERT_TRUE(after);
  EXPECT_FALSE(Contains(*after, name));
}

TEST(LibvirtWatcherTest, ManyWatchersComeAndGoCleanly) {
  VMEMFS_REQUIRE_LIBVIRTD();
  for (int i = 0; i < 5; ++i) {
    Result<std::unique_ptr<LibvirtWatcher>> a = LibvirtWatcher::Open(testing::kUri, nullptr);
    Result<std::unique_ptr<LibvirtWatcher>> b = LibvirtWatcher::Open(testing::kUri, nullptr);
    ASSERT_TRUE(a && b);
    EXPECT_TRUE((*a)->Running());
  }
}

TEST(LibvirtWatcherTest, UnreachableUriIsUnavailable) {
  Result<std::unique_ptr<LibvirtWatcher>> w =
      LibvirtWatcher::Open("qemu+unix:///system?socket=/nonexistent/sock", nullptr);
  ASSERT_FALSE(w);
  EXPECT_EQ(w.error().code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace vmemfs::drivers
#endif  // VMEMFS_WITH_LIBVIRT
