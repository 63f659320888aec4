-- nudge_emsmdb.lua: a Wireshark/tshark post-dissector for the parts of
-- MS-OXCRPC and MS-OXCNOTIF that nudge emulates and that Wireshark 4.0 does not
-- decode (or decodes with a pre-spec layout):
--
--   EMSMDB v0.81 (a4f1db00-ca47-1067-b31f-00dd010662da)
--     opnum  1  EcDoDisconnect               (CXH; response the zeroed CXH, return value)
--     opnum  4  EcRRegisterPushNotification  (spec layout: CXH, iRpc, rgbContext,
--               cbContext, grbitAdviseBits, rgbCallbackAddress = Windows SOCKADDR,
--               cbCallbackAddress; response CXH, hNotification, return value)
--     opnum  6  EcDummyRpc
--     opnum 10  EcDoConnectEx                (szUserDN ...; pcmsPollsMax, picxr ...)
--     opnum 11  EcDoRpcExt2                  (pulFlags, RPC_HEADER_EXT, ROP buffer with
--               RopNotify NewMail 0x2A / 0x8002 and RopPending 0x6E)
--     opnum 14  EcDoAsyncConnectEx
--   AsyncEMSMDB v0.1 (5261574a-4572-206e-b268-6b199213b4e4)
--     opnum  0  EcDoAsyncWaitEx              (pulFlagsOut NotificationPending)
--   UDP push datagrams whose payload equals a context registered earlier in the
--   capture, and nudge's own reachability cookie ("NUDGEVFY" | hNotification | context).
--
-- How it works: a post-dissector reads every connection-oriented DCE/RPC PDU
-- the DCE/RPC dissector found in a frame (the `dcerpc` protocol item covers the
-- whole PDU, in the reassembled buffer when the PDU spans TCP segments), learns
-- the bound interface of each presentation context from the binds it has seen
-- on that TCP stream, and pairs responses with requests by call_id per stream.
-- A capture must therefore contain the bind of a connection for its calls to
-- be decoded. Unauthenticated or integrity-only PDUs are decoded; encrypted
-- stubs (auth level privacy), multi-fragment calls, big-endian NDR and
-- compressed ROP buffers are reported, not decoded. XorMagic is undone.
--
-- Fields live under `nudge_emsmdb.` (tshark -G fields | grep nudge_emsmdb).
-- Usage: tshark -X lua_script:tools/wireshark/nudge_emsmdb.lua -r capture.pcap
-- (see tools/wireshark/README.md).

local nudge = Proto("nudge_emsmdb", "nudge EMSMDB/AsyncEMSMDB (MS-OXCRPC, MS-OXCNOTIF)")

local band, bor, bxor = bit.band, bit.bor, bit.bxor

-- ---- constants -------------------------------------------------------------------------

local EMSMDB, ASYNC = "EMSMDB", "AsyncEMSMDB"
-- Interface UUIDs as they appear on the wire (NDR little-endian fields), in hex.
local IFACE_BY_WIRE_UUID = {
  ["00dbf1a447ca6710b31f00dd010662da"] = { name = EMSMDB, major = 0, minor = 81 },  -- a4f1db00-ca47-1067-b31f-00dd010662da
  ["4a57615272456e20b2686b199213b4e4"] = { name = ASYNC, major = 0, minor = 1 },    -- 5261574a-4572-206e-b268-6b199213b4e4
}

local OPNAMES = {
  [EMSMDB] = {
    [0] = "EcDoConnect", [1] = "EcDoDisconnect", [2] = "EcDoRpc", [3] = "EcGetMoreRpc",
    [4] = "EcRRegisterPushNotification", [5] = "EcRUnregisterPushNotification", [6] = "EcDummyRpc",
    [7] = "EcRGetDCName", [8] = "EcRNetGetDCName", [9] = "EcDoRpcExt", [10] = "EcDoConnectEx",
    [11] = "EcDoRpcExt2", [12] = "Opnum12Reserved", [13] = "Opnum13Reserved", [14] = "EcDoAsyncConnectEx",
  },
  [ASYNC] = { [0] = "EcDoAsyncWaitEx" },
}

local RETURN_CODES = {
  [0x00000000] = "ecSuccess",
  [0x000003EB] = "ecUnknownUser",
  [0x000006BB] = "RPC_S_SERVER_TOO_BUSY",
  [0x000007EE] = "ecRejected",
  [0x00000970] = "ecNotEncrypted",
  [0x80004005] = "ecError (MAPI_E_CALL_FAILED)",
  [0x80040102] = "ecNotSupported",
  [0x80040115] = "ecRpcFailed (MAPI_E_NETWORK_ERROR)",
  [0x80040305] = "ecTooBig",
  [0x80070057] = "ecInvalidParam",
}

local FAULT_CODES = {
  [0x1C010002] = "nca_op_rng_error",
  [0x1C010003] = "nca_unk_if",
  [0x1C01000B] = "nca_proto_error",
  [0x1C00001A] = "nca_s_fault_context_mismatch",
  [0x000006F7] = "RPC_X_BAD_STUB_DATA",
  [0x00000005] = "nca_s_fault_access_denied",
}

local ROP_NAMES = {
  [0x01] = "RopRelease", [0x02] = "RopOpenFolder", [0x03] = "RopOpenMessage",
  [0x29] = "RopRegisterNotification", [0x2A] = "RopNotify", [0x6E] = "RopPending",
  [0xFE] = "RopLogon", [0xFF] = "RopBufferTooSmall",
}
local ROP_NOTIFY, ROP_PENDING = 0x2A, 0x6E

local FAMILIES = { [2] = "AF_INET", [23] = "AF_INET6 (Windows)" }

local HDR_COMPRESSED, HDR_XOR_MAGIC, HDR_LAST = 0x1, 0x2, 0x4

-- ---- fields ----------------------------------------------------------------------------

local request_frametype = frametype and frametype.REQUEST or nil

