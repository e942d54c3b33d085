// `lcake completion bash|zsh|fish` prints a completion script; the scripts ask
// the hidden `lcake __complete WHAT [OPTIONS]` for names that depend on the
// config (targets, sites, variants and layers), so they are always current.
#include <cstdio>
#include <iostream>
#include <set>

#include "commands.h"
#include "config/config_files.h"
#include "lcake/errors.hpp"
#include "options.h"

namespace lcake::cli {
namespace {

// Each script: the subcommand is the first word when it is not an option; option
// names come from `lcake CMD --help`; values of --target, --site and --only from
// `lcake __complete`, given the config options typed so far.
const char* const kBash = R"SH(# bash completion for lcake (lcake completion bash)
_lcake_context() {
  local i
  for ((i = 1; i + 1 < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      --config-dir|--target|-t|--site|--overlay|--pipeline|-p|--var|--var-file|--set)
        printf '%s\n' "${COMP_WORDS[i]}" "${COMP_WORDS[i+1]}";;
    esac
  done
}
_lcake() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} lcake=${COMP_WORDS[0]}
  local cmd=build words IFS=$'\n'
  local -a context=($(_lcake_context))
  if ((COMP_CWORD == 1)) && [[ $cur != -* ]]; then
    COMPREPLY=($(compgen -W "$("$lcake" __complete commands 2>/dev/null)" -- "$cur"))
    return
  fi
  [[ ${COMP_WORDS[1]} != -* ]] && cmd=${COMP_WORDS[1]}
  case $prev in
    --target|-t) words=$("$lcake" __complete targets "${context[@]}" 2>/dev/null);;
    --site) words=$("$lcake" __complete sites "${context[@]}" 2>/dev/null);;
    --only) words=$("$lcake" __complete only "${context[@]}" 2>/dev/null);;
    --on-error) words=$'cleanup\nabort';;
    --log-level) words=$'trace\ndebug\ninfo\nwarn\nerror';;
    --overlay|--var-file|--pipeline|-p|--manifest) COMPREPLY=($(compgen -f -- "$cur")); return;;
    --config-dir|--state-dir|--plugin-path) COMPREPLY=($(compgen -d -- "$cur")); return;;
    --var|--set|--parallel) return;;
    *)
      if [[ $cur == -* ]]; then
        words=$("$lcake" "$cmd" --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u)
      else
        words=$("$lcake" __complete arguments "$cmd" 2>/dev/null)
        [[ $cmd == plugins && $prev == inspect ]] && { COMPREPLY=($(compgen -f -- "$cur")); return; }
      fi;;
  esac
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _lcake lcake
)SH";

const char* const kZsh = R"SH(#compdef lcake
# zsh completion for lcake (lcake completion zsh)
_lcake() {
  local cur=${words[CURRENT]} prev=${words[CURRENT-1]} lcake=${words[1]} cmd=build i
  local -a context candidates
  for ((i = 2; i + 1 < CURRENT; i++)); do
    case ${words[i]} in
      --config-dir|--target|-t|--site|--overlay|--pipeline|-p|--var|--var-file|--set)
        context+=(${words[i]} ${words[i+1]});;
    esac
  done
  if ((CURRENT == 2)) && [[ $cur != -* ]]; then
    candidates=(${(f)"$($lcake __complete commands 2>/dev/null)"})
    compadd -a candidates
    return
  fi
  [[ ${words[2]} != -* ]] && cmd=${words[2]}
  case $prev in
    --target|-t) candidates=(${(f)"$($lcake __complete targets $context 2>/dev/null)"});;
    --site) candidates=(${(f)"$($lcake __complete sites $context 2>/dev/null)"});;
    --only) candidates=(${(f)"$($lcake __complete only $context 2>/dev/null)"});;
    --on-error) candidates=(cleanup abort);;
    --log-level) candidates=(trace debug info warn error);;
    --overlay|--var-file|--pipeline|-p|--manifest) _files; return;;
    --config-dir|--state-dir|--plugin-path) _directories; return;;
    --var|--set|--parallel) return;;
    *)
      if [[ $cur == -* ]]; then
        candidates=(${(f)"$($lcake $cmd --help 2>/dev/null | grep -o -- '--[a-z][a-z-]*' | sort -u)"})
      elif [[ $cmd == plugins && $prev == inspect ]]; then
        _files; return
      else
        candidates=(${(f)"$($lcake __complete arguments $cmd 2>/dev/null)"})
      fi;;
  esac
  compadd -a candidates
}
if [[ ${funcstack[1]} == _lcake ]]; then _lcake "$@"; else compdef _lcake lcake; fi
)SH";

