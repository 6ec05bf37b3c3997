// hdnsd entry point: parse the command line, start the daemon on the default loop, run it
// until a signal stops it. Exit status: 0 after a clean stop, 2 for a bad flag or config
// value, 1 when startup fails (e.g. an address already in use).
#include <uv.h>

#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "hdnsd/config/config.h"
#include "hdnsd/server/daemon.h"
#include "hdnsd/util/log.h"

#ifndef HDNSD_VERSION
#define HDNSD_VERSION "dev"
#endif

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  auto cl = hdnsd::config::parseCommandLine(args);
  if (!cl) {
    std::fprintf(stderr, "hdnsd: %s\n", cl.error().c_str());
    return 2;
  }
  if (cl->action == hdnsd::config::Action::kHelp) {
    std::fputs(hdnsd::config::usage().c_str(), stdout);
    return 0;
  }
  if (cl->action == hdnsd::config::Action::kVersion) {
    std::printf("hdnsd %s\n", HDNSD_VERSION);
    return 0;
  }
  if (cl->action == hdnsd::config::Action::kCheckConfig) {
    // Valid (every check of a normal start's parsing passed): the effective configuration,
    // file and flags merged with the defaults, as JSON; exit 0. Invalid: the line above, exit 2.
    std::printf("%s\n", nlohmann::json::parse(hdnsd::config::toJson(cl->config)).dump(2).c_str());
    return 0;
  }
  hdnsd::log::setFormat(cl->config.logFormat);

  uv_loop_t* loop = uv_default_loop();
  int status = 0;
  {
    hdnsd::server::Daemon daemon(loop, args, cl->config);
    daemon.installSignalHandlers();
    if (auto r = daemon.start(); !r) {
      std::fprintf(stderr, "hdnsd: %s\n", r.error().c_str());
      daemon.shutdown();
      status = 1;
    } else {
      LOG_INFO("hdnsd %s started: %s", HDNSD_VERSION, hdnsd::config::toJson(cl->config).c_str());
    }
    uv_run(loop, UV_RUN_DEFAULT);
  }
  // Whatever the daemon's destructor closed still owes a close callback.
  uv_walk(loop, [](uv_handle_t* h, void*) { if (!uv_is_closing(h)) uv_close(h, nullptr); }, nullptr);
  uv_run(loop, UV_RUN_DEFAULT);
  if (uv_loop_close(loop) != 0) LOG_WARN("exit: the loop still had handles open");
  if (status == 0) LOG_INFO("hdnsd stopped");
  return status;
}
