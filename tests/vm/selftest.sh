#!/usr/bin/env bash
# Proves the UML harness: run it in the guest with
#
#   tests/vm/uml-run tests/vm/selftest.sh
#
# It checks, inside the guest kernel only (no traffic leaves the guest):
#   1. the guest: root, lo up, ip_vs loaded, the IPVS generic-netlink family
#   2. ipvsadm programs a service and a real server, and every scheduler
#      hav implements can be attached (rr wrr lc wlc sed nq dh sh mh lblc
#      lblcr fo ovf)
#   3. a busybox httpd on a dummy interface answers busybox wget
#   4. locally originated traffic to a VIP is scheduled by IPVS (LOCAL_OUT)
#      and NATed to a real server address and port on the same machine
#   5. network namespaces and veth: a client namespace with many source
#      addresses, real servers in their own namespaces behind a bridge, and
#      IPVS in NAT, DR (gatewaying) and TUN (ipip) mode between them; rr
#      alternates, wrr follows the weights, sh pins a source to one server
# Closes with the line "N passed, N failed"; exits 1 if any check failed.
set -uo pipefail

[[ "${HAV_VM:-}" == uml ]] || { echo "selftest.sh: run me in the guest: tests/vm/uml-run $0" >&2; exit 2; }

pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
section() { printf '\n# %s\n' "$*"; }
has() { grep -q -- "$1" <<<"$2"; }
fetch() { timeout 5 busybox wget -q -O - "$@" 2>/dev/null; }

VIP=192.0.2.1           # TEST-NET-1, only on interfaces inside this guest
www=$(mktemp -d)

# ---------------------------------------------------------------- 1. guest
section "guest: $(uname -sr), $(nproc) cpu, $(awk '/MemTotal/{print $2 " kB"}' /proc/meminfo)"
check "running as root" test "$(id -u)" = 0
check "lo is up" grep -q 'state UNKNOWN\|state UP\|LOWER_UP' <<<"$(ip -o link show lo)"
check "ping 127.0.0.1" ping -c1 -W2 127.0.0.1 >/dev/null
check "/proc/net/ip_vs exists" test -e /proc/net/ip_vs
echo "$(head -1 /proc/net/ip_vs)"
genl_out=$(genl ctrl get name IPVS 2>&1)
check "generic netlink family IPVS is registered" has "Name: IPVS" "$genl_out"
echo "$genl_out" | head -3

# ------------------------------------------------------------- 2. ipvsadm
section "ipvsadm"
check "ipvsadm -A -t 10.0.0.1:80 -s rr" ipvsadm -A -t 10.0.0.1:80 -s rr
check "ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 3" ipvsadm -a -t 10.0.0.1:80 -r 10.0.0.2:80 -m -w 3
ln=$(ipvsadm -Ln)
echo "$ln"
check "ipvsadm -Ln shows the service" has "TCP  10.0.0.1:80 rr" "$ln"
check "ipvsadm -Ln shows the masq real server, weight 3" grep -Eq '10\.0\.0\.2:80 +Masq +3 ' <<<"$ln"
if has "10.0.0.2:80" "$ln"; then echo "IPVS OK"; fi
for s in rr wrr lc wlc sed nq dh sh mh lblc lblcr fo ovf; do
  check "scheduler $s attaches" ipvsadm -A -u 10.0.1.1:53 -s "$s"
  ipvsadm -D -u 10.0.1.1:53
done
ipvsadm -C
check "ipvsadm -C empties the table" test -z "$(ipvsadm -Ln | sed 1,3d)"

# ------------------------------------------------- 3. httpd on a dummy link
section "busybox httpd on a dummy interface"
ip link add hav-d0 type dummy && ip link set hav-d0 up && ip addr add 192.0.2.80/32 dev hav-d0
echo "hello from the guest" >"$www/index.html"
busybox httpd -f -p 192.0.2.80:8080 -h "$www" & httpd_pid=$!
sleep 0.3
check "busybox wget http://192.0.2.80:8080/ from the guest" \
  test "$(fetch http://192.0.2.80:8080/)" = "hello from the guest"

