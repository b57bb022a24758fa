#!/usr/bin/env bash
# check-tree.sh asserts that the repository holds no build output: no file
# that git tracks is an executable or object file (ELF), an archive of Go
# packages, or larger than 1 MiB. A binary committed by mistake costs every
# clone its size for ever and goes stale at once.
#
# Prints one line per offending file and exits 1 if there is any.
set -euo pipefail

cd "$(dirname "$0")/.."

bad=0
while IFS= read -r -d '' f; do
	[[ -f $f && ! -L $f ]] || continue
	magic=$(head -c 8 "$f" | od -An -c | tr -d ' \n')
	size=$(stat -c %s "$f")
	why=""
	case $magic in
	177ELF*) why="an ELF binary" ;;
	"!<arch>"*) why="an archive (.a)" ;;
	esac
	if [[ -z $why ]] && ((size > 1 << 20)); then
		why="larger than 1 MiB ($size bytes)"
	fi
	if [[ -n $why ]]; then
		echo "check-tree: $f is $why: build output does not belong in the repository"
		bad=$((bad + 1))
	fi
done < <(git ls-files -z)

if ((bad > 0)); then
	exit 1
fi
echo "check-tree: ok"
