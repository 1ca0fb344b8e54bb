// One walk over a parsed manifest document that both checks every rule and fills the Manifest,
// so validation and conversion cannot disagree. Findings carry the JSON pointer of the walk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cortex_connectors/json.h"
#include "cortex_connectors/manifest.h"
#include "cortex_connectors/result.h"
#include "cortex_connectors/validate.h"

namespace cortex_connectors::internal {

class ManifestWalker {
 public:
  // Walks `doc`; `out` is complete only when no issue was found.
  void walk_root(const Json& doc, Manifest& out);

  std::size_t total_issues() const noexcept { return total_; }
  std::vector<Issue> take_issues() && { return std::move(issues_); }

 private:
  // Extends the current pointer for one scope.
  class Push {
   public:
    Push(ManifestWalker& w, std::string_view key) : w_(w), len_(w.path_.size()) {
      append_pointer_token(w.path_, key);
    }
    Push(ManifestWalker& w, std::size_t index) : w_(w), len_(w.path_.size()) {
      w.path_.push_back('/');
      w.path_.append(std::to_string(index));
    }
    ~Push() { w_.path_.resize(len_); }
    Push(const Push&) = delete;
    Push& operator=(const Push&) = delete;

   private:
    ManifestWalker& w_;
    std::size_t len_;
  };

  struct StringArrayRule {
    bool non_empty_array;
    bool non_empty_items;
    const char* unique_what;  // "scope": items must be unique; nullptr: no rule
  };

  void issue(std::string message);
  void type_error(const Json& v, const char* expected);
  void unknown(std::string_view key);
  void missing(std::string_view key);
  const std::string* string(const Json& v, bool non_empty);
  std::optional<std::int64_t> integer(const Json& v, std::int64_t min);
  std::optional<bool> boolean(const Json& v);
  bool object(const Json& v);
  std::optional<std::vector<std::string>> string_array(const Json& v, const StringArrayRule& rule);

  void walk_connectors(const Json& v, std::vector<Connector>& out);
  void walk_connector(const Json& v, Connector& c);
  void walk_auth(const Json& v, Auth& auth);
  void walk_authentication(const Json& v, Connector& c);
  void walk_quotas(const Json& v, Connector& c);
  void walk_remote_tools(const Json& v, Connector& c);

  std::string path_;
  std::vector<Issue> issues_;
  std::size_t total_ = 0;
};

}  // namespace cortex_connectors::internal