# ------------------------------------ 4. locally originated traffic via IPVS
section "IPVS on locally originated traffic (NAT to a local address and port)"
ip addr add "$VIP/32" dev hav-d0
ipvsadm -A -t "$VIP:80" -s rr
ipvsadm -a -t "$VIP:80" -r 192.0.2.80:8080 -m
ipvsadm -Ln
body=$(fetch "http://$VIP/")
check "wget http://$VIP/ reaches the real server 192.0.2.80:8080 through IPVS" test "$body" = "hello from the guest"
conns=$(ipvsadm -Lnc)
echo "$conns"
check "ipvsadm -Lnc lists the connection to $VIP:80 -> 192.0.2.80:8080" \
  grep -Eq "TCP .* $VIP:80 +192\.0\.2\.80:8080" <<<"$conns"
sleep 2.2 # 6.1 kernels refresh the totals ipvsadm reads in the 2 s estimator timer
stats=$(ipvsadm -Ln --stats -t "$VIP:80")
echo "$stats"
check "the service counted the connection" grep -Eq "^TCP +$VIP:80 +[1-9]" <<<"$stats"
ipvsadm -C
kill "$httpd_pid" 2>/dev/null; wait "$httpd_pid" 2>/dev/null
ip link del hav-d0

# ----------------------------------------------- 5. namespaces, veth, modes
section "network namespaces and veth"
check "ip netns add" ip netns add hav-cl
check "veth pair into a namespace" ip link add hav-cl type veth peer name eth0 netns hav-cl
ip netns exec hav-cl ip link set lo up
check "ip netns exec sees its own links" grep -q eth0 <<<"$(ip -n hav-cl -o link)"

# One L2 segment, a bridge, as DR needs: the director (VIP on a dummy,
# 198.51.100.1/24 and 203.0.113.254/24 on the bridge), the real servers
# (198.51.100.1N, TEST-NET-2) and the client (203.0.113.N, TEST-NET-3).
# NAT: the real servers route the client net via the director. DR and TUN:
# they reach the client net on-link and reply directly.
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.ipv4.vs.conntrack=1 2>/dev/null
ip link add hav-vip type dummy && ip link set hav-vip up && ip addr add "$VIP/32" dev hav-vip
ip link add hav-br type bridge && ip link set hav-br up
ip addr add 198.51.100.1/24 dev hav-br && ip addr add 203.0.113.254/24 dev hav-br
ip link set hav-cl master hav-br up
ip -n hav-cl link set eth0 up
nsrc=12
for i in $(seq 1 $nsrc); do ip -n hav-cl addr add "203.0.113.$i/24" dev eth0; done
ip -n hav-cl route add default via 203.0.113.254

rs_pids=()
for n in 1 2; do
  ns=hav-rs$n rip=198.51.100.1$n
  ip netns add $ns
  ip link add hav-rs$n type veth peer name eth0 netns $ns
  ip link set hav-rs$n master hav-br up
  ip netns exec $ns sh -ec "
    ip link set lo up; ip link set eth0 up
    ip addr add $rip/24 dev eth0
    ip route add default via 198.51.100.1
    # DR and TUN: the VIP is local on every real server, never answered for
    ip addr add $VIP/32 dev lo
    ip link set tunl0 up; ip addr add $VIP/32 dev tunl0
    sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
    sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
    sysctl -qw net.ipv4.conf.tunl0.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0"
  mkdir -p "$www/rs$n" && echo "rs$n" >"$www/rs$n/index.html"
  ip netns exec $ns busybox httpd -f -p 80 -h "$www/rs$n" & rs_pids+=($!)
done
sleep 0.3
check "a client namespace with $nsrc source addresses reaches real server 1 directly" \
  test "$(ip netns exec hav-cl timeout 5 busybox wget -q -O - http://198.51.100.11/ 2>/dev/null)" = rs1

