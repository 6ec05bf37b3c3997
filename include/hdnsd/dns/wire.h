// DNS wire constants (RFC 1035, 6891, 2782, 3596) and big-endian helpers over raw bytes.
// Bytes in, bytes out: nothing here knows about sockets or the loop.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hdnsd::dns {

inline constexpr uint16_t kTypeA = 1;
inline constexpr uint16_t kTypeNS = 2;
inline constexpr uint16_t kTypeCNAME = 5;
inline constexpr uint16_t kTypeSOA = 6;
inline constexpr uint16_t kTypePTR = 12;
inline constexpr uint16_t kTypeMX = 15;
inline constexpr uint16_t kTypeTXT = 16;
inline constexpr uint16_t kTypeAAAA = 28;
inline constexpr uint16_t kTypeSRV = 33;
inline constexpr uint16_t kTypeOPT = 41;
inline constexpr uint16_t kTypeIXFR = 251;
inline constexpr uint16_t kTypeAXFR = 252;
inline constexpr uint16_t kTypeANY = 255;

inline constexpr uint16_t kClassIN = 1;
inline constexpr uint16_t kClassCH = 3;
inline constexpr uint16_t kClassANY = 255;

inline constexpr uint8_t kOpcodeQuery = 0;

// 4-bit header RCODEs; BADVERS (16) only exists as an extended RCODE carried in OPT.
enum class Rcode : uint16_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
  kBadVers = 16,
};

inline constexpr uint16_t kFlagQR = 0x8000;
inline constexpr uint16_t kFlagAA = 0x0400;
inline constexpr uint16_t kFlagTC = 0x0200;
inline constexpr uint16_t kFlagRD = 0x0100;
inline constexpr uint16_t kFlagRA = 0x0080;
inline constexpr uint16_t kFlagAD = 0x0020;
inline constexpr uint16_t kFlagCD = 0x0010;
inline constexpr uint16_t kOpcodeMask = 0x7800;  // bits 11..14 of the flags word
inline constexpr int kOpcodeShift = 11;

inline constexpr size_t kHeaderSize = 12;
inline constexpr size_t kMaxUdpPlain = 512;   // RFC 1035 4.2.1, without EDNS
inline constexpr size_t kMaxMessage = 65535;  // the TCP length prefix is 16 bits
inline constexpr uint16_t kQuestionOffset = 12;
inline constexpr uint16_t kPointerToQuestion = 0xC000 | kQuestionOffset;

inline constexpr uint16_t getU16(const uint8_t* p) noexcept {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline constexpr uint32_t getU32(const uint8_t* p) noexcept {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline constexpr void putU16(uint8_t* p, uint16_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline constexpr void putU32(uint8_t* p, uint32_t v) noexcept {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Header field offsets.
inline constexpr size_t kOffId = 0, kOffFlags = 2, kOffQd = 4, kOffAn = 6, kOffNs = 8, kOffAr = 10;

}  // namespace hdnsd::dns
