#!/bin/sh
# Put llama.cpp's tree at the plan's commit into the build context.
#   prepare-llamacpp.sh SRC COMMIT SOURCE_ID [PATCH...]
# Run in the context directory: exports COMMIT of the clone SRC (build.yml verified that
# SRC's HEAD is COMMIT) into ./llama.cpp, applies each build/PATCH to it (the converter's
# fixes, build/llamacpp-converter.patch: a patch that does not fit the tree stops the
# build, naming it), records COMMIT in llama.cpp/.fastchat-lab-source, which the build
# reads (/opt/llamacpp/commit, llama-server --version), and SOURCE_ID (the commit and the
# patches' hashes) in llama.cpp/.fastchat-lab-tree, which build.yml's probe compares
# with what the context should hold. docs/ (38 MB of
# documentation) stays out: nothing builds from it. Arguments are data only.
set -eu
src=$1
commit=$2
id=$3
shift 3
case "$commit" in
  *[!0-9a-f]*|"") echo "prepare-llamacpp.sh: not a commit id: $commit" >&2; exit 2 ;;
esac
[ "${#commit}" -eq 40 ] || { echo "prepare-llamacpp.sh: not a full commit id: $commit" >&2; exit 2; }
rm -rf llama.cpp
git -C "$src" archive --prefix=llama.cpp/ "$commit" | tar -x
rm -rf llama.cpp/docs
cd llama.cpp
# git apply inside another repository would apply relative to that one's root (and skip
# these files): no repository above this tree counts.
GIT_CEILING_DIRECTORIES=$(dirname "$(pwd -P)")
export GIT_CEILING_DIRECTORIES
for patch in "$@"; do
  if ! git apply --check "../build/$patch" 2>/dev/null; then
    echo "prepare-llamacpp.sh: $patch does not fit llama.cpp $commit (fixed or changed upstream?);" \
      "check it against that commit's tree and update or drop it" >&2
    exit 1
  fi
  git apply "../build/$patch"
  echo "applied $patch"
done
printf '%s\n' "$commit" > .fastchat-lab-source
printf '%s\n' "$id" > .fastchat-lab-tree
