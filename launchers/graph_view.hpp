// The picture `sluice graph` draws: a RunView's tasks folded into nodes so that large
// runs stay readable. Matrix instances of one group, and the dynamic children added by
// one group, form a cluster; a cluster larger than `expand_up_to` becomes ONE node
// with counts per state ("train ×10000: 9998 succeeded, 2 failed"), a smaller one keeps
// a node per task drawn inside a box. Rendered as Graphviz dot or Mermaid text.
#pragma once

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "progress.hpp"
#include "run_view.hpp"

namespace sluice::cli {

struct GraphNode {
  std::string label;        // plain text; renderers escape it
  std::string state_class;  // the state it is coloured by, "" when the graph has none
  std::size_t cluster = 0;  // index into FoldedGraph::clusters
};

struct GraphCluster {
  std::string name;  // "train", "children of map"
  std::size_t size = 0;
  bool collapsed = false;  // true: one node stands for all its tasks
};

struct FoldedGraph {
  std::vector<GraphNode> nodes;
  std::vector<GraphCluster> clusters;
  std::vector<std::pair<std::size_t, std::size_t>> edges;  // node -> node, no duplicates
};

constexpr std::size_t kDefaultExpandUpTo = 12;

// Folds `view` (with states when it is a run). `expand_all` keeps one node per task.
FoldedGraph fold_graph(const RunView& view, std::size_t expand_up_to, bool expand_all);

std::string render_dot(const FoldedGraph& g, const std::string& title);
std::string render_mermaid(const FoldedGraph& g);

// The colour (#rrggbb) the report and the graph give a task state.
const char* state_colour(std::string_view state);

}  // namespace sluice::cli
