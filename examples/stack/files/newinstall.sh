#!/bin/sh
# newinstall.sh: bootstraps an empty software stack, like the original
# newinstall.sh did before `eups distrib install` could run. Run once, as root:
#   STACK_ROOT=/opt/lsst/software/stack sh newinstall.sh
# (STACK_ROOT defaults to the current directory.) It writes:
#   loadstack.sh                 source it: sets STACK_ROOT, EUPS_PATH, PATH, and `setup`
#   bin/eups-distrib-install     PRODUCT... TAG: installs from the distribution server
#   bin/eups-setup-env           PRODUCT [TAG]: the shell code `setup` evaluates
#   bin/eups-list                the installed products and their tags
# Needs only a POSIX sh and busybox-level tools (no bash, no network).
set -eu
root=${STACK_ROOT:-$(pwd)}
die() { echo "newinstall.sh: $*" >&2; exit 1; }
case $root in /*) ;; *) die "STACK_ROOT must be an absolute path, got '$root'" ;; esac
case $root in *"'"* | *" "*) die "STACK_ROOT must not contain quotes or spaces: '$root'" ;; esac

# The OS prerequisites (the original installed these with Puppet).
for tool in awk sed cp mkdir chmod cat rm dirname basename; do
  command -v "$tool" >/dev/null 2>&1 || die "the tool '$tool' is missing from PATH; install busybox"
done

mkdir -p "$root/bin" "$root/products" "$root/installed" "$root/distrib"

{
  echo "# loadstack.sh: source it to use the stack (written by newinstall.sh)."
  echo "STACK_ROOT='$root'"
  cat <<'EOF'
EUPS_PATH=$STACK_ROOT
case ":$PATH:" in *":$STACK_ROOT/bin:"*) ;; *) PATH=$STACK_ROOT/bin:$PATH ;; esac
export STACK_ROOT EUPS_PATH PATH
# setup PRODUCT [TAG]: puts PRODUCT and what it needs on PATH, sets PRODUCT_DIR.
setup() {
  _loadstack_env=$("$STACK_ROOT/bin/eups-setup-env" "$@") || return 1
  eval "$_loadstack_env"
  unset _loadstack_env
}
EOF
} >"$root/loadstack.sh"

cat >"$root/bin/eups-distrib-install" <<'EOF'
#!/bin/sh
# eups-distrib-install PRODUCT... TAG
# Installs each PRODUCT and, first, the products its ups/PRODUCT.table
# requires, from the distribution server directory ($EUPS_DISTRIB_SERVER,
# default $STACK_ROOT/distrib: one directory per product) into
# $STACK_ROOT/products/PRODUCT/TAG, and records TAG in
# $STACK_ROOT/installed/PRODUCT/TAG and .../current.
set -eu
root=${STACK_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
server=${EUPS_DISTRIB_SERVER:-$root/distrib}
[ $# -ge 2 ] || { echo "usage: eups-distrib-install PRODUCT... TAG" >&2; exit 2; }
for tag; do :; done
case $tag in "" | */* | .*) echo "eups-distrib-install: bad tag '$tag'" >&2; exit 2 ;; esac
done_list=" "

install_product() {
  case $1 in "" | *[!A-Za-z0-9_]*) echo "eups-distrib-install: bad product name '$1'" >&2; exit 2 ;; esac
  case $done_list in *" $1 "*) return 0 ;; esac
  done_list="$done_list$1 "
  if [ ! -f "$server/$1/ups/$1.table" ]; then
    echo "eups-distrib-install: product '$1' is not on the distribution server $server" \
      "(it has: $(cd "$server" && echo *))" >&2
    exit 1
  fi
  for dep in $(sed -n 's/^[[:space:]]*setupRequired(\([A-Za-z0-9_]*\)).*/\1/p' "$server/$1/ups/$1.table"); do
    install_product "$dep"
  done
  dest=$root/products/$1/$tag
  rm -rf "$dest"
  mkdir -p "$dest" "$root/installed/$1"
  cp -R "$server/$1/." "$dest/"
  if [ -d "$dest/bin" ]; then chmod 755 "$dest"/bin/*; fi
  echo "$1 $tag $dest" >"$root/installed/$1/$tag"
  echo "$tag" >"$root/installed/$1/current"
  echo "eups-distrib-install: installed $1 $tag"
}

n=$#
while [ "$n" -gt 1 ]; do
  install_product "$1"
  shift
  n=$((n - 1))
done
EOF

cat >"$root/bin/eups-setup-env" <<'EOF'
#!/bin/sh
# eups-setup-env PRODUCT [TAG]
# Prints the shell code that sets up PRODUCT and, first, what its
# ups/PRODUCT.table requires: PRODUCT_DIR, SETUP_PRODUCT and PATH. Each
# product at TAG, else at the tag recorded as current.
set -eu
root=${STACK_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: setup PRODUCT [TAG]" >&2; exit 2; }
tag=${2:-}
path=$PATH
done_list=" "

setup_product() {
  case $1 in "" | *[!A-Za-z0-9_]*) echo "setup: bad product name '$1'" >&2; exit 2 ;; esac
  case $done_list in *" $1 "*) return 0 ;; esac
  done_list="$done_list$1 "
  t=$tag
  if [ -z "$t" ]; then
    t=$(cat "$root/installed/$1/current" 2>/dev/null) ||
      { echo "setup: product '$1' is not installed in $root (run: eups-distrib-install $1 TAG)" >&2; exit 1; }
  fi
  if [ ! -f "$root/products/$1/$t/ups/$1.table" ]; then
    echo "setup: product '$1' is not installed at tag '$t' in $root" >&2
    exit 1
  fi
  for dep in $(sed -n 's/^[[:space:]]*setupRequired(\([A-Za-z0-9_]*\)).*/\1/p' "$root/products/$1/$t/ups/$1.table"); do
    setup_product "$dep"
  done
  [ -n "$tag" ] || t=$(cat "$root/installed/$1/current")
  dir=$root/products/$1/$t
  name=$(echo "$1" | awk '{ print toupper($0) }')
  echo "export ${name}_DIR='$dir' SETUP_${name}='$1 $t'"
  if [ -d "$dir/bin" ]; then path=$dir/bin:$path; fi
}

setup_product "$1"
echo "export PATH='$path'"
EOF

cat >"$root/bin/eups-list" <<'EOF'
#!/bin/sh
# eups-list: each installed product, its tags, and which one is current.
set -eu
root=${STACK_ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
for dir in "$root"/installed/*/; do
  [ -d "$dir" ] || continue
  product=$(basename "$dir")
  current=$(cat "$dir/current" 2>/dev/null || true)
  for record in "$dir"*; do
    t=$(basename "$record")
    [ "$t" = current ] && continue
    if [ "$t" = "$current" ]; then echo "$product $t current"; else echo "$product $t"; fi
  done
done
EOF

chmod 755 "$root"/bin/eups-distrib-install "$root"/bin/eups-setup-env "$root"/bin/eups-list
echo "newinstall.sh: bootstrapped $root"
echo "newinstall.sh: next: . $root/loadstack.sh && eups-distrib-install PRODUCT TAG"
