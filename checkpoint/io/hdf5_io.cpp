// File: checkpoint/io/hdf5_io.cpp
#include "checkpoint/io/hdf5_io.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace albion::checkpoint {

void silence_hdf5_errors() {
  static const bool silenced = [] {
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
    return true;
  }();
  (void)silenced;
}


void write_string_attribute(hid_t object, const char* name, const std::string& value,
                            const std::string& path) {
  H5Handle type(ALBION_H5_CHECK(H5Tcopy(H5T_C_S1), SystemError, path), H5Tclose);
  ALBION_H5_CHECK(H5Tset_size(type.get(), std::max<std::size_t>(value.size(), 1)), SystemError, path);
  H5Handle space(ALBION_H5_CHECK(H5Screate(H5S_SCALAR), SystemError, path), H5Sclose);
  H5Handle attribute(ALBION_H5_CHECK(H5Acreate2(object, name, type.get(), space.get(), H5P_DEFAULT,
                                                H5P_DEFAULT),
                                     SystemError, path),
                     H5Aclose);
  std::string padded = value.empty() ? std::string(1, '\0') : value;
  ALBION_H5_CHECK(H5Awrite(attribute.get(), type.get(), padded.data()), SystemError, path);
}

void write_integer_attribute(hid_t object, const char* name, std::int64_t value,
                             const std::string& path) {
  H5Handle space(ALBION_H5_CHECK(H5Screate(H5S_SCALAR), SystemError, path), H5Sclose);
  H5Handle attribute(ALBION_H5_CHECK(H5Acreate2(object, name, H5T_STD_I64LE, space.get(),
                                                H5P_DEFAULT, H5P_DEFAULT),
                                     SystemError, path),
                     H5Aclose);
  ALBION_H5_CHECK(H5Awrite(attribute.get(), H5T_NATIVE_INT64, &value), SystemError, path);
}

std::string read_string_attribute(hid_t object, const char* name, const std::string& path) {
  ALBION_CHECK_AS(IntegrityError, H5Aexists(object, name) > 0, path, ": attribute '", name,
                  "' is missing");
  H5Handle attribute(ALBION_H5_CHECK(H5Aopen(object, name, H5P_DEFAULT), IntegrityError, path),
                     H5Aclose);
  H5Handle type(ALBION_H5_CHECK(H5Aget_type(attribute.get()), IntegrityError, path), H5Tclose);
  ALBION_CHECK_AS(IntegrityError, H5Tget_class(type.get()) == H5T_STRING &&
                                      H5Tis_variable_str(type.get()) == 0,
                  path, ": attribute '", name, "' is not a fixed-length string");
  std::size_t size = H5Tget_size(type.get());
  ALBION_CHECK_AS(IntegrityError, size > 0 && size < (64u << 20), path, ": attribute '", name,
                  "' has an implausible size");
  std::string value(size, '\0');
  ALBION_H5_CHECK(H5Aread(attribute.get(), type.get(), value.data()), IntegrityError, path);
  value.resize(std::strlen(value.c_str()));
  return value;
}

std::int64_t read_integer_attribute(hid_t object, const char* name, const std::string& path) {
  ALBION_CHECK_AS(IntegrityError, H5Aexists(object, name) > 0, path, ": attribute '", name,
                  "' is missing");
  H5Handle attribute(ALBION_H5_CHECK(H5Aopen(object, name, H5P_DEFAULT), IntegrityError, path),
                     H5Aclose);
  std::int64_t value = 0;
  ALBION_H5_CHECK(H5Aread(attribute.get(), H5T_NATIVE_INT64, &value), IntegrityError, path);
  return value;
}

