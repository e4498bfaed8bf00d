// The run report as ONE self-contained HTML page: inline CSS and script, no network (a
// Content-Security-Policy forbids every fetch), the data embedded as JSON that the
// page's script draws from (the timeline on one <canvas>, tables capped in length), so
// a 10,000-task run stays a small file and a fast page.
//
// Nothing taken from the run reaches the page as markup: the JSON is embedded with
// '<', '>' and '&' escaped, and the script puts text into the page with textContent only.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace sluice::cli {

// Escapes & < > " ' for HTML text and attribute values.
std::string html_escape(std::string_view text);

// JSON text safe inside <script type="application/json">: no '<', '>' or '&' characters
// (written as \u003c, \u003e, \u0026); invalid UTF-8 is replaced.
std::string json_for_script(const nlohmann::json& data);

// The page for `data` as report_json() builds it.
std::string render_report_html(const nlohmann::json& data);

}  // namespace sluice::cli
