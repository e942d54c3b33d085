# zsh -f zsh_complete.zsh FPATH_DIR LINE: the candidates zsh's own completion system offers for
# LINE, as a user pressing Tab at the end of it would get them. An interactive zsh runs in a
# pseudo-terminal (zsh/zpty) with compinit loading FPATH_DIR/_lcake; compadd is wrapped so that the
# matches it adds (after zsh's own prefix matching, `compadd -O`) are printed, one per line.
zmodload zsh/zpty || exit 3
dir=$1 line=$2
zpty z zsh -f -i
zpty -w z "PS1='%% '; fpath=($dir \$fpath); autoload -Uz compinit; compinit -u -d $dir/zcompdump"
zpty -w z 'compadd() { local -a __hits; builtin compadd -O __hits "$@"; (( $#__hits )) && print -r -l -- "" "<cand>"${^__hits}; builtin compadd "$@"; }'
zpty -w z 'zstyle ":completion:*" menu no; bindkey "^I" complete-word'
zpty -w z "print -r -- '<re''ady>'"
zpty -r z chunk '*<ready>*' || exit 4
zpty -n -w z "$line"$'\t'
out=
for i in {1..50}; do
  sleep 0.1
  while zpty -r -t z chunk; do out+=$chunk; done
  [[ $out == *'<cand>'* ]] && { sleep 0.3; while zpty -r -t z chunk; do out+=$chunk; done; break; }
done
zpty -d z
print -r -- "$out" | tr -d '\r' | sed -n 's/^<cand>\([^[:cntrl:]]*\).*/\1/p'
