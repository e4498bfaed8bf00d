#include "graph_view.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

namespace sluice::cli {
namespace {

// The state a folded node shows: the first present in this order of attention.
constexpr TaskState kAttention[] = {TaskState::kFailed,  TaskState::kRunning,   TaskState::kQueued,
                                    TaskState::kReady,   TaskState::kCancelled, TaskState::kWaiting,
                                    TaskState::kSkipped, TaskState::kSucceeded};

std::string counts_text(const StateCounts& c) {
  std::string s;
  for (int i = 0; i < kTaskStateCount; ++i) {
    if (c[i] == 0) continue;
    s += (s.empty() ? "" : ", ") + std::to_string(c[i]) + " " +
         std::string(to_string(static_cast<TaskState>(i)));
  }
  return s;
}

std::string dot_quote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (ch == '\n') {
      out += "\\n";
      continue;
    }
    out += ch;
  }
  return out + "\"";
}

// Mermaid labels are quoted; quotes and markup characters become entity codes.
std::string mermaid_quote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    switch (ch) {
      case '"':
        out += "#quot;";
        break;
      case '<':
        out += "#lt;";
        break;
      case '>':
        out += "#gt;";
        break;
      case '#':
        out += "#35;";
        break;
      case '&':
        out += "#amp;";
        break;
      case '\n':
        out += "<br/>";
        break;
      default:
        out += ch;
    }
  }
  return out + "\"";
}

}  // namespace

const char* state_colour(std::string_view s) {
  if (s == "succeeded") return "#8fd19e";
  if (s == "failed") return "#f28b82";
  if (s == "running" || s == "queued") return "#7fb2f0";
  if (s == "ready") return "#c6dcf7";
  if (s == "cancelled") return "#f6c26b";
  if (s == "skipped") return "#d0d0d0";
  return "#ffffff";  // waiting, or no state
}

FoldedGraph fold_graph(const RunView& view, std::size_t expand_up_to, bool expand_all) {
  const bool with_states = view.run.has_value();
  const std::size_t n = view.tasks.size();
  FoldedGraph g;
  // Cluster of each task: declared tasks by group; dynamic children by who added them.
  std::vector<std::size_t> cluster_of(n);
  std::unordered_map<std::string, std::size_t> by_key;
  std::vector<std::vector<TaskId>> members;
  for (std::size_t t = 0; t < n; ++t) {
    const TaskRecord& r = view.tasks[t];
    std::string key;
    if (r.parent >= 0 && static_cast<std::size_t>(r.parent) < t)
      key = "children of " + g.clusters[cluster_of[r.parent]].name;
    else
      key = r.group.empty() ? r.name : r.group;
    auto [it, fresh] = by_key.try_emplace(key, g.clusters.size());
    if (fresh) {
      g.clusters.push_back({key, 0, false});
      members.emplace_back();
    }
    cluster_of[t] = it->second;
    g.clusters[it->second].size++;
    members[it->second].push_back(static_cast<TaskId>(t));
  }

  std::vector<std::size_t> node_of(n);
  for (std::size_t c = 0; c < g.clusters.size(); ++c) {
    GraphCluster& cl = g.clusters[c];
    cl.collapsed = cl.size > 1 && !expand_all && cl.size > expand_up_to;
    if (!cl.collapsed) {
      for (TaskId t : members[c]) {
        node_of[t] = g.nodes.size();
        std::string state = with_states ? std::string(to_string(view.tasks[t].state)) : "";
        std::string label = view.tasks[t].name;
        if (with_states) label += "\n" + state;
        g.nodes.push_back({label, state, c});
      }
      continue;
    }
    StateCounts counts{};
    for (TaskId t : members[c]) {
      counts[static_cast<int>(view.tasks[t].state)]++;
      node_of[t] = g.nodes.size();
    }
    std::string label = cl.name + " \u00d7" + std::to_string(cl.size);
    std::string state;
    if (with_states) {
      label += ": " + counts_text(counts);
      for (TaskState s : kAttention)
        if (counts[static_cast<int>(s)]) {
          state = std::string(to_string(s));
          break;
        }
    }
    g.nodes.push_back({label, state, c});
  }

  std::set<std::pair<std::size_t, std::size_t>> seen;
  for (std::size_t t = 0; t < n; ++t) {
    // The instances of a folded matrix after a group add the same edges: walking each
    // would be instances x parents steps.
    if (t > 0 && node_of[t] == node_of[t - 1] && view.parents[t].shares_with(view.parents[t - 1]))
      continue;
    for (TaskId p : view.parents[t]) {
      if (p >= n) continue;
      const auto e = std::make_pair(node_of[p], node_of[t]);
      if (e.first != e.second && seen.insert(e).second) g.edges.push_back(e);
    }
  }
  return g;
}

