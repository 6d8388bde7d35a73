#include "fs/fleet_hosts.h"

#include <map>

#include "fs/info_line.h"
#include "fs/vm_name.h"

namespace vmemfs::fs {

std::string HostOfLibvirtUri(std::string_view uri) {
  const size_t scheme_end = uri.find("://");
  if (scheme_end == std::string_view::npos) return std::string(uri);  // an alias: its own name
  std::string_view authority = uri.substr(scheme_end + 3);
  authority = authority.substr(0, authority.find_first_of("/?"));
  if (size_t at = authority.rfind('@'); at != std::string_view::npos) {
    authority = authority.substr(at + 1);
  }
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    const size_t close = authority.find(']');
    authority = authority.substr(1, close == std::string_view::npos ? close : close - 1);
  } else if (size_t colon = authority.find(':'); colon != std::string_view::npos) {
    authority = authority.substr(0, colon);
  }
  return authority.empty() ? "localhost" : std::string(authority);
}

Result<std::vector<FleetHost>> ParseFleetHosts(const std::vector<std::string>& args) {
  std::vector<FleetHost> hosts;
  std::map<std::string, std::string> taken;  // name -> the argument that took it
  for (const std::string& arg : args) {
    FleetHost host;
    const size_t eq = arg.find('=');
    if (eq != std::string::npos && eq > 0 && eq < arg.find(':')) {
      host = {arg.substr(0, eq), arg.substr(eq + 1)};
    } else {
      host = {HostOfLibvirtUri(arg), arg};
    }
    if (host.uri.empty()) return InvalidArgumentError("--libvirt " + OneLine(arg) + ": no URI");
    if (Status s = CheckVmName(host.name); !s.ok()) {
      return InvalidArgumentError("--libvirt " + OneLine(arg) + ": cannot name a directory '" +
                                  OneLine(host.name) + "' (" + s.message() +
                                  "); use --libvirt NAME=" + OneLine(arg));
    }
    if (auto [it, fresh] = taken.emplace(host.name, arg); !fresh) {
      return InvalidArgumentError("--libvirt " + OneLine(arg) + " and --libvirt " +
                                  OneLine(it->second) + " are both host '" + OneLine(host.name) +
                                  "'; name one: --libvirt NAME=" + OneLine(arg));
    }
    hosts.push_back(std::move(host));
  }
  return hosts;
}

}  // namespace vmemfs::fs
