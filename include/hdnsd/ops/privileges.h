// Dropping root after the sockets are bound. Started as root, hdnsd binds its DNS and HTTP
// sockets (port 53 needs root or CAP_NET_BIND_SERVICE), then becomes --user (default nobody):
// supplementary groups, gid, uid, in that order, and checks that root cannot be regained.
// Not root: nothing changes (a --user naming someone else is refused). Capabilities a later
// step still needs (CAP_NET_ADMIN to remove the --setup-interface link at exit) are kept in the
// permitted and effective sets with PR_SET_KEEPCAPS; every other capability is gone.
// Startup only, before the loop runs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

#include "hdnsd/util/result.h"

namespace hdnsd::ops {

struct Identity {
  uid_t uid = 0;
  gid_t gid = 0;
  std::string name;
};

// A user name or a numeric uid. Unknown: an error saying so.
Result<Identity, std::string> lookupUser(const std::string& user);

// `user` empty means "nobody" when running as root. keepCaps: a bit mask of CAP_* numbers
// (1u << CAP_NET_ADMIN) kept after the switch. Returns the identity now in effect.
Result<Identity, std::string> dropPrivileges(const std::string& user, uint64_t keepCaps = 0);

}  // namespace hdnsd::ops
