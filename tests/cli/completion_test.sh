#!/bin/bash
# `lcake completion bash|zsh|fish` in the real shells: the scripts are loaded the way a user loads
# them and asked to complete partial command lines; the candidates come from the config on disk
# (targets, sites, variants and layers of the bundled examples), not from the test.
#
# usage: completion_test.sh BUILD_DIR SOURCE_DIR
set -uo pipefail
build=$1 src=$2
export PATH="$build/bin:$PATH"
fails=0
check() {  # check WHAT EXPECTED ACTUAL  (EXPECTED and ACTUAL: newline-separated, compared sorted)
  local want got
  want=$(printf '%s\n' "$2" | sort -u) got=$(printf '%s\n' "$3" | sed '/^$/d' | sort -u)
  if [ "$want" = "$got" ]; then echo "ok: $1"; else
    echo "FAIL: $1"; echo "  want: $(echo $want)"; echo "  got:  $(echo $got)"; fails=$((fails + 1)); fi
}
targets=$(ls "$src/configs/targets" | sed 's/\.json$//')

# ---- bash: the function `complete` registered, called as readline would ----
source <(lcake completion bash)
complete -p lcake | grep -q -- '-F _lcake' || { echo "FAIL: bash: complete -p lcake"; fails=$((fails + 1)); }
bash_complete() {  # words of the line; the last is the word being completed
  COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
  _lcake lcake "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  printf '%s\n' "${COMPREPLY[@]}"
}
check "bash: subcommands" "$(printf 'plan\nplugins\npublish')" "$(bash_complete lcake p)"
check "bash: hidden helper not offered" "" "$(bash_complete lcake __c)"
check "bash: every target" "$targets" "$(bash_complete lcake --target '')"
check "bash: targets after a subcommand" "$(printf 'qemu\nqemu-openstack')" \
  "$(bash_complete lcake plan --config-dir "$src/configs" -t q)"
check "bash: sites from --config-dir" "example-site" "$(bash_complete lcake --config-dir "$src/examples" --site ex)"
check "bash: --only from the config" \
  "$(printf 'tiny-dropbear\ntiny-dropbear/base\ntiny-dropbear/newinstall\ntiny-dropbear/stack')" \
  "$(bash_complete lcake build --config-dir "$src/configs" --target qemu --only tiny-d)"
check "bash: --only without a target offers nothing" "" "$(LCAKE_TARGET= bash_complete lcake build --only t)"
check "bash: options of the subcommand" "$(printf -- '--force')" "$(bash_complete lcake build --fo)"
check "bash: options of gc" "" "$(bash_complete lcake gc --fo)"
check "bash: config actions" "schema" "$(bash_complete lcake config sc)"
check "bash: completion shells" "$(printf 'bash\nzsh\nfish')" "$(bash_complete lcake completion '')"
check "bash: --on-error" "abort" "$(bash_complete lcake --on-error a)"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
touch "$tmp/over.json" "$tmp/other.txt"
check "bash: --overlay completes files" "$tmp/over.json" "$(bash_complete lcake --overlay "$tmp/ov")"

# ---- fish: `complete -C` is fish's own completion of a command line ----
if command -v fish >/dev/null; then
  fish_complete() { fish --no-config -c "lcake completion fish | source; complete -C '$1'" | cut -f1; }
  check "fish: subcommands" "$(printf 'plan\nplugins\npublish')" "$(fish_complete 'lcake p')"
  check "fish: targets" "$(printf 'qemu\nqemu-openstack')" "$(fish_complete "lcake --config-dir $src/configs --target q")"
  check "fish: --only from the config" \
    "$(printf 'tiny-openssh\ntiny-openssh/base\ntiny-openssh/newinstall\ntiny-openssh/stack')" \
    "$(fish_complete "lcake build --config-dir $src/configs --target qemu --only tiny-o")"
  check "fish: options of the subcommand" "--force" "$(fish_complete 'lcake build --fo')"
else
  echo "skipped: fish is not installed (scripts/setup-deps.sh --tests)"
fi

# ---- zsh: the script parses, registers itself with compinit, and completes lines typed at a prompt ----
if command -v zsh >/dev/null; then
  lcake completion zsh > "$tmp/_lcake"
  zsh -n "$tmp/_lcake" || { echo "FAIL: zsh -n _lcake"; fails=$((fails + 1)); }
  got=$(zsh -f -c "fpath=($tmp \$fpath); autoload -Uz compinit; compinit -u -d $tmp/zcompdump; print -r -- \$_comps[lcake]")
  check "zsh: compinit maps lcake to _lcake" "_lcake" "$got"
  if zsh -f -c 'zmodload zsh/zpty' 2>/dev/null; then
    zsh_complete() { zsh -f "$src/tests/cli/zsh_complete.zsh" "$tmp" "$1"; }
    check "zsh: subcommands" "$(printf 'plan\nplugins\npublish')" "$(zsh_complete 'lcake p')"
    check "zsh: hidden helper not offered" "" "$(zsh_complete 'lcake __c')"
    check "zsh: targets" "$(printf 'qemu\nqemu-openstack')" "$(zsh_complete "lcake --config-dir $src/configs --target q")"
    check "zsh: --only from the config" \
      "$(printf 'tiny-openssh\ntiny-openssh/base\ntiny-openssh/newinstall\ntiny-openssh/stack')" \
      "$(zsh_complete "lcake build --config-dir $src/configs --target qemu --only tiny-o")"
    check "zsh: options of the subcommand" "--force" "$(zsh_complete 'lcake build --fo')"
    check "zsh: completion shells" "$(printf 'bash\nzsh\nfish')" "$(zsh_complete 'lcake completion ')"
  else
    echo "skipped: zsh's zsh/zpty module is missing, so zsh completion is not driven interactively"
  fi
else
  echo "skipped: zsh is not installed (scripts/setup-deps.sh --tests)"
fi

# ---- a shell lcake has no script for: one line, exit 2 ----
err=$(lcake completion tcsh 2>&1 >/dev/null); rc=$?
check "completion tcsh: exit 2 and one line" "2 1" "$rc $(printf '%s\n' "$err" | wc -l)"

[ $fails -eq 0 ] && echo "all completion checks passed" || echo "$fails completion check(s) failed"
exit $((fails > 0))
