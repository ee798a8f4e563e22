#!/bin/bash
# durable_path_cost.sh TREE MODE [READS_A READS_B]: user-space instructions per
# message of the publish phase (callgrind, the slope between two run lengths).
# PUBS and PER_READ pass through to durable_path_cost.py.
tree=$1; mode=$2; a=${3:-30}; b=${4:-130}
script=$(cd "$(dirname "$0")" && pwd)/durable_path_cost.py
python=${PYTHON:-$(cd "$(dirname "$0")/.." && pwd)/.venv/bin/python}
out=$(mktemp -d)
count() {
  (cd "$tree" && CG_SPLIT=1 valgrind --tool=callgrind --callgrind-out-file="$out/cg.$1" \
    "$python" "$script" "$mode" "$1" >/dev/null 2>&1)
  grep -h "^summary:\|^totals:" "$out"/cg."$1".1 | head -1 | grep -o "[0-9]*"
}
x=$(count "$a"); y=$(count "$b")
rm -rf "$out"
echo "$mode pubs=${PUBS:-1} per_read=${PER_READ:-100}: $(( (y - x) / (${PER_READ:-100} * (b - a)) )) instructions/msg"
