// Train four models with different hyper-parameters in parallel, then pick the best —
// the C++ version of the seed's `train_and_pick_model`.
//
//   ./train_and_pick_model run                   # threads of this process (inproc)
//   ./train_and_pick_model run --config local    # one worker process per task
//
// Tasks are plain functions; the workflow is code that calls them. A user type (Model)
// travels between tasks through its sluice::Codec.
#include <cmath>
#include <sluice/sdk.hpp>
#include <string>
#include <vector>

struct Model {
  double learning_rate = 0;
  int layers = 0;
  double loss = 0;
};

template <>
struct sluice::Codec<Model> {
  static sluice::Value encode(const Model& m) {
    return sluice::Map{{"learning_rate", m.learning_rate}, {"layers", m.layers}, {"loss", m.loss}};
  }
  static Model decode(const sluice::Value& v) {
    const auto& m = v.get<sluice::Map>();
    return {m.find("learning_rate")->get<double>(),
            static_cast<int>(m.find("layers")->get<std::int64_t>()), m.find("loss")->get<double>()};
  }
};

// A noisy sine: the "dataset".
std::vector<double> make_data(int n) {
  std::vector<double> xs(n);
  for (int i = 0; i < n; ++i) xs[i] = std::sin(0.1 * i) + 0.01 * ((i * 7919) % 13);
  return xs;
}

// "Training": gradient steps of a tiny model; the loss depends on the hyper-parameters.
Model train_model(const std::vector<double>& data, double learning_rate, int layers) {
  double w = 0, loss = 0;
  for (int epoch = 0; epoch < 20 * layers; ++epoch) {
    double grad = 0;
    loss = 0;
    for (double x : data) {
      const double err = w * x - x;
      grad += err * x;
      loss += err * err;
    }
    w -= learning_rate * grad / static_cast<double>(data.size());
  }
  return {learning_rate, layers, loss / static_cast<double>(data.size())};
}

Model pick_best(const std::vector<Model>& models) {
  Model best = models.front();
  for (const Model& m : models)
    if (m.loss < best.loss) best = m;
  // The attempt's log (`sluice logs RUN pick_best`) on every backend; std::cout would
  // reach it only where each task has a process of its own.
  sluice::log() << "best of " << models.size() << ": learning_rate=" << best.learning_rate
                << " layers=" << best.layers << '\n';
  return best;
}

int main(int argc, char** argv) {
  auto data_t = sluice::task("make_data", "0.0.1", &make_data);
  auto train_t = sluice::task("train_model", "0.0.1", &train_model);
  auto pick_t = sluice::task("pick_best", "0.0.1", &pick_best);

  sluice::Flow flow("train_and_pick_model", "examples");
  auto data = flow.call(data_t, 500);
  const std::vector<std::pair<double, int>> params = {{0.5, 1}, {0.1, 2}, {0.05, 3}, {0.01, 4}};
  std::vector<sluice::Future<Model>> models;
  for (auto [lr, layers] : params)
    models.push_back(flow.call(sluice::opts{.executor = "gpu"}, train_t, data, lr, layers));
  flow.call(pick_t, flow.gather(models));
  return sluice::main(argc, argv, flow);
}
