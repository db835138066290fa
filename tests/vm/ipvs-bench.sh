#!/usr/bin/env bash
# IPVS benchmark, in the guest (scripts/bench-ipvs boots it): 10,000 real
# servers across 100 services, from config to kernel, hav-linux against
# `ipvsadm -R` of the same table, then reloads. Prints numbers; asserts only
# that the tables are equal.
set -uo pipefail
[[ "${HAV_VM:-}" == uml ]] || { echo "ipvs-bench.sh: run me in the guest: tests/vm/uml-run $0" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${HAV_BIN_DIR:-${CARGO_TARGET_DIR:-$repo/target}/release}
HAV=$bin/hav-linux
export HAV_LOG=${HAV_LOG:-warn}
[[ -e /dev/fd ]] || ln -s /proc/self/fd /dev/fd
S=${HAV_BENCH_SERVICES:-100} R=${HAV_BENCH_REALS:-100}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
ms() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) * 1000 }'; }

gen() { # gen WEIGHT-OF-ONE-SERVER
  awk -v S="$S" -v R="$R" -v W="$1" 'BEGIN {
    for (s = 1; s <= S; s++) {
      printf "virtual_server 10.10.%d.%d 80 {\n    lb_algo wlc\n    lb_kind NAT\n", int(s / 250), s % 250 + 1
      for (r = 1; r <= R; r++) {
        w = (s == int(S / 2) && r == 1) ? W : 1
        printf "    real_server 10.%d.%d.%d 8080 {\n        weight %d\n        TCP_CHECK {\n            connect_timeout 3\n        }\n    }\n", 20 + int(s / 250), s % 250, r, w
      }
      printf "}\n"
    }
  }'
}
gen 1 >"$work/big.conf"
gen 7 >"$work/big-1change.conf"
"$HAV" -f "$work/big.conf" ipvs rules >"$work/rules"
n=$(grep -c '^-a' "$work/rules")
echo "# $S services, $n real servers ($(wc -c <"$work/big.conf") bytes of keepalived.conf)"

ipvsadm -C
t0=$(now); ipvsadm -R <"$work/rules"; t1=$(now)
ipvsadm_ms=$(ms "$t0" "$t1")
echo "ipvsadm -R of the same table:        $ipvsadm_ms ms"
ipvsadm -Sn | sort >"$work/by-ipvsadm"
ipvsadm -C

t0=$(now)
out=$("$HAV" -f "$work/big.conf" ipvs apply --no-scripts --down "10.20.$((S / 2)).2:8080" \
  --then "$work/big-1change.conf" --repeat 3 2>&1)
t1=$(now)
hav_ms=$(ms "$t0" "$t1")
echo "$out"
echo "hav-linux ipvs apply, whole process (start, parse, full apply, 1 verdict, 4 reloads): $hav_ms ms"
ipvsadm -Sn | sort >"$work/by-hav"
# The same table, but for the two changes made after the full apply.
want=$(sed -e "s/-r 10.20.$((S / 2)).1:8080 -m -w 1/-r 10.20.$((S / 2)).1:8080 -m -w 7/" \
  -e "/-r 10.20.$((S / 2)).2:8080 /d" "$work/by-ipvsadm")
if diff -q <(echo "$want") "$work/by-hav" >/dev/null; then echo "tables: equal"; else echo "tables: DIFFER"; diff <(echo "$want") "$work/by-hav" | head; fi

# The same no-op reload, reading all 10,000 real servers back every time.
out_full=$("$HAV" -f "$work/big-1change.conf" ipvs apply --no-scripts --full-dump --repeat 2 2>&1)
echo "$out_full" | grep -E '^reload#'
noop_full=$(awk '/^reload#2/{ for (i = 1; i <= NF; i++) if ($i == "total") print $(i + 1) }' <<<"$out_full")
full=$(awk '/^apply /{ for (i = 1; i <= NF; i++) if ($i == "total") print $(i + 1) }' <<<"$out")
parse=$(awk '/^open\+parse/{ print $2 }' <<<"$out")
verdict=$(awk '/^Down /{ for (i = 1; i <= NF; i++) if ($i == "total") print $(i + 1) }' <<<"$out")
change=$(awk '/^reload .*1change/{ for (i = 1; i <= NF; i++) if ($i == "total") print $(i + 1) }' <<<"$out")
noop=$(awk '/^reload#/{ for (i = 1; i <= NF; i++) if ($i == "total") print $(i + 1) }' <<<"$out" | sort -n | sed -n 2p)
echo
echo "| measure (UML guest)                         | hav-linux        | target              |"
echo "|---------------------------------------------|------------------|---------------------|"
printf "| full apply, %5d real servers / %3d services | %9s ms (+ parse %s ms) | <= ipvsadm -R: %s ms |\n" "$n" "$S" "$full" "$parse" "$ipvsadm_ms"
printf "| reload, one real server changed            | %9s ms     | < 10 ms             |\n" "$change"
printf "| checker verdict, one real server removed    | %9s ms     | < 10 ms             |\n" "$verdict"
printf "| no-op reload (median of 3)                  | %9s ms     | < 100 ms            |\n" "$noop"
printf "| no-op reload reading all real servers back  | %9s ms     |                     |\n" "$noop_full"
ipvsadm -C
