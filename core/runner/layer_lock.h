// Held while a layer is built, so two lcake processes sharing a state dir never
// build the same layer key into the same store dir at once.
#pragma once
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <filesystem>
#include <functional>

#include "lcake/context.hpp"
#include "lcake/errors.hpp"

namespace lcake::core {

class LayerLock {
 public:
  LayerLock(const std::filesystem::path& file, const lcake::CancelToken& cancel,
            const std::function<void()>& on_wait) {
    std::filesystem::create_directories(file.parent_path());
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw lcake::BuildError("cannot open lock file " + file.string());
    bool waited = false;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (!waited) on_wait(), waited = true;
      if (cancel.wait_for(std::chrono::milliseconds(200))) {
        ::close(fd_);
        throw lcake::Cancelled();
      }
    }
  }
  ~LayerLock() { ::close(fd_); }  // closing releases the lock
  LayerLock(const LayerLock&) = delete;
  LayerLock& operator=(const LayerLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace lcake::core
