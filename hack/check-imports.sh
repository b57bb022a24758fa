#!/usr/bin/env bash
# check-imports.sh asserts troupe's import direction: http -> actors -> runtime.
#
#   - gin (github.com/gin-gonic/gin, github.com/gin-contrib/...) only in http/...
#     and cmd/troupe, so the transport never leaks into the layers below it;
#   - protoactor-go never in runtime/..., so the runtime stays usable (and
#     testable) without an actor system;
#   - runtime/... imports nothing from actors/ or http/;
#   - actors/... imports nothing from http/;
#   - nothing imports cmd/... (binaries are leaves; a package under cmd/ may
#     import its own helpers under cmd/);
#   - the engine (cmd/troupe-engine) depends, directly or not,
#     on none of cobra, gin, protoactor-go, Prometheus and
#     go-containerregistry (image pulls are the daemon's): it is every
#     container's init, and each package linked in runs its init per start;
#   - api/ and errclass/ (the wire contract and the error classes) import only
#     the standard library, and http/client only those two, the standard
#     library and github.com/coder/websocket (attach is a WebSocket; that
#     library depends on nothing but the standard library), so that a light
#     program can speak the API (tests excepted).
#
# Direct imports of a package and of its tests (in-package and _test) are
# checked. For the runtime and actors rules, indirect dependencies of the
# package are checked too: runtime -> somewhere -> actors is still a cycle in
# the design even if no single import says so.
#
# Prints one line per violation and exits 1 if there is any. Directories
# without Go files are simply not listed by go list, so a tree where actors/ or
# http/ is still empty passes. Build tags: $TAGS (default "seccomp nomsgpack").
set -euo pipefail

cd "$(dirname "$0")/.."

GO=${GO:-go}
TAGS=${TAGS:-seccomp nomsgpack}

module=$("$GO" list -m)

# One line per (package, kind, import), a package's imports before its deps.
# -e keeps going past packages that do not load; go vet reports those, this
# script only judges the edges.
format='{{$p := .ImportPath}}'
format+='{{range .Imports}}{{$p}} import {{.}}{{"\n"}}{{end}}'
format+='{{range .TestImports}}{{$p}} test-import {{.}}{{"\n"}}{{end}}'
format+='{{range .XTestImports}}{{$p}} xtest-import {{.}}{{"\n"}}{{end}}'
format+='{{range .Deps}}{{$p}} dep {{.}}{{"\n"}}{{end}}'
format+='{{if .Error}}{{$p}} error -{{"\n"}}{{end}}'

edges=$("$GO" list -e -tags "$TAGS" -f "$format" ./...)

# under PATH PREFIX: PATH is PREFIX or below it (so .../http does not match
# .../httpx).
under() { [[ $1 == "$2" || $1 == "$2"/* ]]; }

rel() { echo "${1#"$module"/}"; }

# std PATH: PATH is in the standard library (its first element has no dot).
std() { [[ ${1%%/*} != *.* ]]; }

declare -A direct=() # "pkg imp" of every direct import, to not report it twice
violations=0
violation() {
	echo "import violation: $(rel "$1") $2 $3: $4"
	violations=$((violations + 1))
}

while read -r pkg kind imp; do
	[[ -n $pkg ]] || continue
	if [[ $kind == error ]]; then
		# Not a violation of the import rules (go vet shows the error), but
		# the package's edges may be incomplete.
		echo "warning: $(rel "$pkg") does not load cleanly; its imports may be incomplete" >&2
		continue
	fi
	if [[ $kind == dep ]]; then
		# Deps lists direct imports too; those are reported as imports.
		[[ -z ${direct["$pkg $imp"]:-} ]] || continue
	else
		direct["$pkg $imp"]=1
	fi
	verb="imports"
	case $kind in
	test-import) verb="imports (in tests)" ;;
	xtest-import) verb="imports (in _test package)" ;;
	dep) verb="depends (indirectly) on" ;;
	esac

	# Rules on direct imports only.
	if [[ $kind != dep ]]; then
		if { under "$imp" github.com/gin-gonic/gin || under "$imp" github.com/gin-contrib; } &&
			! under "$pkg" "$module/http" && ! under "$pkg" "$module/cmd/troupe"; then
			violation "$pkg" "$verb" "$imp" "gin belongs in http/"
		fi
		if under "$imp" "$module/cmd" && ! under "$pkg" "$module/cmd"; then
			violation "$pkg" "$verb" "$(rel "$imp")" "nothing imports cmd/"
		fi
	fi

	# Layering rules, on imports and on indirect dependencies.
	if under "$pkg" "$module/runtime"; then
		if under "$imp" github.com/asynkron/protoactor-go; then
			violation "$pkg" "$verb" "$imp" "protoactor-go never in runtime/"
		fi
		if under "$imp" "$module/actors" || under "$imp" "$module/http"; then
			violation "$pkg" "$verb" "$(rel "$imp")" "runtime/ must not import actors/ or http/"
		fi
	fi
	if [[ $kind == import || $kind == dep ]] && ! std "$imp"; then
		if under "$pkg" "$module/api" || under "$pkg" "$module/errclass" || under "$pkg" "$module/internal/testutil"; then
			violation "$pkg" "$verb" "$(rel "$imp")" "the wire contract imports only the standard library"
		elif [[ $pkg == "$module/http/client" ]] && ! under "$imp" "$module/api" && ! under "$imp" "$module/errclass" && ! under "$imp" github.com/coder/websocket; then
			violation "$pkg" "$verb" "$(rel "$imp")" "the client imports only api, errclass, github.com/coder/websocket and the standard library"
		fi
	fi
	if under "$pkg" "$module/cmd/troupe-engine"; then
		for heavy in github.com/spf13/cobra github.com/gin-gonic/gin github.com/asynkron/protoactor-go github.com/prometheus github.com/google/go-containerregistry; do
			if under "$imp" "$heavy" && [[ $kind == import || $kind == dep ]]; then
				violation "$pkg" "$verb" "$imp" "the engine is every container's init: keep it slim"
			fi
		done
	fi
	if under "$pkg" "$module/actors" && under "$imp" "$module/http"; then
		violation "$pkg" "$verb" "$(rel "$imp")" "actors/ must not import http/"
	fi
done <<<"$edges"

if ((violations > 0)); then
	echo "check-imports: $violations violation(s); imports go one way: http -> actors -> runtime" >&2
	exit 1
fi
echo "check-imports: ok"
