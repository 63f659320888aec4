#include "nudge/activesync/wbxml.hpp"

#include <utility>

namespace nudge::activesync::wbxml {
namespace {

// Global tokens (WBXML 1.3 §7.1).
constexpr std::uint8_t switch_page = 0x00, end = 0x01, str_i = 0x03, opaque = 0xC3;
constexpr std::uint8_t content_bit = 0x40, attribute_bit = 0x80;

class reader {
 public:
  reader(bytes_view b, const limits& l) : b_(b), l_(l) {}

  decoded<element> document() {
    std::uint8_t version = 0;
    if (!byte(version)) return truncated();
    if (version > 0x03) return decoded<element>::bad("unknown WBXML version");
    std::uint32_t public_id = 0, charset = 0, table = 0;
    if (!mb_u_int32(public_id)) return bad_or_truncated();
    if (public_id == 0 && !mb_u_int32(public_id)) return bad_or_truncated();  // a string-table index follows 0
    if (!mb_u_int32(charset)) return bad_or_truncated();
    if (charset != 0x6A) return decoded<element>::bad("charset is not UTF-8");
    if (!mb_u_int32(table)) return bad_or_truncated();
    if (table > b_.size() - at_) return truncated();
    at_ += table;  // a string table nothing may reference (STR_T is refused)
    element root;
    if (!element_at(root, 0)) return failed();
    if (at_ != b_.size()) return decoded<element>::bad("bytes after the document");
    return decoded<element>::ok(std::move(root), at_);
  }

 private:
  decoded<element> truncated() { return decoded<element>::bad("truncated"); }
  decoded<element> bad_or_truncated() { return decoded<element>::bad(why_.empty() ? "truncated" : why_); }
  decoded<element> failed() { return decoded<element>::bad(why_.empty() ? "truncated" : why_); }
  bool fail(std::string_view why) {
    why_ = why;
    return false;
  }

  bool byte(std::uint8_t& out) {
    if (at_ >= b_.size()) return false;
    out = b_[at_++];
    return true;
  }
  bool mb_u_int32(std::uint32_t& out) {
    out = 0;
    for (int i = 0; i < 5; ++i) {
      std::uint8_t c = 0;
      if (!byte(c)) return false;
      if (out > (0xFFFFFFFFu >> 7)) return fail("multi-byte integer overflows");
      out = (out << 7) | (c & 0x7F);
      if (!(c & 0x80)) return true;
    }
    return fail("multi-byte integer too long");
  }
  // Page switches before a tag (several in a row are allowed).
  bool tag_byte(std::uint8_t& out) {
    for (;;) {
      if (!byte(out)) return false;
      if (out != switch_page) return true;
      std::uint8_t p = 0;
      if (!byte(p)) return false;
      page_ = p;
    }
  }

  bool element_at(element& e, std::size_t depth) {
    if (depth >= l_.max_depth) return fail("too deeply nested");
    if (++elements_ > l_.max_elements) return fail("too many elements");
    std::uint8_t t = 0;
    if (!tag_byte(t)) return false;
    if (t == end || t == str_i || t == opaque || (t & 0x3F) < 0x05) return fail("expected a tag");
    if (t & attribute_bit) return fail("attributes are not used by ActiveSync");
    e.cp = static_cast<page>(page_);
    e.token = t & 0x3F;
    if (!(t & content_bit)) return true;
    for (;;) {
      std::uint8_t c = 0;
      if (at_ >= b_.size()) return false;
      c = b_[at_];
      if (c == end) {
        ++at_;
        return true;
      }
      if (c == str_i) {
        ++at_;
        if (!e.children.empty()) return fail("mixed content");
        std::size_t n = at_;
        while (n < b_.size() && b_[n] != 0) ++n;
        if (n == b_.size()) return false;
        if (!append_text(e, n - at_)) return false;
        at_ = n + 1;
        continue;
      }
      if (c == opaque) {
        ++at_;
        if (!e.children.empty()) return fail("mixed content");
        std::uint32_t len = 0;
        if (!mb_u_int32(len)) return false;
        if (len > b_.size() - at_) return false;
        if (!append_text(e, len)) return false;
        at_ += len;
        continue;
      }
      if (c != switch_page && (c & 0x3F) < 0x05) return fail("unsupported global token");
      if (!e.text.empty()) return fail("mixed content");
      element child;
      if (!element_at(child, depth + 1)) return false;
      e.children.push_back(std::move(child));
    }
  }
  bool append_text(element& e, std::size_t n) {
    if (e.text.size() + n > l_.max_text) return fail("text too long");
    e.text.append(reinterpret_cast<const char*>(b_.data() + at_), n);
    return true;
  }

