// A Communicator that runs commands with /bin/sh on this machine, inside a
// directory standing in for the machine's root file system.
#pragma once
#include <filesystem>

#include "lcake/sdk.hpp"

namespace localdir {

class LocalShell : public lcake::Communicator {
 public:
  LocalShell(std::filesystem::path root, const lcake::CancelToken& cancel) : root_(std::move(root)), cancel_(cancel) {}
  int run(const std::string& command, const OutputFn& on_output, std::chrono::seconds timeout) override;
  void upload(const std::filesystem::path& local, const std::string& remote) override;
  void download(const std::string& remote, const std::filesystem::path& local) override;
  std::filesystem::path map(const std::string& remote) const;

 private:
  std::filesystem::path root_;
  const lcake::CancelToken& cancel_;
};

}  // namespace localdir
