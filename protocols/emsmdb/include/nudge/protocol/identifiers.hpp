#pragma once
// Interface identifiers, opnums and status codes of MS-OXCRPC / MS-RPCE, in one place.
#include <array>
#include <cstdint>
#include <string>

namespace nudge::protocol {

/// A DCE UUID in its wire form (fields little-endian as NDR sends them).
struct guid {
  std::array<std::uint8_t, 16> bytes{};
  friend bool operator==(const guid&, const guid&) = default;
  /// From the textual form "a4f1db00-ca47-1067-b31f-00dd010662da".
  static guid parse(const char* text);
  std::string to_string() const;
};

struct syntax_id {
  guid uuid;
  std::uint16_t major = 0;
  std::uint16_t minor = 0;
  friend bool operator==(const syntax_id&, const syntax_id&) = default;
};

syntax_id emsmdb_syntax();       // a4f1db00-ca47-1067-b31f-00dd010662da v0.81
syntax_id async_emsmdb_syntax();  // 5261574a-4572-206e-b268-6b199213b4e4 v0.1
syntax_id ndr_syntax();          // 8a885d04-1ceb-11c9-9fe8-08002b104860 v2.0

namespace opnum {
inline constexpr std::uint16_t do_disconnect = 1;               // EcDoDisconnect
inline constexpr std::uint16_t register_push_notification = 4;  // EcRRegisterPushNotification
inline constexpr std::uint16_t dummy_rpc = 6;                   // EcDummyRpc
inline constexpr std::uint16_t do_connect_ex = 10;              // EcDoConnectEx
inline constexpr std::uint16_t do_rpc_ext2 = 11;                // EcDoRpcExt2
inline constexpr std::uint16_t do_async_connect_ex = 14;        // EcDoAsyncConnectEx
inline constexpr std::uint16_t do_async_wait_ex = 0;            // AsyncEMSMDB EcDoAsyncWaitEx
}  // namespace opnum

/// Exchange error codes returned in the stubs' `long` return value.
namespace ec {
inline constexpr std::uint32_t success = 0;
inline constexpr std::uint32_t too_big = 0x80040305;        // ecTooBig: cbContext > 16
inline constexpr std::uint32_t invalid_param = 0x80070057;  // ecInvalidParam: bad SOCKADDR
inline constexpr std::uint32_t not_supported = 0x80040102;  // ecNotSupported
inline constexpr std::uint32_t rejected = 0x000007EE;       // ecRejected: second async wait, async disabled
inline constexpr std::uint32_t rpc_failed = 0x80040115;     // ecRpcFailed (MAPI_E_NETWORK_ERROR)
inline constexpr std::uint32_t unknown_user = 0x000003EB;   // ecUnknownUser
}  // namespace ec

/// DCE/RPC fault status codes (C706 appendix E; MS-RPCE 2.2.2.x).
namespace fault_status {
inline constexpr std::uint32_t op_rng_error = 0x1C010002;       // nca_op_rng_error: unknown opnum
inline constexpr std::uint32_t unk_if = 0x1C010003;             // nca_unk_if: unknown context
inline constexpr std::uint32_t proto_error = 0x1C01000B;        // nca_proto_error
inline constexpr std::uint32_t bad_stub_data = 0x000006F7;      // RPC_X_BAD_STUB_DATA
inline constexpr std::uint32_t context_mismatch = 0x1C00001A;   // nca_s_fault_context_mismatch: unknown or closed context handle
inline constexpr std::uint32_t remote_no_memory = 0x1C00001B;   // nca_s_fault_remote_no_memory: call too large to hold
}  // namespace fault_status

/// pulFlagsOut bit of EcDoAsyncWaitEx.
inline constexpr std::uint32_t notification_pending = 0x1;

}  // namespace nudge::protocol