std::string render_dot(const FoldedGraph& g, const std::string& title) {
  std::string out = "digraph sluice {\n  label=" + dot_quote(title) +
                    ";\n  labelloc=t;\n  rankdir=LR;\n"
                    "  node [shape=box, style=\"rounded,filled\", fontname=\"Helvetica\", "
                    "fillcolor=\"#ffffff\"];\n";
  auto node_line = [&](std::size_t i, const char* indent) {
    const GraphNode& nd = g.nodes[i];
    std::string line =
        std::string(indent) + "n" + std::to_string(i) + " [label=" + dot_quote(nd.label);
    if (!nd.state_class.empty())
      line += ", fillcolor=\"" + std::string(state_colour(nd.state_class)) + "\"";
    if (g.clusters[nd.cluster].collapsed) line += ", peripheries=2";
    return line + "];\n";
  };
  std::vector<std::vector<std::size_t>> in_cluster(g.clusters.size());
  for (std::size_t i = 0; i < g.nodes.size(); ++i) in_cluster[g.nodes[i].cluster].push_back(i);
  for (std::size_t c = 0; c < g.clusters.size(); ++c) {
    const bool boxed = in_cluster[c].size() > 1;
    if (boxed)
      out += "  subgraph cluster_" + std::to_string(c) + " {\n    label=" +
             dot_quote(g.clusters[c].name + " \u00d7" + std::to_string(g.clusters[c].size)) +
             ";\n    style=dashed;\n";
    for (std::size_t i : in_cluster[c]) out += node_line(i, boxed ? "    " : "  ");
    if (boxed) out += "  }\n";
  }
  for (const auto& [a, b] : g.edges)
    out += "  n" + std::to_string(a) + " -> n" + std::to_string(b) + ";\n";
  return out + "}\n";
}

std::string render_mermaid(const FoldedGraph& g) {
  std::string out = "flowchart LR\n";
  std::vector<std::vector<std::size_t>> in_cluster(g.clusters.size());
  for (std::size_t i = 0; i < g.nodes.size(); ++i) in_cluster[g.nodes[i].cluster].push_back(i);
  std::set<std::string> classes;
  for (std::size_t c = 0; c < g.clusters.size(); ++c) {
    const bool boxed = in_cluster[c].size() > 1;
    if (boxed)
      out += "  subgraph c" + std::to_string(c) + " [" +
             mermaid_quote(g.clusters[c].name + " \u00d7" + std::to_string(g.clusters[c].size)) +
             "]\n";
    for (std::size_t i : in_cluster[c]) {
      const GraphNode& nd = g.nodes[i];
      out += std::string(boxed ? "    " : "  ") + "n" + std::to_string(i) +
             (g.clusters[c].collapsed ? "[[" : "(") + mermaid_quote(nd.label) +
             (g.clusters[c].collapsed ? "]]" : ")");
      if (!nd.state_class.empty()) {
        out += ":::" + nd.state_class;
        classes.insert(nd.state_class);
      }
      out += "\n";
    }
    if (boxed) out += "  end\n";
  }
  for (const auto& [a, b] : g.edges)
    out += "  n" + std::to_string(a) + " --> n" + std::to_string(b) + "\n";
  for (const auto& c : classes)
    out += "  classDef " + c + " fill:" + state_colour(c) + ",stroke:#555\n";
  return out;
}

}  // namespace sluice::cli