// A 1-D contiguous dataset, so its bytes sit at one file offset readers can map.
H5Handle create_contiguous_dataset(hid_t file, const char* name, hid_t stored_type, std::uint64_t count,
                                   const std::string& path) {
  hsize_t dims[1] = {count};
  H5Handle space(ALBION_H5_CHECK(H5Screate_simple(1, dims, nullptr), SystemError, path), H5Sclose);
  H5Handle properties(ALBION_H5_CHECK(H5Pcreate(H5P_DATASET_CREATE), SystemError, path), H5Pclose);
  ALBION_H5_CHECK(H5Pset_layout(properties.get(), H5D_CONTIGUOUS), SystemError, path);
  ALBION_H5_CHECK(H5Pset_alloc_time(properties.get(), H5D_ALLOC_TIME_EARLY), SystemError, path);
  // Never fill: the caller writes every element, and zeros first would cost a pass over the file.
  ALBION_H5_CHECK(H5Pset_fill_time(properties.get(), H5D_FILL_TIME_NEVER), SystemError, path);
  // No modification times: the same data must give byte-identical files.
  ALBION_H5_CHECK(H5Pset_obj_track_times(properties.get(), false), SystemError, path);
  return H5Handle(ALBION_H5_CHECK(H5Dcreate2(file, name, stored_type, space.get(), H5P_DEFAULT, properties.get(),
                                             H5P_DEFAULT),
                                  SystemError, path),
                  H5Dclose);
}

void write_contiguous_vector(hid_t file, const char* name, hid_t stored_type, hid_t memory_type,
                             const void* data, std::uint64_t count, const std::string& path) {
  H5Handle dataset = create_contiguous_dataset(file, name, stored_type, count, path);
  if (count > 0) {
    ALBION_H5_CHECK(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data),
                    SystemError, path);
  }
}


// Opens a 1-D dataset, checks its stored type and layout, returns its length and file offset.
ContiguousDataset locate_contiguous(hid_t file, const char* name, hid_t expected_type, const std::string& path) {
  ALBION_CHECK_AS(IntegrityError, H5Lexists(file, name, H5P_DEFAULT) > 0, path, ": dataset '",
                  name, "' is missing");
  H5Handle dataset(ALBION_H5_CHECK(H5Dopen2(file, name, H5P_DEFAULT), IntegrityError, path),
                   H5Dclose);
  H5Handle type(ALBION_H5_CHECK(H5Dget_type(dataset.get()), IntegrityError, path), H5Tclose);
  ALBION_CHECK_AS(IntegrityError, H5Tequal(type.get(), expected_type) > 0, path, ": dataset '",
                  name, "' has an unexpected element type");
  H5Handle space(ALBION_H5_CHECK(H5Dget_space(dataset.get()), IntegrityError, path), H5Sclose);
  ALBION_CHECK_AS(IntegrityError, H5Sget_simple_extent_ndims(space.get()) == 1, path,
                  ": dataset '", name, "' is not one-dimensional");
  hsize_t dims[1] = {0};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  H5Handle properties(ALBION_H5_CHECK(H5Dget_create_plist(dataset.get()), IntegrityError, path),
                      H5Pclose);
  ALBION_CHECK_AS(IntegrityError, H5Pget_layout(properties.get()) == H5D_CONTIGUOUS &&
                                      H5Pget_nfilters(properties.get()) == 0,
                  path, ": dataset '", name, "' is not stored contiguously without filters");
  ContiguousDataset located;
  located.count = dims[0];
  located.offset = H5Dget_offset(dataset.get());
  ALBION_CHECK_AS(IntegrityError, located.count == 0 || located.offset != HADDR_UNDEF, path,
                  ": dataset '", name, "' has no storage");
  return located;
}


MappedFile::MappedFile(const std::string& path, Access access) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ALBION_CHECK_AS(UsageError, fd >= 0, path, ": cannot open: ", std::strerror(errno));
  struct stat info {};
  fstat(fd, &info);
  size_ = static_cast<std::size_t>(info.st_size);
  if (size_ == 0) {
    ::close(fd);
    throw IntegrityError(str_cat(path, ": empty file"));
  }
  void* mapping = mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  ALBION_CHECK_AS(SystemError, mapping != MAP_FAILED, path, ": mmap failed: ", std::strerror(errno));
  madvise(mapping, size_, access == Access::kRandom ? MADV_RANDOM : MADV_SEQUENTIAL);
  data_ = static_cast<const std::uint8_t*>(mapping);
}

MappedFile::~MappedFile() {
  if (data_ != nullptr) munmap(const_cast<std::uint8_t*>(data_), size_);
}

}  // namespace albion::checkpoint
