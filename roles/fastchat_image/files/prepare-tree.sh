#!/bin/sh
# Put FastChat's tree into the build context, patched where it still has the old text.
#   prepare-tree.sh SRC SOURCE_ID [PATCH FILE MARKER]...
# Run in the context directory: exports SRC's HEAD into ./FastChat, then for each
# (PATCH, FILE, MARKER): when FILE still holds MARKER (the old text), applies
# build/PATCH and checks that MARKER is gone; records SOURCE_ID in
# FastChat/.fastchat-lab-source. Arguments are data only, never shell code.
set -eu
src=$1
id=$2
shift 2
rm -rf FastChat
git -C "$src" archive --prefix=FastChat/ HEAD | tar -x
cd FastChat
# git apply inside another repository would apply relative to that one's root (and skip
# these files): no repository above this tree counts.
GIT_CEILING_DIRECTORIES=$(dirname "$(pwd -P)")
export GIT_CEILING_DIRECTORIES
while [ "$#" -ge 3 ]; do
  patch=$1 file=$2 marker=$3
  shift 3
  if grep -qF -- "$marker" "$file"; then
    git apply "../build/$patch"
    if grep -qF -- "$marker" "$file"; then
      echo "prepare-tree.sh: $patch left the old text in $file" >&2
      exit 1
    fi
    echo "applied $patch"
  fi
done
printf '%s\n' "$id" > .fastchat-lab-source
