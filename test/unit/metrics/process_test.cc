// /proc parsers against hand-written lines in the proc(5) layout, and the live collector.
#include "hdnsd/metrics/process.h"

#include <doctest/doctest.h>

#include <string>

using namespace hdnsd::metrics;

TEST_CASE("parseProcStat: fields counted after the last ')' of a comm with spaces") {
  // pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
  //   utime(14) stime(15) cutime cstime priority nice num_threads itrealvalue starttime(22) vsize ...
  const std::string line =
      "4242 (hd ns) d)) S 1 4242 4242 0 -1 4194560 500 0 0 0 "
      "150 25 0 0 20 0 1 0 123456 10485760 900 18446744073709551615\n";
  auto st = parseProcStat(line);
  REQUIRE(st.has_value());
  CHECK(st->utime_ticks == 150);
  CHECK(st->stime_ticks == 25);
  CHECK(st->starttime_ticks == 123456);
}

TEST_CASE("parseProcStat: truncated or non-numeric lines are rejected") {
  CHECK_FALSE(parseProcStat("4242 (x) S 1 2 3").has_value());
  CHECK_FALSE(parseProcStat("no paren at all").has_value());
  CHECK_FALSE(parseProcStat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc 2 0 0 20 0 1 0 5 0 0").has_value());
}

TEST_CASE("parseProcStatm and parseBootTime") {
  auto m = parseProcStatm("2560 731 512 40 0 300 0\n");
  REQUIRE(m.has_value());
  CHECK(m->size_pages == 2560);
  CHECK(m->resident_pages == 731);
  CHECK_FALSE(parseProcStatm("12\n").has_value());

  const char* procStat =
      "cpu  10 0 20 300 0 0 0 0 0 0\n"
      "intr 1 2 3\n"
      "ctxt 99\n"
      "btime 1700000000\n"
      "processes 77\n";
  CHECK(parseBootTime(procStat) == 1700000000u);
  CHECK_FALSE(parseBootTime("cpu 1 2 3\n").has_value());
}

TEST_CASE("addBuildInfo and addProcessCollector render the standard series") {
  Registry reg;
  addBuildInfo(reg, "1.2.3-test");
  addProcessCollector(reg);
  std::string text = reg.render();
  CHECK(text.find("# TYPE hdnsd_build_info gauge\nhdnsd_build_info{version=\"1.2.3-test\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total ") !=
        std::string::npos);
  CHECK(text.find("# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes ") !=
        std::string::npos);
  CHECK(text.find("# TYPE process_start_time_seconds gauge\nprocess_start_time_seconds ") !=
        std::string::npos);
  CHECK(text.find("process_open_fds ") != std::string::npos);
  // A running test binary has some resident memory: the value is not a placeholder 0.
  size_t p = text.find("\nprocess_resident_memory_bytes ");
  REQUIRE(p != std::string::npos);
  CHECK(std::stod(text.substr(p + 31)) > 1024 * 1024);
}
