// The Communicator of a container: commands through the Engine API's exec,
// files through its archive endpoints.
#pragma once
#include <string>

#include "engine_client.h"
#include "lcake/communicator.hpp"

namespace lcake::docker {

class ExecCommunicator : public lcake::Communicator {
 public:
  // `defaults` (user, workdir, env) apply to every command; its timeout is ignored.
  ExecCommunicator(EngineClient engine, std::string container, ExecOptions defaults)
      : engine_(std::move(engine)), container_(std::move(container)), defaults_(std::move(defaults)) {}

  int run(const std::string& command, const OutputFn& on_output, std::chrono::seconds timeout) override;
  // A file goes to `remote` (or into it, when `remote` is a directory or ends in
  // '/'); a directory is copied as `remote`. Missing parents are created.
  void upload(const std::filesystem::path& local, const std::string& remote) override;
  void download(const std::string& remote, const std::filesystem::path& local) override;

 private:
  void make_dir(const std::string& dir);
  // Kills the process group whose leader wrote `pid_file`; never throws.
  void kill_group(const std::string& pid_file) noexcept;
  EngineClient engine_;
  std::string container_;
  ExecOptions defaults_;
};

}  // namespace lcake::docker