const char* const kFish = R"SH(# fish completion for lcake (lcake completion fish)
function __lcake_context
    set -l words (commandline -opc)
    set -l n (count $words)
    for i in (seq 2 $n)
        switch $words[$i]
            case --config-dir --target -t --site --overlay --pipeline -p --var --var-file --set
                set -l j (math $i + 1)
                if test $j -le $n
                    printf '%s\n' $words[$i] $words[$j]
                end
        end
    end
end
function __lcake_command
    set -l words (commandline -opc)
    if test (count $words) -ge 2; and not string match -q -- '-*' $words[2]
        echo $words[2]
    else
        echo build
    end
end
function __lcake_options
    set -l words (commandline -opc)
    $words[1] (__lcake_command) --help 2>/dev/null | string match -ar -- '--[a-z][a-z-]*' | sort -u
end
function __lcake_ask
    set -l words (commandline -opc)
    $words[1] __complete $argv (__lcake_context) 2>/dev/null
end
complete -c lcake -f
complete -c lcake -n 'test (count (commandline -opc)) -eq 1' -a '(__lcake_ask commands)'
complete -c lcake -n 'test (count (commandline -opc)) -ge 2' -a '(__lcake_ask arguments (__lcake_command))'
complete -c lcake -n 'string match -q -- "-*" (commandline -ct)' -a '(__lcake_options)'
complete -c lcake -s t -l target -x -a '(__lcake_ask targets)'
complete -c lcake -l site -x -a '(__lcake_ask sites)'
complete -c lcake -l only -x -a '(__lcake_ask only)'
complete -c lcake -l on-error -x -a 'cleanup abort'
complete -c lcake -l log-level -x -a 'trace debug info warn error'
complete -c lcake -l overlay -l var-file -l manifest -s p -l pipeline -r -F
complete -c lcake -l config-dir -l state-dir -l plugin-path -x -a '(__fish_complete_directories)'
)SH";

// What a subcommand takes as its first plain argument.
std::vector<std::string> arguments_of(const std::string& command) {
  if (command == "config") return {"show", "validate", "schema"};
  if (command == "plugins") return {"list", "inspect"};
  if (command == "completion") return {"bash", "zsh", "fish"};
  return {};
}

}  // namespace

int cmd_completion(const std::vector<std::string>& args) {
  if (args.size() == 1 && (args[0] == "--help" || args[0] == "-h")) {
    std::cout << "usage: lcake completion bash|zsh|fish\n\n"
                 "Prints a completion script. Installed copies (cmake --install) load by themselves;\n"
                 "otherwise: bash `source <(lcake completion bash)`, zsh `source <(lcake completion zsh)`\n"
                 "(after compinit), fish `lcake completion fish | source`.\n";
    return 0;
  }
  std::string shell = args.size() == 1 ? args[0] : "";
  if (shell == "bash") std::fputs(kBash, stdout);
  else if (shell == "zsh") std::fputs(kZsh, stdout);
  else if (shell == "fish") std::fputs(kFish, stdout);
  else throw InputError("lcake completion: say bash, zsh or fish (e.g. `source <(lcake completion bash)`)");
  return 0;
}

// Never fails loudly: a completion that cannot load the config offers nothing.
int cmd_complete(const std::vector<std::string>& args) {
  if (args.empty()) return 0;
  const std::string what = args[0];
  std::vector<std::string> rest(args.begin() + 1, args.end());
  try {
    if (what == "commands") {
      for (const auto& c : commands())
        if (!c.hidden) std::printf("%s\n", c.name);
      return 0;
    }
    if (what == "arguments") {
      for (const auto& a : arguments_of(rest.empty() ? "" : rest[0])) std::printf("%s\n", a.c_str());
      return 0;
    }
    CommonOptions o;
    po::options_description desc;
    desc.add(config_options(o));
    po::variables_map vm;
    po::store(po::command_line_parser(rest).options(desc).allow_unregistered().run(), vm);
    po::notify(vm);
    finish_options(o, what == "only");
    if (what == "targets" || what == "sites") {
      for (const auto& n : core::available_configs(what, o.load.config_dirs)) std::printf("%s\n", n.c_str());
      return 0;
    }
    if (what == "only") {
      auto resolved = core::resolve_config(core::load_config(o.load));
      for (const auto& v : resolved.variants) {
        std::printf("%s\n", v.name.c_str());
        for (const auto& l : v.layers) std::printf("%s/%s\n", v.name.c_str(), l.name.c_str());
      }
    }
  } catch (const std::exception&) {
  }
  return 0;
}

}  // namespace lcake::cli
