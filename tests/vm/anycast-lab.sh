#!/usr/bin/env bash
# Active-active directors behind ECMP, in one User-Mode Linux guest (run by
# tests/vm/anycast-run; IPVS is per network namespace, so one guest holds them all).
#
#   anycast-lab.sh test    assertions (scripts/test runs this)
#   anycast-lab.sh bench   per case: time to the route's withdrawal at the router, and the
#                          share of established connections that survive
#
#   cl (client 10.90.0.2) -- rtr (FRR zebra+bgpd, AS 65000, ECMP maximum-paths 8)
#                               |  br0 10.92.0.0/24
#          d1 d2 d3 (10.92.0.11-13: hav -C + FRR zebra+bgpd, AS 65001, redistribute kernel)
#          rs1 rs2 rs3 (10.92.0.101-103: VIP 192.0.2.10 on lo, echo server on :80)
#
# The directors announce 192.0.2.10:80 (lb_algo mh, mh-port, mh-fallback, DR,
# inhibit_on_failure, TCP_CHECK every second). BGP timers keepalive 1 hold 3.
set -uo pipefail
mode=${1:-test}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
HAV=${HAV:-$repo/target/debug/hav-linux}
FLOWS=$here/anycast-flows.py
PY=/usr/bin/python3
VIP=192.0.2.10
work=$(mktemp -d /tmp/hav-anycast.XXXXXX)
fails=0 passes=0
ok() { passes=$((passes + 1)); echo "ok   - $*"; }
bad() { fails=$((fails + 1)); echo "FAIL - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
now() { date +%s.%N; }
wait_for() { # wait_for SECONDS COMMAND...
  local end=$((SECONDS + $1)); shift
  while ((SECONDS < end)); do "$@" && return 0; sleep 0.1; done
  "$@"
}
nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

[[ ${HAV_VM:-} == uml ]] || { echo "anycast-lab.sh: runs in the guest (tests/vm/anycast-run)" >&2; exit 2; }
[[ -x /usr/lib/frr/zebra && -x /usr/lib/frr/bgpd ]] || { echo "FAIL - FRR is not installed (scripts/install-deps installs frr)"; exit 1; }
[[ -x $HAV ]] || { echo "FAIL - $HAV not built"; exit 1; }

# ---- topology
ip link add br0 type bridge && ip link set br0 up
sysctl -qw net.bridge.bridge-nf-call-iptables=0 2>/dev/null
attach() { # attach NS ADDR/24: veth v-NS (root, in br0) <-> eth0 (NS)
  ip netns add "$1"
  ip link add "v-$1" type veth peer name eth0 netns "$1"
  ip link set "v-$1" master br0 up
  nsx "$1" ip link set lo up
  nsx "$1" ip link set eth0 up
  nsx "$1" ip addr add "$2" dev eth0
}
attach rtr 10.92.0.1/24
for i in 1 2 3; do attach "d$i" "10.92.0.1$i/24"; done
for i in 1 2 3; do attach "rs$i" "10.92.0.10$i/24"; done
ip netns add cl
ip link add eth1 netns rtr type veth peer name eth0 netns cl
nsx rtr ip link set eth1 up && nsx rtr ip addr add 10.90.0.1/24 dev eth1
nsx cl ip link set lo up && nsx cl ip link set eth0 up && nsx cl ip addr add 10.90.0.2/24 dev eth0
nsx cl ip route add default via 10.90.0.1
nsx rtr sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 \
  net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
for i in 1 2 3; do
  nsx "d$i" ip route add default via 10.92.0.1
  # A flow ECMP moves here from another director arrives mid-connection: IPVS schedules it
  # (with mh, to the same real server) instead of handing it to the local stack.
  nsx "d$i" sysctl -qw net.ipv4.vs.sloppy_tcp=1
  nsx "rs$i" ip addr add "$VIP/32" dev lo
  nsx "rs$i" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0
  nsx "rs$i" ip route add default via 10.92.0.1
done
declare -A rs_pid
start_rs() { ip netns exec "rs$1" "$PY" "$FLOWS" serve "rs$1" >"$work/rs$1.log" 2>&1 & rs_pid[$1]=$!; }
for i in 1 2 3; do start_rs "$i"; done

bfd=0
# ---- FRR, per namespace: its own pathspace (-N: /run/frr/NS), config files in $work
# The daemons run as root here (their files live in this run's directory); FRR insists that
# their user be in its vty group. The guest's /etc is a copy-on-write overlay: the host's
# /etc/group is not touched.
mkdir -p /run/frr
getent group frrvty >/dev/null && ! id -nG root | grep -qw frrvty && usermod -aG frrvty root
frr_conf() { # frr_conf NS: zebra.conf and bgpd.conf
  local ns=$1 d=$work/frr-$1
  mkdir -p "$d"
  printf 'hostname %s\nlog file %s/zebra.log\n' "$ns" "$d" >"$d/zebra.conf"
  if [[ $ns == rtr ]]; then
    cat >"$d/bgpd.conf" <<EOF
hostname rtr
log file $d/bgpd.log
router bgp 65000
 bgp router-id 10.92.0.1
 no bgp ebgp-requires-policy
 no bgp network import-check
 timers bgp 1 3
 neighbor D peer-group
 neighbor D remote-as 65001
 neighbor D timers 1 3
 neighbor D timers connect 1
 neighbor 10.92.0.11 peer-group D
 neighbor 10.92.0.12 peer-group D
 neighbor 10.92.0.13 peer-group D
 address-family ipv4 unicast
  maximum-paths 8
 exit-address-family
EOF
  else
    cat >"$d/bgpd.conf" <<EOF
hostname $ns
log file $d/bgpd.log
ip prefix-list HAV seq 5 permit 192.0.2.0/24 ge 32
route-map HAV permit 10
 match ip address prefix-list HAV
router bgp 65001
 bgp router-id ${2}
 no bgp ebgp-requires-policy
 timers bgp 1 3
 neighbor 10.92.0.1 remote-as 65000
 neighbor 10.92.0.1 timers 1 3
 neighbor 10.92.0.1 timers connect 1
$( ((bfd)) && echo ' neighbor 10.92.0.1 bfd')
 address-family ipv4 unicast
  redistribute kernel route-map HAV
 exit-address-family
EOF
  fi
}
start_frr() { # start_frr NS [ROUTER-ID]
  local ns=$1 d=$work/frr-$1
  frr_conf "$ns" "${2:-}"
  mkdir -p "/run/frr/$ns"
  nsx "$ns" /usr/lib/frr/zebra -d -N "$ns" -u root -g root -f "$d/zebra.conf" -P 0 >>"$d/start.log" 2>&1
  nsx "$ns" /usr/lib/frr/bgpd -d -N "$ns" -u root -g root -f "$d/bgpd.conf" -P 0 >>"$d/start.log" 2>&1
  # BFD (the bench's BFD case turns it on): bfdd runs from the start, in the bench only.
  if [[ $mode == bench ]]; then
    : >"$d/bfdd.conf"
    mkdir -p "/etc/frr/$ns" && : >"/etc/frr/$ns/vtysh.conf" # vtysh -N NS reads it (guest overlay)
    nsx "$ns" /usr/lib/frr/bfdd -d -N "$ns" -u root -g root -f "$d/bfdd.conf" -P 0 >>"$d/start.log" 2>&1
  fi
}
stop_frr() { # SIGKILL: a machine that dies says nothing
  local ns=$1 p
  for p in bfdd bgpd zebra; do
    [[ -f /run/frr/$ns/$p.pid ]] && kill -KILL "$(cat "/run/frr/$ns/$p.pid")" 2>/dev/null
    rm -f "/run/frr/$ns/$p.pid"
  done
}
start_frr rtr

# ---- hav on the directors
cat >"$work/hav.conf" <<EOF
virtual_server $VIP 80 {
  delay_loop 1
  lb_algo mh
  mh-port
  mh-fallback
  lb_kind DR
  inhibit_on_failure
  announce {
    drain_time 2
  }
$(for i in 1 2 3; do printf '  real_server 10.92.0.10%s 80 {\n    TCP_CHECK {\n      connect_timeout 1\n      retry 0\n    }\n  }\n' "$i"; done)
}
EOF
declare -A hav_pid
start_director() { # start_director I: link up, FRR, hav
  local i=$1
  ip link set "v-d$i" up
  start_frr "d$i" "10.92.0.1$i"
  "$HAV" -n -s "d$i" -f "$work/hav.conf" -C --log-level info -p "$work/hav-d$i.pid" --control "$work/hav-d$i.sock" \
    >>"$work/hav-d$i.log" 2>&1 &
  hav_pid[$i]=$!
}
kill_director() { # kill_director I: the link first (the router hears nothing more), then everything
  local i=$1
  ip link set "v-d$i" down
  kill -KILL "${hav_pid[$i]}" 2>/dev/null; wait "${hav_pid[$i]}" 2>/dev/null
  stop_frr "d$i"
  # What the dead machine left in its kernel is gone with it.
  nsx "d$i" ipvsadm -C
  nsx "d$i" ip route flush proto 250 table all 2>/dev/null
}
for i in 1 2 3; do start_director "$i"; done

nexthops() { # the router's next hops for the VIP, sorted
  nsx rtr ip route show "$VIP/32" | grep -oE 'via 10\.92\.0\.1[0-9]' | awk '{print $2}' | sort | tr '\n' ' '
}
has_nexthops() { [[ "$(nexthops)" == "$1" ]]; }
table_of() { nsx "d$1" "$HAV" ipvs dump 2>/dev/null; }
tables_agree() { # tables_agree I J...: the same IPVS table, and it matches the regex $want
  local first t
  first=$(table_of "$1")
  grep -Eq -- "$want" <<<"$first" || return 1
  for t in "${@:2}"; do [[ "$(table_of "$t")" == "$first" ]] || return 1; done
}
conns_on() { # conns_on I PORT-REGEX: IPVS connections of the client from those ports on director I
  nsx "d$1" ipvsadm -Lnc 2>/dev/null | grep -cE "10\.90\.0\.2:($2) "
}
show_state() {
  echo "# router: $(nsx rtr ip route show "$VIP/32" | tr '\n' ' ')"
  for i in 1 2 3; do echo "# d$i: $(table_of "$i" | tr '\n' ' ')"; done
}
dump_logs() {
  for f in "$work"/hav-d*.log "$work"/frr-*/bgpd.log "$work"/frr-*/start.log; do
    [[ -s $f ]] && { echo "---- $f"; tail -15 "$f"; }
  done
}

t0=$SECONDS
if ! wait_for 60 has_nexthops "10.92.0.11 10.92.0.12 10.92.0.13 "; then
  bad "the router learned the VIP from all three directors within 60 s (has: $(nexthops))"
  show_state; dump_logs
  exit 1
fi
ok "the router learned $VIP from all three directors, ECMP over 10.92.0.11 10.92.0.12 10.92.0.13 in $((SECONDS - t0)) s"
nsx rtr ip route show "$VIP/32" | sed 's/^/# /'
nsx d1 ip route show table all proto 250 | sed 's/^/# d1: /'

hold() { # hold N SPORT SECS OUT: background client
  nsx cl "$PY" "$FLOWS" hold "$VIP" "$1" "$2" "$3" "$4" >"$4.log" 2>&1 &
  wait_for 30 test -e "$4.ready"
}
result() { # result OUT KEY
  "$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

if [[ $mode == test ]]; then
  # A real server fails: every director's table is the same within one check interval.
  want='-a -t 192\.0\.2\.10:80 -r 10\.92\.0\.103:80 -g -w 1'
  check "all three directors' IPVS tables are the same" wait_for 10 tables_agree 1 2 3
  # One watcher per director reads its /proc/net/ip_vs every 20 ms and says when rs3
  # (0A5C0067:0050) is at weight 0 there: every director within one check interval (1 s) of
  # the first.
  for i in 1 2 3; do
    ip netns exec "d$i" "$PY" -c '
import sys, time
end = time.time() + 8
while time.time() < end:
    for l in open("/proc/net/ip_vs"):
        f = l.split()
        if len(f) >= 4 and f[0] == "->" and f[1] == "0A5C0067:0050" and f[3] == "0":
            print("%.3f" % time.time()); sys.exit(0)
    time.sleep(0.02)
sys.exit(1)' >"$work/seen$i" 2>&1 &
  done
  sleep 1
  tf=$(now)
  kill "${rs_pid[3]}"; wait "${rs_pid[3]}" 2>/dev/null
  wait_for 10 bash -c "[[ -s $work/seen1 && -s $work/seen2 && -s $work/seen3 ]]"
  if [[ -s $work/seen1 && -s $work/seen2 && -s $work/seen3 ]]; then
    spread=$(cat "$work"/seen[123] | sort -n | awk 'NR==1{a=$1} {b=$1} END{printf "%.2f", b-a}')
    last=$(cat "$work"/seen[123] | sort -n | tail -1)
    check "rs3 fails: every director sets it to weight 0 within ${spread} s of the first (check interval 1 s; the last $(awk -v a="$tf" -v b="$last" 'BEGIN{printf "%.2f", b-a}') s after the kill)" \
      awk -v s="$spread" 'BEGIN{exit !(s <= 1.0)}'
    want='-a -t 192\.0\.2\.10:80 -r 10\.92\.0\.103:80 -g -w 0'
    check "rs3 fails: the three directors' tables are then the same" tables_agree 1 2 3
  else
    bad "rs3 fails: every director sets it to weight 0 within 8 s"; show_state
  fi
  start_rs 3
  want='-a -t 192\.0\.2\.10:80 -r 10\.92\.0\.103:80 -g -w 1'
  check "rs3 back: all three directors' tables agree again" wait_for 5 tables_agree 1 2 3
  table_of 1 | sed 's/^/# /'
  # Established connections, spread over the directors by ECMP.
  hold 60 40000 14 "$work/hold.json" || bad "client established its connections"
  for i in 1 2 3; do c[$i]=$(conns_on "$i" '400[0-5][0-9]'); done
  echo "# held connections per director: d1 ${c[1]} d2 ${c[2]} d3 ${c[3]}"
  check "ECMP spreads the 60 connections over all three directors" test "${c[1]}" -gt 0 -a "${c[2]}" -gt 0 -a "${c[3]}" -gt 0
  # The model says the same: for every held flow, the real server IPVS chose (on whichever
  # director ECMP sent it to) is the one mh-lookup computes from the config.
  for i in 1 2 3; do nsx "d$i" ipvsadm -Lnc 2>/dev/null; done | grep -E '10\.90\.0\.2:400[0-5][0-9] ' |
    awk '{print $4, $6}' | sort >"$work/kernel-picks"
  srcs=(); for p in $(seq 40000 40059); do srcs+=(--src "10.90.0.2:$p"); done
  "$HAV" -f "$work/hav.conf" mh-lookup --vs "$VIP:80" "${srcs[@]}" 2>/dev/null | grep ' => ' |
    awk '{print $3, $7}' | sort >"$work/model-picks"
  check "mh-lookup predicts the real server IPVS chose for all $(wc -l <"$work/kernel-picks") held flows" \
    bash -c "[[ \$(wc -l <$work/kernel-picks) == 60 ]] && diff $work/kernel-picks $work/model-picks"
  # A director dies.
  sleep 2
  tk=$(now)
  kill_director 1
  if wait_for 10 has_nexthops "10.92.0.12 10.92.0.13 "; then
    dt=$(awk -v a="$tk" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}')
    check "d1 dies: the router withdraws it within the hold time (3 s): ${dt} s" awk -v d="$dt" 'BEGIN{exit !(d <= 4.5)}'
  else
    bad "d1 dies: the router withdraws it (has $(nexthops))"; show_state
  fi
  wait_for 30 test -e "$work/hold.json"
  est=$(result "$work/hold.json" established) surv=$(result "$work/hold.json" survived)
  echo "# held: $(cat "$work/hold.json")"
  check "all $est established connections survive d1's death ($surv survived; max stall $(result "$work/hold.json" max_gap_s) s)" test "$est" = 60 -a "$surv" = "$est"

  # New connections spread over the two that remain.
  nsx cl "$PY" "$FLOWS" burst "$VIP" 40 50000 >"$work/burst.txt" 2>&1
  errs=$(grep -c error "$work/burst.txt")
  for i in 2 3; do n[$i]=$(conns_on "$i" '500[0-3][0-9]'); done
  echo "# new connections: d2 ${n[2]} d3 ${n[3]}, errors $errs"
  check "40 new connections all succeed and spread over d2 and d3" test "$errs" = 0 -a "${n[2]}" -gt 0 -a "${n[3]}" -gt 0 -a $((n[2] + n[3])) -ge 40

  # It comes back; then a clean stop withdraws before it removes its services.
  start_director 1
  check "d1 restarts: the router has all three again" wait_for 30 has_nexthops "10.92.0.11 10.92.0.12 10.92.0.13 "
  hold 60 41000 8 "$work/hold2.json" || bad "client established its connections (2)"
  sleep 1
  ts=$(now)
  kill -TERM "${hav_pid[1]}"
  check "SIGTERM: the route is withdrawn at the router first" wait_for 3 has_nexthops "10.92.0.12 10.92.0.13 "
  tw=$(awk -v a="$ts" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}')
  check "SIGTERM: the IPVS service stays while draining (withdrawn after ${tw} s; drain_time 2)" bash -c "ip netns exec d1 ipvsadm -Ln | grep -q 192.0.2.10"
  wait "${hav_pid[1]}" 2>/dev/null
  check "SIGTERM: then the service and the routes are gone" bash -c "! ip netns exec d1 ipvsadm -Ln | grep -q 192.0.2.10 && [[ -z \$(ip netns exec d1 ip route show table all proto 250) ]]"
  grep -q 'draining before the IPVS services go' "$work/hav-d1.log" && ok "SIGTERM: the log says it drained" || bad "SIGTERM: the log says it drained"
  wait_for 30 test -e "$work/hold2.json"
  est=$(result "$work/hold2.json" established) surv=$(result "$work/hold2.json" survived)
  check "all $est connections survive d1's clean stop ($surv survived)" test "$est" = 60 -a "$surv" = "$est"
else
  # ---- bench: each case from three healthy directors
  restore() {
    start_director 1
    wait_for 40 has_nexthops "10.92.0.11 10.92.0.12 10.92.0.13 " || echo "bench: d1 did not come back: $(nexthops)"
    sleep 2
  }
  printf '%-34s %12s %18s %10s\n' case "withdrawn_s" "survived" "stall_s"
  run_case() { # run_case NAME ACTION-FUNCTION
    local name=$1 out=$work/bench-$1.json tk dt
    hold 90 $((42000 + RANDOM % 20000)) 12 "$out" >/dev/null || { echo "$name: client failed"; return; }
    sleep 2
    tk=$(now)
    "$2"
    if wait_for 15 has_nexthops "10.92.0.12 10.92.0.13 "; then
      dt=$(awk -v a="$tk" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}')
    else
      dt="never"
    fi
    wait_for 40 test -e "$out"
    printf '%-34s %12s %11s/%-6s %10s\n' "$name" "$dt" "$(result "$out" survived)" "$(result "$out" established)" "$(result "$out" max_gap_s)"
  }
  death() { kill_director 1; }
  health() { for i in 1 2 3; do nsx d1 ip route add blackhole "10.92.0.10$i/32"; done; }
  stop() { kill -TERM "${hav_pid[1]}"; }
  run_case "director death (hold time 3 s)" death; restore
  run_case "health loss (all real servers)" health
  kill_director 1; for i in 1 2 3; do nsx d1 ip route del blackhole "10.92.0.10$i/32" 2>/dev/null; done; restore
  run_case "clean stop (SIGTERM, drain 2 s)" stop
  # BFD (FRR's bfdd, 300 ms x 3) on every session: a dead director is detected in under a second.
  wait "${hav_pid[1]}" 2>/dev/null; restore
  bfd=1
  vtysh -N rtr -c 'configure terminal' -c 'router bgp 65000' -c 'neighbor D bfd' >/dev/null
  for i in 1 2 3; do vtysh -N "d$i" -c 'configure terminal' -c 'router bgp 65001' -c 'neighbor 10.92.0.1 bfd' >/dev/null; done
  bfd_up() { [[ $(vtysh -N rtr -c 'show bfd peers brief' 2>/dev/null | grep -c ' up ') -ge 3 ]]; }
  wait_for 20 bfd_up || echo "bench: BFD sessions not all up: $(vtysh -N rtr -c 'show bfd peers brief' 2>&1 | tr '\n' ' ')"
  run_case "director death, BFD 300 ms x 3" death
  # Control: the same death with a scheduler whose choice is each director's own (wlc): the
  # flows ECMP moves to another director land on another real server there.
  wait "${hav_pid[1]}" 2>/dev/null; restore
  sed -i 's/lb_algo mh/lb_algo wlc/' "$work/hav.conf"
  for i in 1 2 3; do kill -HUP "${hav_pid[$i]}"; done
  want='-s wlc'
  wait_for 10 tables_agree 1 2 3 || echo "bench: the reload to wlc did not reach every director"
  run_case "control: director death, wlc, BFD" death
fi

echo "# $passes passed, $fails failed"
((fails == 0)) || { show_state; dump_logs; }
((fails == 0))
