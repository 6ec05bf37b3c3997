#include "hdnsd/ops/privileges.h"

#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace hdnsd::ops {
namespace {

std::string errnoText() { return std::strerror(errno); }

// capset(2) by hand (no libcap): version 3, two 32-bit words per set. The kept capabilities are
// also made inheritable and raised in the ambient set: --setup-interface's teardown runs `ip` and
// `iptables` (execve), and a non-root process passes capabilities to a plain binary only through
// the ambient set (capabilities(7)). Best effort there: a kernel without ambient sets (< 4.3)
// only makes that teardown fail, with a warning.
bool setCaps(uint64_t caps) {
  __user_cap_header_struct hdr{};
  hdr.version = _LINUX_CAPABILITY_VERSION_3;
  hdr.pid = 0;
  __user_cap_data_struct data[2]{};
  for (int i = 0; i < 2; ++i) {
    data[i].effective = data[i].permitted = uint32_t(caps >> (32 * i));
    data[i].inheritable = uint32_t(caps >> (32 * i));
  }
  if (syscall(SYS_capset, &hdr, data) != 0) return false;
  for (unsigned long cap = 0; cap < 64; ++cap)
    if (caps & (uint64_t(1) << cap)) (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
  return true;
}

}  // namespace

Result<Identity, std::string> lookupUser(const std::string& user) {
  std::vector<char> buf(16384);
  passwd pw{}, *found = nullptr;
  char* end = nullptr;
  unsigned long uid = std::strtoul(user.c_str(), &end, 10);
  bool numeric = !user.empty() && end && *end == '\0';
  int rc = numeric ? getpwuid_r(uid_t(uid), &pw, buf.data(), buf.size(), &found)
                   : getpwnam_r(user.c_str(), &pw, buf.data(), buf.size(), &found);
  if (rc != 0 || !found) {
    if (numeric) return Identity{uid_t(uid), gid_t(uid), user};  // a bare uid: its own gid
    return Unexpected{"--user " + user + ": no such user (create it, or pass a numeric uid)"};
  }
  return Identity{pw.pw_uid, pw.pw_gid, pw.pw_name};
}

Result<Identity, std::string> dropPrivileges(const std::string& user, uint64_t keepCaps) {
  if (geteuid() != 0) {
    Identity self{geteuid(), getegid(), {}};
    if (!user.empty()) {
      auto want = lookupUser(user);
      if (!want) return Unexpected{want.error()};
      if (want->uid != self.uid)
        return Unexpected{"--user " + user + ": only root can switch users (hdnsd runs as uid " +
                          std::to_string(self.uid) + "); drop --user or start as root"};
    }
    return self;
  }
  auto id = lookupUser(user.empty() ? "nobody" : user);
  if (!id) return id;
  if (id->uid == 0) return *id;  // --user root: stay
  if (keepCaps && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
    return Unexpected{"prctl(PR_SET_KEEPCAPS): " + errnoText()};
  // Supplementary groups: the user's own (initgroups), else just its primary group.
  if (initgroups(id->name.c_str(), id->gid) != 0) {
    gid_t g = id->gid;
    if (setgroups(1, &g) != 0) return Unexpected{"--user " + id->name + ": setgroups: " + errnoText()};
  }
  if (setgid(id->gid) != 0) return Unexpected{"--user " + id->name + ": setgid: " + errnoText()};
  if (setuid(id->uid) != 0) return Unexpected{"--user " + id->name + ": setuid: " + errnoText()};
  if (setuid(0) == 0) return Unexpected{"--user " + id->name + ": could regain root after dropping it; refusing to run"};
  if (keepCaps) {
    if (!setCaps(keepCaps)) return Unexpected{"capset: " + errnoText()};
    (void)prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
  }
  return *id;
}

}  // namespace hdnsd::ops