  bytes_view b_;
  const limits& l_;
  std::size_t at_ = 0;
  std::size_t elements_ = 0;
  std::uint8_t page_ = 0;
  std::string_view why_;
};

void write(byte_buffer& out, const element& e, std::uint8_t& current) {
  const auto p = static_cast<std::uint8_t>(e.cp);
  if (p != current) {
    out.push_back(switch_page);
    out.push_back(p);
    current = p;
  }
  const bool content = !e.text.empty() || !e.children.empty();
  out.push_back(static_cast<std::uint8_t>(e.token | (content ? content_bit : 0)));
  if (!content) return;
  if (!e.text.empty()) {
    out.push_back(str_i);
    out.insert(out.end(), e.text.begin(), e.text.end());
    out.push_back(0);
  }
  for (const element& c : e.children) write(out, c, current);
  out.push_back(end);
}

}  // namespace

const element* element::child(page p, std::uint8_t t) const {
  for (const element& c : children)
    if (c.cp == p && c.token == t) return &c;
  return nullptr;
}

element leaf(page p, std::uint8_t token, std::string text) { return element{p, token, std::move(text), {}}; }
element node(page p, std::uint8_t token, std::vector<element> children) {
  return element{p, token, {}, std::move(children)};
}

decoded<element> decode(bytes_view body, const limits& l) { return reader(body, l).document(); }

byte_buffer encode(const element& root) {
  byte_buffer out = {0x03, 0x01, 0x6A, 0x00};
  std::uint8_t current = 0;
  write(out, root, current);
  return out;
}

std::string_view tag_name(page p, std::uint8_t t) {
  switch (p) {
    case page::ping:
      switch (t) {
        case ping_tag::ping: return "Ping";
        case ping_tag::autd_state: return "AutdState";
        case ping_tag::status: return "Status";
        case ping_tag::heartbeat_interval: return "HeartbeatInterval";
        case ping_tag::folders: return "Folders";
        case ping_tag::folder: return "Folder";
        case ping_tag::id: return "Id";
        case ping_tag::class_: return "Class";
        case ping_tag::max_folders: return "MaxFolders";
      }
      break;
    case page::airsync:
      switch (t) {
        case airsync_tag::sync: return "Sync";
        case airsync_tag::add: return "Add";
        case airsync_tag::sync_key: return "SyncKey";
        case airsync_tag::server_id: return "ServerId";
        case airsync_tag::status: return "Status";
        case airsync_tag::collection: return "Collection";
        case airsync_tag::class_: return "Class";
        case airsync_tag::collection_id: return "CollectionId";
        case airsync_tag::get_changes: return "GetChanges";
        case airsync_tag::more_available: return "MoreAvailable";
        case airsync_tag::window_size: return "WindowSize";
        case airsync_tag::commands: return "Commands";
        case airsync_tag::collections: return "Collections";
        case airsync_tag::application_data: return "ApplicationData";
      }
      break;
    case page::email:
      switch (t) {
        case email_tag::date_received: return "DateReceived";
        case email_tag::display_to: return "DisplayTo";
        case email_tag::importance: return "Importance";
        case email_tag::message_class: return "MessageClass";
        case email_tag::subject: return "Subject";
        case email_tag::read: return "Read";
        case email_tag::to: return "To";
        case email_tag::from: return "From";
        case email_tag::thread_topic: return "ThreadTopic";
        case email_tag::internet_cpid: return "InternetCPID";
      }
      break;
  }
  return "?";
}

}  // namespace nudge::activesync::wbxml