# busybox wget cannot bind a source address: pick it with the route's src.
from() { # from SRC-LAST-OCTET -> prints the body
  ip -n hav-cl route replace "$VIP/32" via 203.0.113.254 src "203.0.113.$1"
  ip netns exec hav-cl timeout 5 busybox wget -q -O - "http://$VIP/" 2>/dev/null
}
rs_replies() { # -m: real servers reply via the director; -g/-i: directly
  local n
  for n in 1 2; do
    if [[ $1 == -m ]]; then ip -n hav-rs$n route del 203.0.113.0/24 dev eth0 2>/dev/null
    else ip -n hav-rs$n route replace 203.0.113.0/24 dev eth0; fi
  done
  return 0
}
run_mode() { # run_mode FLAG NAME FIRST-SOURCE: 4 clients, FIRST..FIRST+3
  local flag=$1 name=$2 first=$3 seq="" i body n
  rs_replies "$flag"
  ipvsadm -C
  ipvsadm -A -t "$VIP:80" -s rr
  ipvsadm -a -t "$VIP:80" -r 198.51.100.11:80 "$flag"
  ipvsadm -a -t "$VIP:80" -r 198.51.100.12:80 "$flag"
  for ((i = first; i < first + 4; i++)); do body=$(from "$i"); seq+="${body:-none} "; done
  echo "$name rr, 4 clients: $seq"
  check "$name: rr alternates real servers for 4 clients" \
    grep -Eq '^(rs1 rs2 rs1 rs2|rs2 rs1 rs2 rs1) $' <<<"$seq"
  local c; c=$(ipvsadm -Lnc | grep -Ec "^TCP .* 203\.0\.113\.($first|$((first + 1))|$((first + 2))|$((first + 3))):[0-9]+ +$VIP:80 " || true)
  check "$name: ipvsadm -Lnc has 4 connection entries (got $c)" test "$c" = 4
}
section "IPVS NAT (masquerading), client namespace -> director -> real-server namespaces"
run_mode -m NAT 1
ipvsadm -Lnc
section "IPVS DR (gatewaying)"
run_mode -g DR 5
ipvsadm -Lnc
section "IPVS TUN (ipip)"
run_mode -i TUN 9
ipvsadm -Lnc

section "schedulers on real traffic (NAT)"
rs_replies -m
ipvsadm -C
ipvsadm -A -t "$VIP:80" -s wrr
ipvsadm -a -t "$VIP:80" -r 198.51.100.11:80 -m -w 3
ipvsadm -a -t "$VIP:80" -r 198.51.100.12:80 -m -w 1
seq=""; for i in 1 2 3 4 5 6 7 8; do body=$(from "$i"); seq+="${body:-none} "; done
echo "wrr 3:1, 8 clients: $seq"
check "wrr 3:1 sends 6 of 8 to rs1" test "$(grep -o rs1 <<<"$seq" | wc -l)" = 6
ipvsadm -C
ipvsadm -A -t "$VIP:80" -s sh
ipvsadm -a -t "$VIP:80" -r 198.51.100.11:80 -m
ipvsadm -a -t "$VIP:80" -r 198.51.100.12:80 -m
sh_ok=1 seen=""
for i in $(seq 1 $nsrc); do
  a=$(from "$i"); b=$(from "$i")
  [[ -n "$a" && "$a" == "$b" ]] || sh_ok=0
  seen+="$a "
done
echo "sh, $nsrc sources twice each: $seen"
check "sh sends each source to the same real server" test $sh_ok = 1
check "sh spreads $nsrc sources over both servers" bash -c "grep -q rs1 <<<'$seen' && grep -q rs2 <<<'$seen'"

# ------------------------------------------------------------------ teardown
ipvsadm -C
kill "${rs_pids[@]}" 2>/dev/null; wait "${rs_pids[@]}" 2>/dev/null
for ns in hav-cl hav-rs1 hav-rs2; do ip netns del $ns 2>/dev/null; done
ip link del hav-br 2>/dev/null; ip link del hav-vip 2>/dev/null
rm -rf "$www"

echo
echo "$pass passed, $fail failed"
((fail == 0))
