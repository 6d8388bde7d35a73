#include "drivers/libvirt_monitor.h"

#include <libvirt/libvirt-qemu.h>

#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <utility>

namespace vmemfs::drivers {
namespace {

// Far above any answer vmemfs asks for (info mtree -f, info registers -a of many vCPUs).
constexpr size_t kMaxReply = size_t{64} << 20;

// libvirt hands over a malloc'ed string.
struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};

}  // namespace

Result<std::string> QmpCommandText(std::string_view command, std::string_view arguments_json) {
  nlohmann::json request = {{"execute", std::string(command)}};
  if (!arguments_json.empty()) {
    nlohmann::json arguments = nlohmann::json::parse(arguments_json, nullptr, false);
    if (arguments.is_discarded() || !arguments.is_object()) {
      return InvalidArgumentError("QMP arguments are not a JSON object: " +
                                  std::string(arguments_json.substr(0, 80)));
    }
    request["arguments"] = std::move(arguments);
  }
  return request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<std::string> QmpReturnMember(std::string_view reply, std::string_view source) {
  if (reply.size() > kMaxReply) return BadDataError(std::string(source) + ": QMP reply too big");
  nlohmann::json parsed = nlohmann::json::parse(reply, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object()) {
    return BadDataError(std::string(source) + ": QMP reply is not a JSON object");
  }
  if (auto it = parsed.find("return"); it != parsed.end())
    return it->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  auto error = parsed.find("error");
  if (error == parsed.end() || !error->is_object()) {
    return BadDataError(std::string(source) + ": QMP reply has neither return nor error");
  }
  auto text = [&](const char* key) {
    auto it = error->find(key);
    return it != error->end() && it->is_string() ? it->get<std::string>() : std::string("?");
  };
  std::string message = std::string(source) + ": QMP error " + text("class") + ": " + text("desc");
  if (text("class") == "CommandNotFound") return UnsupportedError(std::move(message));
  return InvalidArgumentError(std::move(message));
}

Result<std::string> LibvirtMonitor::Run(const std::string& text, unsigned int flags,
                                        std::string_view what) {
  char* raw = nullptr;
  if (virDomainQemuMonitorCommand(domain_, text.c_str(), &raw, flags) < 0) {
    return LibvirtError(name_ + ": monitor command " + std::string(what));
  }
  std::unique_ptr<char, FreeDeleter> reply(raw);
  if (reply == nullptr) return BadDataError(name_ + ": empty monitor reply");
  const size_t length = strnlen(reply.get(), kMaxReply + 1);
  if (length > kMaxReply) return BadDataError(name_ + ": monitor reply too big");
  return std::string(reply.get(), length);
}

Result<std::string> LibvirtMonitor::Qmp(std::string_view command, std::string_view arguments_json) {
  VMEMFS_ASSIGN_OR_RETURN(std::string request, QmpCommandText(command, arguments_json));
  VMEMFS_ASSIGN_OR_RETURN(std::string reply, Run(request, 0, command));
  return QmpReturnMember(reply, name_);
}

Result<std::string> LibvirtMonitor::Hmp(std::string_view command_line) {
  if (command_line.find('\n') != std::string_view::npos) {
    return InvalidArgumentError(name_ + ": HMP command with a newline");
  }
  return Run(std::string(command_line), VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP, command_line);
}

}  // namespace vmemfs::drivers
