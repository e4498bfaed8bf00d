// Writing packed files fast: the newest file format (compact link storage, no
// backward-compatible superblock), compact datasets, no attributes per task group, and
// provenance as one table instead of attributes on 10 objects per task.
#include "sluice/engine/packed_file.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "artifacts/h5_handle.hpp"
#include "artifacts/hdf5_util.hpp"
#include "sluice/value.hpp"

namespace sluice {
namespace {

struct ProvenanceRecord {
  const char* task;
  std::uint32_t attempt;
  const char* host;
  std::int64_t started_us;
  std::int64_t ended_us;
  std::int32_t exit_status;
  const char* command;
  const char* inputs;
};

Expected<void> write_provenance(hid_t file, const std::vector<ProvenanceRow>& rows) {
  h5::Datatype str(hdf5_detail::make_utf8_vlen());
  h5::Datatype t(H5Tcreate(H5T_COMPOUND, sizeof(ProvenanceRecord)));
  H5Tinsert(t.get(), "task", HOFFSET(ProvenanceRecord, task), str.get());
  H5Tinsert(t.get(), "attempt", HOFFSET(ProvenanceRecord, attempt), H5T_NATIVE_UINT32);
  H5Tinsert(t.get(), "host", HOFFSET(ProvenanceRecord, host), str.get());
  H5Tinsert(t.get(), "started_us", HOFFSET(ProvenanceRecord, started_us), H5T_NATIVE_INT64);
  H5Tinsert(t.get(), "ended_us", HOFFSET(ProvenanceRecord, ended_us), H5T_NATIVE_INT64);
  H5Tinsert(t.get(), "exit_status", HOFFSET(ProvenanceRecord, exit_status), H5T_NATIVE_INT32);
  H5Tinsert(t.get(), "command", HOFFSET(ProvenanceRecord, command), str.get());
  H5Tinsert(t.get(), "inputs", HOFFSET(ProvenanceRecord, inputs), str.get());
  std::vector<ProvenanceRecord> records;
  records.reserve(rows.size());
  for (const ProvenanceRow& r : rows)
    records.push_back({r.task.c_str(), r.attempt, r.host.c_str(), r.started_us, r.ended_us,
                       r.exit_status, r.command.c_str(), r.inputs.c_str()});
  const hsize_t n = records.size();
  h5::Dataspace space(H5Screate_simple(1, &n, nullptr));
  h5::Dataset ds(
      H5Dcreate2(file, "provenance", t.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!ds ||
      (n > 0 && H5Dwrite(ds.get(), t.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, records.data()) < 0) ||
      !ds.reset())
    return make_error(ErrorCode::kIo, "cannot write the provenance table");
  return {};
}

}  // namespace

struct PackedFileWriter::Impl {
  std::string path, tmp;
  h5::File file;

  Expected<void> fail(ErrorCode code, std::string why) {
    file.reset();
    ::unlink(tmp.c_str());
    return make_error(code, std::move(why));
  }
  ~Impl() {
    if (file) {
      file.reset();
      ::unlink(tmp.c_str());
    }
  }
};

PackedFileWriter::PackedFileWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PackedFileWriter::PackedFileWriter(PackedFileWriter&&) noexcept = default;
PackedFileWriter& PackedFileWriter::operator=(PackedFileWriter&&) noexcept = default;
PackedFileWriter::~PackedFileWriter() = default;

Expected<PackedFileWriter> PackedFileWriter::create(const std::string& path) {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->tmp = path + ".tmp-" + std::to_string(::getpid());
  h5::PropList fapl = hdf5_detail::no_file_locking_fapl();
  H5Pset_libver_bounds(fapl.get(), H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
  impl->file = h5::File(H5Fcreate(impl->tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()));
  if (!impl->file) return make_error(ErrorCode::kIo, "cannot create " + impl->tmp);
  return PackedFileWriter(std::move(impl));
}

Expected<void> PackedFileWriter::add_task(const std::string& name, const Map& values) {
  Impl& w = *impl_;
  if (!w.file) return make_error(ErrorCode::kConflict, w.tmp + " is closed");
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // per thread: the writer may change threads
  h5::Group g(H5Gcreate2(w.file.get(), name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  if (!g) return w.fail(ErrorCode::kIo, "cannot create group /" + name + " in " + w.tmp);
  if (auto ok = hdf5_detail::write_values_compact(g.get(), values, "/" + name); !ok)
    return w.fail(ok.error().code, ok.error().message);
  return {};
}

Expected<void> PackedFileWriter::remove_task(const std::string& name) {
  Impl& w = *impl_;
  if (!w.file) return make_error(ErrorCode::kConflict, w.tmp + " is closed");
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // per thread: the writer may change threads
  if (H5Ldelete(w.file.get(), name.c_str(), H5P_DEFAULT) < 0)
    return w.fail(ErrorCode::kIo, "cannot remove /" + name + " from " + w.tmp);
  return {};
}

Expected<void> PackedFileWriter::add_link(const std::string& name, const std::string& target) {
  Impl& w = *impl_;
  if (!w.file) return make_error(ErrorCode::kConflict, w.tmp + " is closed");
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // per thread: the writer may change threads
  if (H5Lcreate_external(target.c_str(), "/", w.file.get(), name.c_str(), H5P_DEFAULT,
                         H5P_DEFAULT) < 0)
    return w.fail(ErrorCode::kIo, "cannot link " + name + " in " + w.tmp);
  return {};
}

Expected<void> PackedFileWriter::add_provenance(const std::vector<ProvenanceRow>& rows) {
  Impl& w = *impl_;
  if (!w.file) return make_error(ErrorCode::kConflict, w.tmp + " is closed");
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // per thread: the writer may change threads
  if (auto ok = write_provenance(w.file.get(), rows); !ok)
    return w.fail(ok.error().code, ok.error().message);
  return {};
}

Expected<void> PackedFileWriter::commit() {
  Impl& w = *impl_;
  if (!w.file) return make_error(ErrorCode::kConflict, w.tmp + " is closed");
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);  // per thread: the writer may change threads
  if (!w.file.reset()) return w.fail(ErrorCode::kIo, "cannot write " + w.tmp);
  if (std::rename(w.tmp.c_str(), w.path.c_str()) != 0)
    return w.fail(ErrorCode::kIo, "cannot rename " + w.tmp + ": " + std::strerror(errno));
  return {};
}

Expected<void> write_packed_file(const std::string& path, const PackedFileContents& contents) {
  auto w = PackedFileWriter::create(path);
  if (!w) return tl::unexpected(w.error());
  for (const auto& [name, values] : contents.tasks)
    if (auto ok = w->add_task(name, *values); !ok) return ok;
  for (const auto& [name, target] : contents.links)
    if (auto ok = w->add_link(name, target); !ok) return ok;
  if (contents.provenance)
    if (auto ok = w->add_provenance(*contents.provenance); !ok) return ok;
  return w->commit();
}

}  // namespace sluice
