// An incremental text/event-stream parser (WHATWG HTML, "Server-sent events", 9.2.6): lines end
// in CRLF, LF or CR; "data" lines are joined with LF; "id" persists between events (the
// last-event-ID buffer) unless it holds a NUL; "retry" takes ASCII digits only; lines starting
// with ':' are comments. Internal to the client library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace cortex_connectors {

struct SseEvent {
  std::string type;  // "message" when the event had no "event" field
  std::string data;
  std::string id;  // the last-event-ID buffer when the event was dispatched
};

class SseParser {
 public:
  // A line longer than this fails feed(): a server cannot make the client buffer without bound.
  static constexpr std::size_t kMaxLine = std::size_t{64} << 20;

  // Parses `bytes`; calls on_event per dispatched event (false stops parsing) and on_comment
  // per comment line. Returns false when a callback stopped it or a line was too long.
  bool feed(std::string_view bytes, const std::function<bool(const SseEvent&)>& on_event,
            const std::function<void()>& on_comment) {
    for (char c : bytes) {
      if (after_cr_ && c == '\n') {
        after_cr_ = false;
        continue;
      }
      after_cr_ = c == '\r';
      if (c == '\r' || c == '\n') {
        if (!line(on_event, on_comment)) return false;
        line_.clear();
        continue;
      }
      if (line_.size() >= kMaxLine) return false;
      line_.push_back(c);
    }
    return true;
  }

  // The last "retry" value, in milliseconds.
  std::optional<std::uint64_t> retry() const { return retry_; }

 private:
  bool line(const std::function<bool(const SseEvent&)>& on_event,
            const std::function<void()>& on_comment) {
    if (line_.empty()) return dispatch(on_event);
    if (line_[0] == ':') {
      on_comment();
      return true;
    }
    const std::size_t colon = line_.find(':');
    const std::string_view field = std::string_view(line_).substr(0, colon);
    std::string_view value;
    if (colon != std::string::npos) {
      value = std::string_view(line_).substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
      data_.append(value);
      data_.push_back('\n');
      has_data_ = true;
    } else if (field == "event") {
      type_ = value;
    } else if (field == "id") {
      if (value.find('\0') == std::string_view::npos) id_ = value;
    } else if (field == "retry") {
      if (!value.empty() && value.size() <= 12 &&
          value.find_first_not_of("0123456789") == std::string_view::npos) {
        retry_ = std::stoull(std::string(value));
      }
    }
    return true;
  }

  bool dispatch(const std::function<bool(const SseEvent&)>& on_event) {
    if (!has_data_) {
      type_.clear();
      return true;
    }
    SseEvent ev;
    ev.type = type_.empty() ? "message" : type_;
    data_.pop_back();  // the LF after the last data line
    ev.data = std::move(data_);
    ev.id = id_;
    data_.clear();
    type_.clear();
    has_data_ = false;
    return on_event(ev);
  }

  std::string line_;
  bool after_cr_ = false;
  std::string data_;
  bool has_data_ = false;
  std::string type_;
  std::string id_;
  std::optional<std::uint64_t> retry_;
};

}  // namespace cortex_connectors