local f = {
  interface = ProtoField.string("nudge_emsmdb.interface", "Interface"),
  opnum = ProtoField.uint16("nudge_emsmdb.opnum", "Opnum"),
  opname = ProtoField.string("nudge_emsmdb.opname", "Operation"),
  type = ProtoField.string("nudge_emsmdb.type", "PDU", base.ASCII, "request, response or fault"),
  call_id = ProtoField.uint32("nudge_emsmdb.call_id", "Call id"),
  request_in = ProtoField.framenum("nudge_emsmdb.request_in", "Request in", base.NONE, request_frametype),
  stub_len = ProtoField.uint32("nudge_emsmdb.stub_len", "Stub length"),
  fault_status = ProtoField.uint32("nudge_emsmdb.fault_status", "Fault status", base.HEX, FAULT_CODES),
  rc = ProtoField.uint32("nudge_emsmdb.rc", "Return value", base.HEX, RETURN_CODES),
  cxh = ProtoField.bytes("nudge_emsmdb.cxh", "CXH (session context handle)"),
  acxh = ProtoField.bytes("nudge_emsmdb.acxh", "ACXH (async context handle)"),

  -- EcDoConnectEx
  user_dn = ProtoField.string("nudge_emsmdb.user_dn", "szUserDN"),
  connect_flags = ProtoField.uint32("nudge_emsmdb.connect_flags", "ulFlags", base.HEX),
  conmod = ProtoField.uint32("nudge_emsmdb.conmod", "ulConMod", base.HEX),
  limit = ProtoField.uint32("nudge_emsmdb.limit", "cbLimit"),
  cpid = ProtoField.uint32("nudge_emsmdb.cpid", "ulCpid"),
  lcid_string = ProtoField.uint32("nudge_emsmdb.lcid_string", "ulLcidString", base.HEX),
  lcid_sort = ProtoField.uint32("nudge_emsmdb.lcid_sort", "ulLcidSort", base.HEX),
  icxr_link = ProtoField.uint32("nudge_emsmdb.icxr_link", "ulIcxrLink", base.HEX),
  can_convert_cp = ProtoField.uint16("nudge_emsmdb.can_convert_cp", "usFCanConvertCodePages"),
  client_version = ProtoField.string("nudge_emsmdb.client_version", "rgwClientVersion"),
  polls_max_ms = ProtoField.uint32("nudge_emsmdb.polls_max_ms", "pcmsPollsMax (ms)"),
  retry_count = ProtoField.uint32("nudge_emsmdb.retry_count", "pcRetry"),
  retry_delay_ms = ProtoField.uint32("nudge_emsmdb.retry_delay_ms", "pcmsRetryDelay (ms)"),
  session_index = ProtoField.uint16("nudge_emsmdb.session_index", "picxr (session index)"),
  dn_prefix = ProtoField.string("nudge_emsmdb.dn_prefix", "szDNPrefix"),
  display_name = ProtoField.string("nudge_emsmdb.display_name", "szDisplayName"),
  server_version = ProtoField.string("nudge_emsmdb.server_version", "rgwServerVersion"),
  best_version = ProtoField.string("nudge_emsmdb.best_version", "rgwBestVersion"),
  timestamp = ProtoField.uint32("nudge_emsmdb.timestamp", "pulTimeStamp", base.HEX),

  -- aux buffers and sizes (EcDoConnectEx, EcDoRpcExt2)
  aux_in_len = ProtoField.uint32("nudge_emsmdb.aux_in_len", "rgbAuxIn length"),
  cb_aux_in = ProtoField.uint32("nudge_emsmdb.cb_aux_in", "cbAuxIn"),
  aux_out_len = ProtoField.uint32("nudge_emsmdb.aux_out_len", "rgbAuxOut length"),
  cb_aux_out = ProtoField.uint32("nudge_emsmdb.cb_aux_out", "pcbAuxOut"),

  -- EcRRegisterPushNotification
  irpc = ProtoField.uint32("nudge_emsmdb.irpc", "iRpc"),
  context = ProtoField.bytes("nudge_emsmdb.context", "rgbContext"),
  cb_context = ProtoField.uint16("nudge_emsmdb.cb_context", "cbContext"),
  advise_bits = ProtoField.uint32("nudge_emsmdb.advise_bits", "grbitAdviseBits", base.HEX),
  callback = ProtoField.string("nudge_emsmdb.callback", "rgbCallbackAddress"),
  callback_family = ProtoField.uint16("nudge_emsmdb.callback_family", "Family", base.DEC, FAMILIES),
  callback_port = ProtoField.uint16("nudge_emsmdb.callback_port", "Port"),
  callback_ipv4 = ProtoField.ipv4("nudge_emsmdb.callback_ipv4", "IPv4 address"),
  callback_ipv6 = ProtoField.ipv6("nudge_emsmdb.callback_ipv6", "IPv6 address"),
  cb_callback = ProtoField.uint16("nudge_emsmdb.cb_callback", "cbCallbackAddress"),
  notification_handle = ProtoField.uint32("nudge_emsmdb.notification_handle", "hNotification", base.HEX),

  -- EcDoRpcExt2
  pul_flags = ProtoField.uint32("nudge_emsmdb.pul_flags", "pulFlags", base.HEX),
  pul_no_compression = ProtoField.bool("nudge_emsmdb.pul_flags.no_compression", "NoCompression", 32, nil, 0x1),
  pul_no_xor_magic = ProtoField.bool("nudge_emsmdb.pul_flags.no_xor_magic", "NoXorMagic", 32, nil, 0x2),
  pul_chain = ProtoField.bool("nudge_emsmdb.pul_flags.chain", "Chain", 32, nil, 0x4),
  rgb_in = ProtoField.none("nudge_emsmdb.rgb_in", "rgbIn"),
  rgb_out = ProtoField.none("nudge_emsmdb.rgb_out", "rgbOut"),
  rgb_len = ProtoField.uint32("nudge_emsmdb.rgb_len", "Buffer length"),
  cb_in = ProtoField.uint32("nudge_emsmdb.cb_in", "cbIn"),
  max_out = ProtoField.uint32("nudge_emsmdb.max_out", "pcbOut (in: maximum)", base.HEX),
  cb_out = ProtoField.uint32("nudge_emsmdb.cb_out", "pcbOut (out)"),
  max_aux_out = ProtoField.uint32("nudge_emsmdb.max_aux_out", "pcbAuxOut (in: maximum)", base.HEX),
  trans_time = ProtoField.uint32("nudge_emsmdb.trans_time", "pulTransTime (ms)"),
  hdr = ProtoField.none("nudge_emsmdb.hdr", "RPC_HEADER_EXT"),
  hdr_version = ProtoField.uint16("nudge_emsmdb.hdr.version", "Version"),
  hdr_flags = ProtoField.uint16("nudge_emsmdb.hdr.flags", "Flags", base.HEX),
  hdr_compressed = ProtoField.bool("nudge_emsmdb.hdr.flags.compressed", "Compressed", 16, nil, HDR_COMPRESSED),
  hdr_xor_magic = ProtoField.bool("nudge_emsmdb.hdr.flags.xor_magic", "XorMagic", 16, nil, HDR_XOR_MAGIC),
  hdr_last = ProtoField.bool("nudge_emsmdb.hdr.flags.last", "Last", 16, nil, HDR_LAST),
  hdr_size = ProtoField.uint16("nudge_emsmdb.hdr.size", "Size"),
  hdr_size_actual = ProtoField.uint16("nudge_emsmdb.hdr.size_actual", "SizeActual"),
  rop_size = ProtoField.uint16("nudge_emsmdb.rop_size", "RopSize"),
  empty_poll = ProtoField.bool("nudge_emsmdb.empty_poll", "Empty ROP list (a poll)"),
  rop = ProtoField.uint8("nudge_emsmdb.rop", "RopId", base.HEX, ROP_NAMES),
  rop_list_len = ProtoField.uint32("nudge_emsmdb.rop_list_len", "ROP list length"),
  server_handle = ProtoField.uint32("nudge_emsmdb.server_handle", "Server object handle", base.HEX),
  notify_handle = ProtoField.uint32("nudge_emsmdb.notify_handle", "NotificationHandle", base.HEX),
  logon_id = ProtoField.uint8("nudge_emsmdb.logon_id", "LogonId"),
  notification_type = ProtoField.uint16("nudge_emsmdb.notification_type", "NotificationType", base.HEX),
  nt_new_mail = ProtoField.bool("nudge_emsmdb.notification_type.new_mail", "NewMail", 16, nil, 0x0002),
  nt_table_modified = ProtoField.bool("nudge_emsmdb.notification_type.table_modified", "TableModified", 16, nil,
                                      0x0100),
  nt_m = ProtoField.bool("nudge_emsmdb.notification_type.m", "M (message)", 16, nil, 0x8000),
  event_fid = ProtoField.uint64("nudge_emsmdb.event_fid", "FID", base.HEX),
  event_fid_replica = ProtoField.uint16("nudge_emsmdb.event_fid_replica", "FID replica id"),
  event_fid_counter = ProtoField.uint64("nudge_emsmdb.event_fid_counter", "FID global counter", base.DEC),
  event_mid = ProtoField.uint64("nudge_emsmdb.event_mid", "MID", base.HEX),
  event_mid_replica = ProtoField.uint16("nudge_emsmdb.event_mid_replica", "MID replica id"),
  event_mid_counter = ProtoField.uint64("nudge_emsmdb.event_mid_counter", "MID global counter", base.DEC),
  message_flags = ProtoField.uint32("nudge_emsmdb.message_flags", "MessageFlags", base.HEX),
  unicode_flag = ProtoField.uint8("nudge_emsmdb.unicode_flag", "UnicodeFlag"),
  message_class = ProtoField.string("nudge_emsmdb.message_class", "MessageClass"),
  pending_session = ProtoField.uint16("nudge_emsmdb.pending_session", "RopPending SessionIndex"),
  notify_count = ProtoField.uint32("nudge_emsmdb.notify_count", "RopNotify count"),

  -- AsyncEMSMDB
  async_flags_in = ProtoField.uint32("nudge_emsmdb.async_flags_in", "ulFlagsIn", base.HEX),
  async_flags = ProtoField.uint32("nudge_emsmdb.async_flags", "pulFlagsOut", base.HEX),
  async_pending = ProtoField.bool("nudge_emsmdb.async_flags.notification_pending", "NotificationPending", 32, nil,
                                  0x1),

  -- UDP
  ping_context = ProtoField.bytes("nudge_emsmdb.ping_context", "Push datagram: registered context"),
  ping_registered_in = ProtoField.framenum("nudge_emsmdb.ping_registered_in", "Registered in"),
  ping_callback = ProtoField.string("nudge_emsmdb.ping_callback", "Registered callback address"),
  cookie_handle = ProtoField.uint32("nudge_emsmdb.cookie_handle", "Reachability cookie: hNotification", base.HEX),
  cookie_context = ProtoField.bytes("nudge_emsmdb.cookie_context", "Reachability cookie: context"),
}
local field_list = {}
for _, v in pairs(f) do field_list[#field_list + 1] = v end
nudge.fields = field_list

local ef = {
  malformed = ProtoExpert.new("nudge_emsmdb.malformed", "Malformed stub", expert.group.MALFORMED, expert.severity.ERROR),
  rc = ProtoExpert.new("nudge_emsmdb.rc.failure", "The call failed", expert.group.RESPONSE_CODE, expert.severity.NOTE),
  undecoded = ProtoExpert.new("nudge_emsmdb.undecoded", "Not decoded", expert.group.UNDECODED, expert.severity.NOTE),
  pending = ProtoExpert.new("nudge_emsmdb.pending", "More notifications are queued", expert.group.SEQUENCE,
                            expert.severity.CHAT),
  odd = ProtoExpert.new("nudge_emsmdb.nonconformant", "Not as MS-OXCRPC/MS-OXCROPS specify", expert.group.PROTOCOL,
                        expert.severity.WARN),
}
nudge.experts = { ef.malformed, ef.rc, ef.undecoded, ef.pending, ef.odd }

-- ---- fields read from other dissectors ---------------------------------------------------

local fx_dcerpc = Field.new("dcerpc")
local fx_dcerpc_opnum = Field.new("dcerpc.opnum")
local fx_tcp_stream = Field.new("tcp.stream")
local fx_udp = Field.new("udp")
local fx_udp_length = Field.new("udp.length")
local fx_ip_dst = Field.new("ip.dst")
local fx_udp_dstport = Field.new("udp.dstport")

-- ---- state across frames -----------------------------------------------------------------
-- Every table is a history: key -> list of {frame, value}, so random access in
-- the GUI finds what was true at that frame.

local state
local function reset_state()
  state = {
    binds = {},  -- "stream/ctx_id" -> interface name
    calls = {},  -- "stream/call_id" -> opnum (requests)
    regs = {},   -- context hex -> callback address string (registrations)
  }
end
reset_state()

function nudge.init()
  reset_state()
end

local function hist_put(tbl, key, frame, value)
  local h = tbl[key]
  if not h then
    h = {}
    tbl[key] = h
  end
  for _, e in ipairs(h) do
    if e.frame == frame then
      e.value = value
      return
    end
  end
  h[#h + 1] = { frame = frame, value = value }
  table.sort(h, function(a, b) return a.frame < b.frame end)
end

-- The latest entry before `frame` (or at it, unless strictly_before).
local function hist_get(tbl, key, frame, strictly_before)
  local h = tbl[key]
  if not h then return nil end
  local best
  for _, e in ipairs(h) do
    if e.frame < frame or (e.frame == frame and not strictly_before) then best = e end
  end
  if best then return best.value, best.frame end
  return nil
end

-- ---- a bounds-checked little-endian reader over a TvbRange ----------------------------------

local TRUNCATED = {}  -- raised (as a unique value) when a read runs past the data

local Reader = {}
Reader.__index = Reader

local function reader(range)
  return setmetatable({ r = range, pos = 0, len = range and range:len() or 0 }, Reader)
end

function Reader:remaining() return self.len - self.pos end
function Reader:need(n)
  if n < 0 or self.pos + n > self.len then error(TRUNCATED, 0) end
end
function Reader:align(n)
  local m = self.pos % n
  if m ~= 0 then self.pos = self.pos + (n - m) end
end
-- A sub-range of n bytes (nil for n == 0), advancing.
function Reader:take(n)
  self:need(n)
  if n == 0 then return nil end
  local sub = self.r:range(self.pos, n)
  self.pos = self.pos + n
  return sub
end
function Reader:u8() local r = self:take(1); return r:le_uint(), r end
function Reader:u16() local r = self:take(2); return r:le_uint(), r end
function Reader:u32() local r = self:take(4); return r:le_uint(), r end
-- The range from `from` to the current position.
function Reader:since(from)
  if self.pos <= from then return nil end
  return self.r:range(from, self.pos - from)
end

local function hex_of(range)
  if not range then return "" end
  return range:bytes():tohex(true)
end

-- NDR [string] char*: conformant varying (max_count, offset, actual_count), NUL included.
local function ndr_string(rd)
  rd:align(4)
  local start = rd.pos
  rd:u32()
  local offset = rd:u32()
  local actual = rd:u32()
  local chars = rd:take(actual)
  local s = ""
  if chars and actual > 1 then s = chars:range(0, actual - 1):string() end
  if offset ~= 0 then s = s .. " [offset " .. offset .. "?]" end
  return s, rd:since(start)
end

-- NDR [size_is(n)] byte[]: conformant (max_count, bytes).
local function ndr_conformant(rd)
  rd:align(4)
  local start = rd.pos
  local n = rd:u32()
  local bytes = rd:take(n)
  return bytes, n, rd:since(start)
end

-- NDR [size_is, length_is] byte[]: conformant varying (max_count, offset, actual_count, bytes).
local function ndr_conformant_varying(rd)
  rd:align(4)
  local start = rd.pos
  rd:u32()
  rd:u32()
  local n = rd:u32()
  local bytes = rd:take(n)
  return bytes, n, rd:since(start)
end

local function add_handle(rd, tree, field)
  rd:align(4)
  local r = rd:take(20)
  tree:add(field, r)
  return r
end

local function add_u32(rd, tree, field)
  rd:align(4)
  local v, r = rd:u32()
  tree:add_le(field, r)
  return v, r
end

local function add_u16(rd, tree, field)
  rd:align(2)
  local v, r = rd:u16()
  tree:add_le(field, r)
  return v, r
end

local function add_rc(rd, tree)
  local v = add_u32(rd, tree, f.rc)
  if v ~= 0 then
    tree:add_proto_expert_info(ef.rc, "Return value " .. string.format("0x%08x", v) ..
                               (RETURN_CODES[v] and (" " .. RETURN_CODES[v]) or ""))
  end
  return v
end

local function version_string(rd)
  local a = rd:u16()
  local b = rd:u16()
  local c = rd:u16()
  return string.format("%d.%d.%d", a, b, c)
end

-- ---- SOCKADDR ------------------------------------------------------------------------------

local function ipv6_text(range)
  local ok, text = pcall(function() return tostring(range:ipv6()) end)  -- TvbRange:ipv6 (Wireshark >= 3.x)
  if ok then return text end
  local parts = {}
  for i = 0, 7 do parts[#parts + 1] = string.format("%x", range:range(i * 2, 2):uint()) end
  return table.concat(parts, ":")
end

-- The text of a Windows SOCKADDR ("addr:port"), or nil with the reason.
local function sockaddr_text(range)
  if not range or range:len() < 2 then return nil, "shorter than a SOCKADDR family" end
  local family = range:range(0, 2):le_uint()
  if family == 2 and range:len() >= 8 then
    return tostring(range:range(4, 4):ipv4()) .. ":" .. range:range(2, 2):uint()
  elseif family == 23 and range:len() >= 24 then
    return "[" .. ipv6_text(range:range(8, 16)) .. "]:" .. range:range(2, 2):uint()
  elseif family == 2 or family == 23 then
    return nil, "too short for its family"
  end
  return nil, "address family " .. family .. " is neither AF_INET (2) nor AF_INET6 (23)"
end

-- Adds the SOCKADDR's parts under `tree`; returns "addr:port" or nil.
local function dissect_sockaddr(range, tree)
  local text, why = sockaddr_text(range)
  if not range or range:len() < 2 then
    tree:add_proto_expert_info(ef.malformed, "rgbCallbackAddress " .. why)
    return nil
  end
  local family = range:range(0, 2):le_uint()
  tree:add_le(f.callback_family, range:range(0, 2))
  local want = family == 2 and 16 or family == 23 and 28 or nil
  if want and range:len() ~= want then
    tree:add_proto_expert_info(ef.odd, "A Windows SOCKADDR of this family is " .. want .. " bytes, this one " ..
                               range:len() .. ": the server answers ecInvalidParam")
  end
  if not text then
    tree:add_proto_expert_info(ef.odd, "rgbCallbackAddress: " .. why)
    return nil
  end
  tree:add(f.callback_port, range:range(2, 2))
  if family == 2 then
    tree:add(f.callback_ipv4, range:range(4, 4))
  else
    tree:add(f.callback_ipv6, range:range(8, 16))
  end
  return text
end

-- ---- ROP buffers ---------------------------------------------------------------------------

local function deobfuscate(range)
  local ba = range:bytes()
  for i = 0, ba:len() - 1 do ba:set_index(i, bxor(ba:get_index(i), 0xA5)) end
  return ba:tvb("EcDoRpcExt2 buffer (XorMagic undone)"):range()
end

-- Decodes a z-terminated MessageClass (8-bit or UTF-16LE) within the reader's range.
local function message_class(rd, unicode)
  local start = rd.pos
  if unicode == 0 then
    while true do
      local c = rd:u8()
      if c == 0 then break end
    end
    local n = rd.pos - start
    local s = n > 1 and rd.r:range(start, n - 1):string() or ""
    return s, rd:since(start)
  end
  while true do
    local c = rd:u16()
    if c == 0 then break end
  end
  local n = rd.pos - start
  local s = n > 2 and rd.r:range(start, n - 2):le_ustring() or ""
  return s, rd:since(start)
end

local function dissect_rop_notify(rd, tree, ctx)
  local start = rd.pos - 1
  local item = tree:add(f.rop, rd.r:range(start, 1))
  local _, hr = rd:u32()
  item:add_le(f.notify_handle, hr)
  local _, lr = rd:u8()
  item:add(f.logon_id, lr)
  local ntype, tr = rd:u16()
  local ti = item:add_le(f.notification_type, tr)
  ti:add_le(f.nt_new_mail, tr)
  ti:add_le(f.nt_table_modified, tr)
  ti:add_le(f.nt_m, tr)
  if band(ntype, 0x0FFF) ~= 0x0002 then
    item:add_proto_expert_info(ef.undecoded, string.format(
      "Notification type 0x%04x is not decoded; the rest of the ROP list is skipped", ntype))
    return false
  end
  local fid = rd:take(8)
  local fi = item:add_le(f.event_fid, fid)
  fi:add_le(f.event_fid_replica, fid:range(0, 2))
  fi:add(f.event_fid_counter, fid:range(2, 6), fid:range(2, 6):uint64())
  local mid = rd:take(8)
  local mi = item:add_le(f.event_mid, mid)
  mi:add_le(f.event_mid_replica, mid:range(0, 2))
  mi:add(f.event_mid_counter, mid:range(2, 6), mid:range(2, 6):uint64())
  local _, fr = rd:u32()
  item:add_le(f.message_flags, fr)
  local unicode, ur = rd:u8()
  item:add(f.unicode_flag, ur)
  local cls, cr = message_class(rd, unicode)
  item:add(f.message_class, cr, cls)
  item:set_len(rd.pos - start)
  item:append_text(" (NewMail, MID counter " .. tostring(mid:range(2, 6):uint64()) .. ")")
  ctx.notify_count = ctx.notify_count + 1
  return true
end

local function add_pending(tree, range, ctx, outside)
  local item = tree:add(f.rop, range:range(0, 1))
  local session = range:range(1, 2):le_uint()
  item:add_le(f.pending_session, range:range(1, 2))
  item:set_len(3)
  item:append_text(" (SessionIndex " .. session .. ")")
  item:add_proto_expert_info(ef.pending, "RopPending: more notifications are queued for session " .. session)
  if outside then
    item:add_proto_expert_info(ef.odd, "RopPending lies after RopSize, outside the ROP list")
  end
  ctx.pending = session
end

-- The ROP buffer inside one RPC_HEADER_EXT: RopSize, the ROP list, the handle table.
local function dissect_rop_buffer(range, tree, is_response, ctx)
  local rd = reader(range)
  local rop_size, rr = rd:u16()
  tree:add_le(f.rop_size, rr)
  if rop_size < 2 or rop_size > rd.len then
    tree:add_proto_expert_info(ef.malformed, "RopSize " .. rop_size .. " outside 2.." .. rd.len)
    return
  end
  local list_len = rop_size - 2
  if not is_response then
    tree:add(f.rop_list_len, rr, list_len):set_generated()
    if list_len == 0 then
      tree:add(f.empty_poll, rr, true):set_generated()
      ctx.empty_poll = true
    else
      tree:add(f.rop, range:range(2, 1))
      tree:add_proto_expert_info(ef.undecoded, "Request ROPs are not decoded (" .. list_len .. " bytes)")
    end
    rd.pos = rop_size
  else
    local list = reader(range:range(0, rop_size))
    list.pos = 2
    while list:remaining() > 0 do
      local id, idr = list:u8()
      if id == ROP_NOTIFY then
        if not dissect_rop_notify(list, tree, ctx) then break end
      elseif id == ROP_PENDING then
        list:need(2)
        add_pending(tree, range:range(list.pos - 1, 3), ctx, false)
        list.pos = list.pos + 2
      else
        tree:add(f.rop, idr)
        tree:add_proto_expert_info(ef.undecoded, string.format(
          "ROP 0x%02x is not decoded; the rest of the ROP list is skipped", id))
        break
      end
    end
    rd.pos = rop_size
  end
  local rest = rd:remaining()
  if rest == 0 then return end
  if rest % 4 == 0 then
    while rd:remaining() > 0 do
      local _, hr = rd:u32()
      tree:add_le(f.server_handle, hr)
    end
  elseif is_response and rest == 3 and range:range(rd.pos, 1):uint() == ROP_PENDING then
    -- A RopPending appended after RopSize instead of inside the ROP list.
    add_pending(tree, range:range(rd.pos, 3), ctx, true)
  else
    tree:add_proto_expert_info(ef.malformed, rest .. " bytes after the ROP list are not a handle table of u32s")
  end
end

-- rgbIn / rgbOut: RPC_HEADER_EXT-framed payloads until one has Last set.
local function dissect_rpc_buffer(range, tree, is_response, ctx)
  if not range then
    tree:add_proto_expert_info(ef.malformed, "Empty " .. (is_response and "rgbOut" or "rgbIn"))
    return
  end
  local rd = reader(range)
  while rd:remaining() > 0 do
    if rd:remaining() < 8 then
      tree:add_proto_expert_info(ef.malformed, "RPC_HEADER_EXT truncated")
      return
    end
    local hstart = rd.pos
    local hi = tree:add(f.hdr, range:range(hstart, 8))
    local version, vr = rd:u16()
    hi:add_le(f.hdr_version, vr)
    local flags, fr = rd:u16()
    local fi = hi:add_le(f.hdr_flags, fr)
    fi:add_le(f.hdr_compressed, fr)
    fi:add_le(f.hdr_xor_magic, fr)
    fi:add_le(f.hdr_last, fr)
    local size, sr = rd:u16()
    hi:add_le(f.hdr_size, sr)
    local _, ar = rd:u16()
    hi:add_le(f.hdr_size_actual, ar)
    if version ~= 0 then hi:add_proto_expert_info(ef.odd, "RPC_HEADER_EXT Version is not 0") end
    if size > rd:remaining() then
      hi:add_proto_expert_info(ef.malformed, "Size " .. size .. " runs past the buffer (" .. rd:remaining() .. " left)")
      return
    end
    local payload = rd:take(size)
    if payload then
      if band(flags, HDR_COMPRESSED) ~= 0 then
        hi:add_proto_expert_info(ef.undecoded, "Compressed (LZ77) payload is not decoded")
      else
        if band(flags, HDR_XOR_MAGIC) ~= 0 then payload = deobfuscate(payload) end
        dissect_rop_buffer(payload, hi, is_response, ctx)
      end
    end
    if band(flags, HDR_LAST) ~= 0 then break end
  end
  if rd:remaining() > 0 then
    tree:add_proto_expert_info(ef.malformed, rd:remaining() .. " bytes after the RPC_HEADER_EXT marked Last")
  end
end

local function add_pul_flags(rd, tree)
  rd:align(4)
  local _, r = rd:u32()
  local item = tree:add_le(f.pul_flags, r)
  item:add_le(f.pul_no_compression, r)
  item:add_le(f.pul_no_xor_magic, r)
  item:add_le(f.pul_chain, r)
end

-- ---- the stubs -----------------------------------------------------------------------------

local decoders = { [EMSMDB] = { req = {}, rsp = {} }, [ASYNC] = { req = {}, rsp = {} } }

-- EcDoConnectEx (10)
decoders[EMSMDB].req[10] = function(rd, t, ctx)
  local dn, dr = ndr_string(rd)
  t:add(f.user_dn, dr, dn)
  ctx.summary = dn
  add_u32(rd, t, f.connect_flags)
  add_u32(rd, t, f.conmod)
  add_u32(rd, t, f.limit)
  add_u32(rd, t, f.cpid)
  add_u32(rd, t, f.lcid_string)
  add_u32(rd, t, f.lcid_sort)
  add_u32(rd, t, f.icxr_link)
  add_u16(rd, t, f.can_convert_cp)
  local vstart = rd.pos
  local v = version_string(rd)
  t:add(f.client_version, rd:since(vstart), v)
  add_u32(rd, t, f.timestamp)
  local _, n, ar = ndr_conformant(rd)
  t:add(f.aux_in_len, ar, n)
  add_u32(rd, t, f.cb_aux_in)
  add_u32(rd, t, f.max_aux_out)
end

decoders[EMSMDB].rsp[10] = function(rd, t, ctx)
  add_handle(rd, t, f.cxh)
  local polls = add_u32(rd, t, f.polls_max_ms)
  add_u32(rd, t, f.retry_count)
  add_u32(rd, t, f.retry_delay_ms)
  local picxr = add_u16(rd, t, f.session_index)
  for _, field in ipairs({ f.dn_prefix, f.display_name }) do
    rd:align(4)
    local ptr = rd:u32()
    if ptr ~= 0 then
      local s, sr = ndr_string(rd)
      t:add(field, sr, s)
    end
  end
  rd:align(2)
  local vstart = rd.pos
  local v = version_string(rd)
  t:add(f.server_version, rd:since(vstart), v)
  vstart = rd.pos
  v = version_string(rd)
  t:add(f.best_version, rd:since(vstart), v)
  add_u32(rd, t, f.timestamp)
  local _, n, ar = ndr_conformant_varying(rd)
  t:add(f.aux_out_len, ar, n)
  add_u32(rd, t, f.cb_aux_out)
  add_rc(rd, t)
  ctx.summary = "pcmsPollsMax " .. polls .. " ms, picxr " .. picxr
end

-- EcRRegisterPushNotification (4)
decoders[EMSMDB].req[4] = function(rd, t, ctx)
  add_handle(rd, t, f.cxh)
  add_u32(rd, t, f.irpc)
  local context, n = ndr_conformant(rd)
  if context then
    t:add(f.context, context)
  else
    t:add_proto_expert_info(ef.odd, "rgbContext is empty: a push datagram would carry no bytes")
  end
  local cb = add_u16(rd, t, f.cb_context)
  if cb ~= n then t:add_proto_expert_info(ef.malformed, "cbContext " .. cb .. " differs from rgbContext's " .. n) end
  if n > 16 then t:add_proto_expert_info(ef.odd, "cbContext above 0x10: the server answers ecTooBig") end
  add_u32(rd, t, f.advise_bits)
  local sa, sn = ndr_conformant(rd)
  local text
  if sa then
    local si = t:add(f.callback, sa, sockaddr_text(sa) or "(not a valid SOCKADDR)")
    text = dissect_sockaddr(sa, si)
  else
    t:add_proto_expert_info(ef.malformed, "rgbCallbackAddress is empty")
  end
  local cba = add_u16(rd, t, f.cb_callback)
  if cba ~= sn then
    t:add_proto_expert_info(ef.malformed, "cbCallbackAddress " .. cba .. " differs from rgbCallbackAddress's " .. sn)
  end
  if context then hist_put(state.regs, hex_of(context), ctx.frame, text or "?") end
  ctx.summary = "context " .. hex_of(context) .. (text and (" -> " .. text) or "")
end

decoders[EMSMDB].rsp[4] = function(rd, t, ctx)
  add_handle(rd, t, f.cxh)
  local h = add_u32(rd, t, f.notification_handle)
  local rc = add_rc(rd, t)
  ctx.summary = string.format("hNotification 0x%08x, rc 0x%08x", h, rc)
end

-- EcDummyRpc (6): empty request, return value only
decoders[EMSMDB].req[6] = function() end
decoders[EMSMDB].rsp[6] = function(rd, t) add_rc(rd, t) end

-- EcDoRpcExt2 (11)
decoders[EMSMDB].req[11] = function(rd, t, ctx)
  add_handle(rd, t, f.cxh)
  add_pul_flags(rd, t)
  local rgb, n, rr = ndr_conformant(rd)
  local ri = t:add(f.rgb_in, rr)
  ri:add(f.rgb_len, rr, n):set_generated()
  dissect_rpc_buffer(rgb, ri, false, ctx)
  ctx.summary = ctx.empty_poll and "empty ROP list (a poll)" or nil
  add_u32(rd, t, f.cb_in)
  add_u32(rd, t, f.max_out)
  local _, an, ar = ndr_conformant(rd)
  t:add(f.aux_in_len, ar, an)
  add_u32(rd, t, f.cb_aux_in)
  add_u32(rd, t, f.max_aux_out)
end

decoders[EMSMDB].rsp[11] = function(rd, t, ctx)
  add_handle(rd, t, f.cxh)
  add_pul_flags(rd, t)
  local rgb, n, rr = ndr_conformant_varying(rd)
  local ri = t:add(f.rgb_out, rr)
  ri:add(f.rgb_len, rr, n):set_generated()
  dissect_rpc_buffer(rgb, ri, true, ctx)
  t:add(f.notify_count, rr, ctx.notify_count):set_generated()
  add_u32(rd, t, f.cb_out)
  local _, an, ar = ndr_conformant_varying(rd)
  t:add(f.aux_out_len, ar, an)
  add_u32(rd, t, f.cb_aux_out)
  add_u32(rd, t, f.trans_time)
  add_rc(rd, t)
  ctx.summary = ctx.notify_count .. " RopNotify" .. (ctx.pending and (", RopPending " .. ctx.pending) or "")
end

-- EcDoAsyncConnectEx (14)
-- EcDoDisconnect (1): CXH in; the handle back (zeroed) and the return value
decoders[EMSMDB].req[1] = function(rd, t) add_handle(rd, t, f.cxh) end
decoders[EMSMDB].rsp[1] = function(rd, t, ctx)
  add_handle(rd, t, f.cxh)
  local rc = add_rc(rd, t)
  ctx.summary = rc == 0 and "session ended" or (RETURN_CODES[rc] or string.format("rc 0x%08x", rc))
end

decoders[EMSMDB].req[14] = function(rd, t) add_handle(rd, t, f.cxh) end
decoders[EMSMDB].rsp[14] = function(rd, t, ctx)
  add_handle(rd, t, f.acxh)
  local rc = add_rc(rd, t)
  ctx.summary = rc == 0 and "async context created" or (RETURN_CODES[rc] or string.format("rc 0x%08x", rc))
end

-- AsyncEMSMDB EcDoAsyncWaitEx (0)
decoders[ASYNC].req[0] = function(rd, t)
  add_handle(rd, t, f.acxh)
  add_u32(rd, t, f.async_flags_in)
end
decoders[ASYNC].rsp[0] = function(rd, t, ctx)
  rd:align(4)
  local v, r = rd:u32()
  local item = t:add_le(f.async_flags, r)
  item:add_le(f.async_pending, r)
  add_rc(rd, t)
  ctx.summary = band(v, 1) ~= 0 and "NotificationPending" or "no notification (hold expired)"
end

-- ---- DCE/RPC framing -------------------------------------------------------------------------

-- Records the presentation contexts a bind / alter_context proposes.
local function note_bind(pdu, stream, frame)
  if pdu:len() < 28 then return nil end
  local n = pdu:range(24, 1):uint()
  local off = 28
  local found
  for _ = 1, n do
    if off + 24 > pdu:len() then break end
    local ctx_id = pdu:range(off, 2):le_uint()
    local n_ts = pdu:range(off + 2, 1):uint()
    local uuid = pdu:range(off + 4, 16):bytes():tohex(true)
    local major = pdu:range(off + 20, 2):le_uint()
    local minor = pdu:range(off + 22, 2):le_uint()
    local iface = IFACE_BY_WIRE_UUID[uuid]
    if iface and iface.major == major and iface.minor == minor then
      hist_put(state.binds, stream .. "/" .. ctx_id, frame, iface.name)
      found = iface.name
    end
    off = off + 24 + 20 * n_ts
  end
  return found
end

local PTYPE_NAMES = { [0] = "request", [2] = "response", [3] = "fault" }

local function dissect_pdu(pdu, stream, pinfo, tree, single_opnum)
  local frame = pinfo.number
  if pdu:len() < 16 or pdu:range(0, 1):uint() ~= 5 then return end  -- connection-oriented only
  local ptype = pdu:range(2, 1):uint()
  local pfc = pdu:range(3, 1):uint()
  local little = band(pdu:range(4, 1):uint(), 0x10) ~= 0
  if ptype == 11 or ptype == 14 then
    local iface = note_bind(pdu, stream, frame)
    if iface then
      local t = tree:add(nudge, pdu)
      t:add(f.interface, pdu, iface):set_generated()
      t:add(f.type, pdu, ptype == 11 and "bind" or "alter_context"):set_generated()
    end
    return
  end
  if not PTYPE_NAMES[ptype] or pdu:len() < 24 or not little then return end
  local frag_len = pdu:range(8, 2):le_uint()
  local auth_len = pdu:range(10, 2):le_uint()
  local call_id = pdu:range(12, 4):le_uint()
  local ctx_id = pdu:range(20, 2):le_uint()
  local iface = hist_get(state.binds, stream .. "/" .. ctx_id, frame, false)
  if not iface then return end  -- not a call on an interface this script knows (or the bind is not in the capture)

  local is_response = ptype ~= 0
  local opnum, request_frame
  local call_key = stream .. "/" .. call_id
  if ptype == 0 then
    opnum = pdu:range(22, 2):le_uint()
    hist_put(state.calls, call_key, frame, opnum)
  else
    opnum, request_frame = hist_get(state.calls, call_key, frame, true)
    if opnum == nil then opnum = single_opnum end
  end
  local opname = opnum and (OPNAMES[iface][opnum] or ("opnum " .. opnum)) or "?"

  local t = tree:add(nudge, pdu)
  t:set_text("nudge EMSMDB: " .. iface .. " " .. opname .. " " .. PTYPE_NAMES[ptype])
  t:add(f.interface, pdu:range(20, 2), iface):set_generated()
  if opnum then
    t:add(f.opnum, ptype == 0 and pdu:range(22, 2) or pdu:range(12, 4), opnum):set_generated()
  end
  t:add(f.opname, pdu:range(0, 16), opname):set_generated()
  t:add(f.type, pdu:range(2, 1), PTYPE_NAMES[ptype]):set_generated()
  t:add_le(f.call_id, pdu:range(12, 4))
  if request_frame then t:add(f.request_in, pdu:range(12, 4), request_frame):set_generated() end

  if ptype == 3 then
    if pdu:len() >= 28 then t:add_le(f.fault_status, pdu:range(24, 4)) end
    pinfo.cols.info:append(" [nudge: " .. opname .. " fault]")
    return
  end
  if frag_len > pdu:len() then
    t:add_proto_expert_info(ef.undecoded, "PDU not reassembled (frag_length " .. frag_len .. ", have " .. pdu:len() ..
                            "): enable TCP reassembly")
    return
  end
  if band(pfc, 0x03) ~= 0x03 then
    t:add_proto_expert_info(ef.undecoded, "A fragment of a multi-fragment call: not decoded")
    return
  end
  local stub_off = 24
  if ptype == 0 and band(pfc, 0x80) ~= 0 then stub_off = 40 end
  local stub_end = frag_len
  if auth_len > 0 then
    local trailer = frag_len - auth_len - 8
    if trailer < stub_off then
      t:add_proto_expert_info(ef.malformed, "auth_length runs into the header")
      return
    end
    local level = pdu:range(trailer + 1, 1):uint()
    stub_end = trailer - pdu:range(trailer + 2, 1):uint()
    if level >= 6 then
      t:add_proto_expert_info(ef.undecoded, "Stub encrypted (authentication level privacy): not decoded")
      return
    end
  end
  local stub_len = math.max(0, stub_end - stub_off)
  local stub = stub_len > 0 and pdu:range(stub_off, stub_len) or nil
  t:add(f.stub_len, stub or pdu:range(8, 2), stub_len):set_generated()

  local ctx = { frame = frame, notify_count = 0 }
  local decode = opnum and decoders[iface][is_response and "rsp" or "req"][opnum]
  -- One fragment of a longer call carries part of the stub: not decoded alone.
  local whole_call = band(pfc, 0x03) == 0x03
  if not whole_call then ctx.summary = "fragment" end
  if decode and whole_call then
    local rd = reader(stub)
    local ok, err = pcall(decode, rd, t, ctx)
    if not ok then
      if err ~= TRUNCATED then error(err, 0) end
      t:add_proto_expert_info(ef.malformed, "Stub shorter than the " .. opname .. " layout (" .. stub_len .. " bytes)")
    elseif rd:remaining() > 0 then
      t:add_proto_expert_info(ef.malformed, rd:remaining() .. " bytes after the " .. opname .. " stub")
    end
  end
  pinfo.cols.info:append(" [nudge: " .. opname .. " " .. PTYPE_NAMES[ptype] ..
                         (ctx.summary and (": " .. ctx.summary) or "") .. "]")
end

-- ---- UDP: push datagrams and reachability cookies --------------------------------------------

local COOKIE_MAGIC = "4e55444745564659"  -- "NUDGEVFY"

local function dissect_udp(tvb, pinfo, tree)
  local u = fx_udp()
  local ulen = fx_udp_length()
  if not u or not ulen then return end
  local off = u.offset + 8
  local n = math.min(ulen.value - 8, tvb:len() - off)
  if n <= 0 then return end
  local payload = tvb(off, n)
  if n <= 16 then
    local key = hex_of(payload)
    local callback, reg_frame = hist_get(state.regs, key, pinfo.number, true)
    if reg_frame then
      local t = tree:add(nudge, payload)
      t:set_text("nudge EMSMDB: push datagram (the context registered in frame " .. reg_frame .. ")")
      t:add(f.ping_context, payload)
      t:add(f.ping_registered_in, payload, reg_frame):set_generated()
      t:add(f.ping_callback, payload, callback):set_generated()
      local dst, dport = fx_ip_dst(), fx_udp_dstport()
      if dst and dport and callback ~= tostring(dst.value) .. ":" .. dport.value then
        t:add_proto_expert_info(ef.odd, "Sent to " .. tostring(dst.value) .. ":" .. dport.value ..
                                ", not the registered " .. callback .. " (NAT or a callback policy)")
      end
      pinfo.cols.info:append(" [nudge: push datagram, registration in frame " .. reg_frame .. "]")
      return
    end
  end
  if n >= 12 and n <= 28 and hex_of(payload:range(0, 8)) == COOKIE_MAGIC then
    local t = tree:add(nudge, payload)
    t:set_text("nudge EMSMDB: reachability cookie (nudge extension)")
    t:add_le(f.cookie_handle, payload:range(8, 4))
    if n > 12 then t:add(f.cookie_context, payload:range(12, n - 12)) end
    pinfo.cols.info:append(" [nudge: reachability cookie]")
  end
end

-- ---- the post-dissector ------------------------------------------------------------------------

function nudge.dissector(tvb, pinfo, tree)
  local pdus = { fx_dcerpc() }
  if #pdus > 0 then
    local s = fx_tcp_stream()
    if not s then return end
    local stream = tostring(s.value)
    local opnums = { fx_dcerpc_opnum() }
    local single_opnum = (#pdus == 1 and #opnums == 1) and opnums[1].value or nil
    for _, fi in ipairs(pdus) do
      local range = fi.range
      if range then dissect_pdu(range, stream, pinfo, tree, single_opnum) end
    end
    return
  end
  dissect_udp(tvb, pinfo, tree)
end

register_postdissector(nudge)
