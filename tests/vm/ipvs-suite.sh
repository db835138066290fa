#!/usr/bin/env bash
# The IPVS suite: hav-linux against a real kernel's IPVS, in one UML boot.
# Run it with tests/vm/ipvs-run (which builds and boots), or by hand:
#
#   tests/vm/uml-run --timeout 600 tests/vm/ipvs-suite.sh
#
# 1. seeds: hav-linux programs the LVS seed configs (NAT from the shared
#    fixtures with addresses adapted, DR, TUN) and `ipvsadm -Ln` shows
#    exactly the expected table (tests/vm/ipvs/*.expected); a re-apply
#    changes nothing; an ldirectord.cf runs as it is (quiescent, fallback)
#    and its `hav-linux convert` output gives the same table
# 2. reload: with traffic through two services, a reload that changes one
#    real server changes only that line of `ipvsadm -Ln`, keeps every other
#    real server in place and keeps the services' connection counters (a
#    rebuild would reset them)
# 3. health: inhibit_on_failure sets weight 0, a dead real server without it
#    is removed, and with all down the sorry server appears and answers
# 4. ha_suspend and lvs_sync_daemon follow the VRRP instance's state
# 5. a refused change names the service in the error
# 6. scheduler conformance: rr wrr lc wlc sed nq dh sh fo ovf mh lblc lblcr
#    (and the sh/mh port and fallback flags) choose the same real server in
#    the kernel and in hav-core for every connection, over IPv4 and (the
#    hashing ones and a few more) IPv6 (tests/src/bin/ipvs-conform.rs)
# 7. the daemon (`hav-linux -f CONF`) runs the checkers: killing a real
#    server's service removes it / sets weight 0, the sorry server appears
#    when all are down (skipped while the daemon does not run the director)
# 8. the daemon runs an ldirectord.cf: its HTTP negotiate check sets a dead
#    real server's weight to 0 (quiescent), SIGTERM removes the service
# Closes with "N passed, N failed"; exits 1 if any check failed.
set -uo pipefail

[[ "${HAV_VM:-}" == uml ]] || { echo "ipvs-suite.sh: run me in the guest: tests/vm/uml-run $0" >&2; exit 2; }

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
bin=${HAV_BIN_DIR:-${CARGO_TARGET_DIR:-$repo/target}/debug}
HAV=$bin/hav-linux
CONFORM=$bin/ipvs-conform
for b in "$HAV" "$CONFORM"; do
  [[ -x "$b" ]] || { echo "ipvs-suite.sh: $b is missing: cargo build -p hav-linux -p hav-tests" >&2; exit 2; }
done
export HAV_LOG=${HAV_LOG:-warn}

pass=0 fail=0 skip=0
ok()  { pass=$((pass + 1)); echo "ok - $*"; }
bad() { fail=$((fail + 1)); echo "not ok - $*"; }
skipped() { skip=$((skip + 1)); echo "ok - # SKIP $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
section() { printf '\n# %s\n' "$*"; }
fetch() { timeout 5 busybox wget -q -O - "$@" 2>/dev/null; }
# The table without the connection counters: service lines and
# "-> addr forward weight" lines, in kernel order.
table() { ipvsadm -Ln | sed 1,3d | awk '{ if ($1 == "->") print $1, $2, $3, $4; else print }'; }
apply() { "$HAV" -f "$1" ipvs apply --no-scripts "${@:2}"; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

section "guest: $(uname -sr); $("$HAV" ipvs info | head -1)"
[[ -e /dev/fd ]] || ln -s /proc/self/fd /dev/fd # process substitution
sysctl -qw net.ipv4.vs.conntrack=1 2>/dev/null

# ------------------------------------------------------------------ 1. seeds
section "seed configs: hav-linux programs them, ipvsadm -Ln shows exactly the expected table"
# The fixture (tests/fixtures, copied from the field) as it is, its private and public addresses moved to TEST-NET ranges.
fixtures=${HAV_FIXTURES:-$here/../fixtures}
sed -e 's/192\.168\.102\./198.51.100./g' -e 's/193\.168\.140\.80/192.0.2.80/g' \
  "$fixtures/keepalived/lvs-nat-gateway.conf" >"$work/lvs-nat-gateway.conf" \
  || bad "cannot read $fixtures/keepalived/lvs-nat-gateway.conf"
for conf in "$work/lvs-nat-gateway.conf" "$here/ipvs/lvs-dr.conf" "$here/ipvs/lvs-tun.conf"; do
  name=$(basename "$conf" .conf)
  ipvsadm -C
  out=$(apply "$conf" 2>&1); rc=$?
  echo "$out" | grep -E '^apply'
  check "$name: hav-linux ipvs apply succeeds" test "$rc" = 0
  got=$(ipvsadm -Ln)
  if diff -u "$here/ipvs/$name.expected" <(echo "$got") >"$work/diff"; then
    ok "$name: ipvsadm -Ln is exactly tests/vm/ipvs/$name.expected"
  else
    bad "$name: ipvsadm -Ln differs from tests/vm/ipvs/$name.expected"; cat "$work/diff"
  fi
  out=$(apply "$conf" 2>&1)
  check "$name: applying again changes nothing" grep -q 'services +0 ~0 -0, real servers +0 ~0 -0' <<<"$out"
done
echo "$got"
sn=$(ipvsadm -Sn)
check "lvs-tun: the kernel holds the GUE tunnel (port 6080) and the GRE one" \
  bash -c "grep -q -- '-r 203.0.113.43:8443 -i -w 3 --tun-type gue --tun-port 6080' <<<'$sn' && grep -q -- '-r 203.0.113.44:8443 -i -w 1 --tun-type gre' <<<'$sn'"
# The table as hav reads it back equals what ipvsadm saves (GUE/GRE aside,
# which this ipvsadm prints with extra options).
ipvsadm -C
apply "$here/ipvs/lvs-dr.conf" >/dev/null 2>&1
# (ipvsadm -S leaves thresholds out: they are compared with --thresholds.)
check "hav-linux ipvs dump reads back what ipvsadm -Sn saves (sorted)" \
  diff <("$HAV" ipvs dump | sed 's/ -x [0-9]* -y [0-9]*$//' | sort) <(ipvsadm -Sn | sed -e 's/-b sh-port/-b flag-2/' | sort)
check "thresholds: ipvsadm -Ln --thresholds shows upper 2000, lower 1500 for 198.51.100.13" \
  grep -Eq -- '-> 198\.51\.100\.13:80 +2000 +1500' <<<"$(ipvsadm -Ln --thresholds)"
info=$("$HAV" ipvs info)
check "hav-linux ipvs info reads the timeouts ipvsadm shows" \
  test "$(ipvsadm -L --timeout)" = "$(awk '/^timeouts/{ print "Timeout (tcp tcpfin udp): " $3, $7, $10 }' <<<"$info")"
"$HAV" ipvs set-timeouts 901 0 301
check "hav-linux ipvs set-timeouts 901 0 301: ipvsadm shows 901 120 301" \
  test "$(ipvsadm -L --timeout)" = "Timeout (tcp tcpfin udp): 901 120 301"
ipvsadm --set 900 120 300
"$HAV" ipvs flush
check "hav-linux ipvs flush empties the table" test -z "$(table)"

# An ldirectord.cf as it is (docs/ldirectord.md): the table it means, quiescent=yes sets a failed
# real server's weight to 0 where quiescent=no removes it, the fallback (at weight 0 while quiescent)
# takes the traffic when all are down, and its `hav-linux convert` output programs the same table.
ld=$here/ipvs/ldirectord.cf
ipvsadm -C
out=$(apply "$ld" 2>&1); rc=$?
check "ldirectord.cf: hav-linux ipvs apply succeeds" test "$rc" = 0
if diff -u "$here/ipvs/ldirectord.expected" <(ipvsadm -Ln) >"$work/diff"; then
  ok "ldirectord.cf: ipvsadm -Ln is exactly tests/vm/ipvs/ldirectord.expected"
else
  bad "ldirectord.cf: ipvsadm -Ln differs from tests/vm/ipvs/ldirectord.expected"; cat "$work/diff"
fi
ipvsadm -C
apply "$ld" --down 198.51.100.11:80 --down 198.51.100.21:80 >/dev/null 2>&1
got=$(table)
check "ldirectord.cf: quiescent=yes keeps a failed real server at weight 0" grep -q -- '-> 198.51.100.11:80 Route 0' <<<"$got"
check "ldirectord.cf: quiescent=no removes a failed real server" bash -c "! grep -q 198.51.100.21 <<<'$got'"
ipvsadm -C
apply "$ld" --down 198.51.100.11:80 --down 198.51.100.12:80 >/dev/null 2>&1
check "ldirectord.cf: with all real servers down the fallback gets weight 1" grep -q -- '-> 127.0.0.1:80 Route 1' <<<"$(table)"
"$HAV" convert "$ld" >"$work/ldirectord-converted.conf" 2>/dev/null
ipvsadm -C
apply "$work/ldirectord-converted.conf" >/dev/null 2>&1
check "ldirectord.cf: its hav-linux convert output programs the same table" \
  diff "$here/ipvs/ldirectord.expected" <(ipvsadm -Ln)
"$HAV" ipvs flush

# ---------------------------------------------------------------- 2. reload
section "reload: one real server changed, only that one changes"
ip link add hav-d0 type dummy && ip link set hav-d0 up
for a in 192.0.2.101 192.0.2.102 192.0.2.130 10.99.2.1 10.99.2.2 10.99.2.3 10.99.2.4 10.99.2.9; do
  ip addr add "$a/32" dev hav-d0
done
httpd_pids=()
for n in 1 2 3 4 9; do
  mkdir -p "$work/www$n"; echo "rs$n" >"$work/www$n/index.html"
  [[ $n == 9 ]] && echo sorry >"$work/www$n/index.html"
  busybox httpd -f -p "10.99.2.$n:80" -h "$work/www$n" & httpd_pids+=($!)
done
sleep 0.3
pool() { # pool VIP SCHED W2 [LAST-RS]
  cat <<EOF
virtual_server $1 80 {
    lb_algo $2
    lb_kind NAT
    real_server 10.99.2.1 80 {
        weight 1
    }
    real_server 10.99.2.2 80 {
        weight $3
    }
    real_server ${4:-10.99.2.3} 80 {
        weight 1
    }
}
EOF
}
{ pool 192.0.2.101 rr 1; pool 192.0.2.102 wlc 1; } >"$work/reload-a.conf"
{ pool 192.0.2.101 rr 4; pool 192.0.2.102 wlc 1; } >"$work/reload-b.conf"
{ pool 192.0.2.101 rr 4 10.99.2.4; pool 192.0.2.102 wlc 1; } >"$work/reload-c.conf"
apply "$work/reload-a.conf" | grep -E '^apply'
seen=""
for i in 1 2 3 4 5 6; do seen+="$(fetch http://192.0.2.101/) "; done
for i in 1 2 3; do fetch http://192.0.2.102/ >/dev/null; done
echo "6 requests through 192.0.2.101 (rr): $seen"
check "traffic flows through IPVS to the three real servers" \
  bash -c "grep -q rs1 <<<'$seen' && grep -q rs2 <<<'$seen' && grep -q rs3 <<<'$seen'"
sleep 2.2 # the 6.1 estimator refreshes the counters ipvsadm reads every 2 s
conns() { ipvsadm -Ln --stats | awk -v s="$1" '$1 == "TCP" && $2 == s { print $3 }'; }
c101=$(conns 192.0.2.101:80) c102=$(conns 192.0.2.102:80)
echo "connections counted: 192.0.2.101:80 $c101, 192.0.2.102:80 $c102"
before=$(table)
out=$(apply "$work/reload-b.conf" 2>&1); echo "$out" | grep -E '^apply'
check "reload-b reports exactly one real server changed" grep -q 'services +0 ~0 -0, real servers +0 ~1 -0' <<<"$out"
after=$(table)
d=$(diff <(echo "$before") <(echo "$after"))
echo "$d"
check "ipvsadm -Ln differs in exactly one line, 10.99.2.2:80 now weight 4" \
  bash -c "[[ \$(grep -c '^[<>]' <<<'$d') == 2 ]] && grep -Eq '^> -> 10\.99\.2\.2:80 Masq 4$' <<<'$d'"
check "the services kept their connection counters ($c101, $c102): not rebuilt" \
  bash -c "[[ '$c101' -gt 0 && '$(conns 192.0.2.101:80)' == '$c101' && '$(conns 192.0.2.102:80)' == '$c102' ]]"
before=$after
out=$(apply "$work/reload-c.conf" 2>&1); echo "$out" | grep -E '^apply'
check "reload-c reports one real server added and one removed" grep -q 'services +0 ~0 -0, real servers +1 ~0 -1' <<<"$out"
after=$(table); d=$(diff <(echo "$before") <(echo "$after")); echo "$d"
check "only 10.99.2.3 left and 10.99.2.4 came, in service 192.0.2.101:80" \
  bash -c "[[ \$(grep -c '^[<>]' <<<'$d') == 2 ]] && grep -q '^< -> 10.99.2.3:80' <<<'$d' && grep -q '^> -> 10.99.2.4:80' <<<'$d' && grep -q '10.99.2.3:80' <<<'$after'"
out=$(apply "$work/reload-c.conf" --repeat 3 2>&1); echo "$out" | grep -E '^(apply|reload)'
check "no-op reloads change nothing" test "$(grep -c 'services +0 ~0 -0, real servers +0 ~0 -0' <<<"$out")" = 4
# The same reloads inside one director (the daemon's case: the table as last
# applied is trusted, only changed virtual servers are looked at).
ipvsadm -C
apply "$work/reload-a.conf" >/dev/null
first=$(table)
ipvsadm -C
out=$(apply "$work/reload-a.conf" --then "$work/reload-b.conf" --then "$work/reload-c.conf" \
  --then "$work/reload-a.conf" --then "$work/reload-a.conf" 2>&1)
echo "$out" | grep -E '^(apply|reload)'
check "in one director: a, b (~1), c (+1 -1), a (+1 ~1 -1), a (nothing), in that order" \
  test "$(grep -Eo 'real servers [^;]*' <<<"$out" | tr '\n' ,)" = \
  "real servers +6 ~0 -0,real servers +0 ~1 -0,real servers +1 ~0 -1,real servers +1 ~1 -1,real servers +0 ~0 -0,"
check "in one director: the table after going back to a is a's" test "$(table)" = "$first"
ipvsadm -C

# ---------------------------------------------------------------- 3. health
section "health verdicts: inhibit_on_failure, removal, sorry server"
cat >"$work/health.conf" <<'EOF'
virtual_server 192.0.2.130 80 {
    lb_algo rr
    lb_kind NAT
    sorry_server 10.99.2.9 80
    real_server 10.99.2.1 80 {
        weight 2
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 1
        }
    }
    real_server 10.99.2.2 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
        }
    }
}
EOF
apply "$work/health.conf" >/dev/null
normal=$(table); echo "$normal"
apply "$work/health.conf" --down 10.99.2.2:80 | grep -E '^Down'
t=$(table); echo "$t"
check "a dead real server without inhibit_on_failure is removed" \
  bash -c "! grep -q 10.99.2.2 <<<'$t' && grep -q -- '-> 10.99.2.1:80 Masq 2$' <<<'$t' && ! grep -q 10.99.2.9 <<<'$t'"
apply "$work/health.conf" --down 10.99.2.1:80 | grep -E '^Down'
t=$(table); echo "$t"
check "inhibit_on_failure keeps the dead real server at weight 0" \
  bash -c "grep -q -- '-> 10.99.2.1:80 Masq 0$' <<<'$t' && grep -q -- '-> 10.99.2.2:80 Masq 1$' <<<'$t'"
apply "$work/health.conf" --down 10.99.2.1:80 --down 10.99.2.2:80 | grep -E '^Down'
t=$(table); echo "$t"
check "all down: the sorry server appears (weight 1), the inhibited one stays at 0" \
  bash -c "grep -q -- '-> 10.99.2.9:80 Masq 1$' <<<'$t' && grep -q -- '-> 10.99.2.1:80 Masq 0$' <<<'$t' && ! grep -q 10.99.2.2 <<<'$t'"
check "all down: a request to the VIP is answered by the sorry server" test "$(fetch http://192.0.2.130/)" = sorry
apply "$work/health.conf" >/dev/null
check "all up again: the table is back as it was, without the sorry server" test "$(table)" = "$normal"
# The scripts: notify_down of the real server, quorum_down of the virtual server.
sed -e "s|    sorry_server 10.99.2.9 80|    sorry_server 10.99.2.9 80\n    quorum_down \"/bin/touch $work/quorum-down\"\n    quorum_up \"/bin/touch $work/quorum-up\"|" \
  -e "s|        weight 1$|        weight 1\n        notify_down \"/bin/touch $work/rs2-down\"|" "$work/health.conf" >"$work/health-scripts.conf"
"$HAV" -f "$work/health-scripts.conf" ipvs apply --down 10.99.2.2:80 --down 10.99.2.1:80 --up 10.99.2.1:80 >/dev/null 2>&1
for _ in 1 2 3 4 5 6 7 8 9 10; do [[ -e "$work/quorum-up" ]] && break; sleep 0.2; done
check "scripts: notify_down ran for 10.99.2.2, quorum_down when all were down, quorum_up when 10.99.2.1 came back" \
  test -e "$work/rs2-down" -a -e "$work/quorum-down" -a -e "$work/quorum-up"
ipvsadm -C

# ------------------------------------------------- 4. ha_suspend, sync daemon
section "ha_suspend and lvs_sync_daemon follow the VRRP instance"
ip link add hav-sync0 type dummy && ip link set hav-sync0 multicast on up
ip addr add 192.0.2.250/24 dev hav-sync0
cat >"$work/sync.conf" <<'EOF'
global_defs {
    lvs_sync_daemon hav-sync0 VI_1 id 7 maxlen 1400 port 8849 ttl 2 group 224.0.0.82
}
vrrp_instance VI_1 {
    interface hav-sync0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        192.0.2.120
    }
}
virtual_server 192.0.2.120 80 {
    ha_suspend
    lb_algo rr
    real_server 10.99.2.1 80 {
        weight 1
    }
}
virtual_server 192.0.2.121 80 {
    lb_algo rr
    real_server 10.99.2.1 80 {
        weight 1
    }
}
EOF
out=$(apply "$work/sync.conf" 2>&1); echo "$out" | grep -E '^apply'
t=$(table); d=$(ipvsadm -Ln --daemon); echo "$t"; echo "$d"
check "backup: the ha_suspend service is not installed, the other one is" \
  bash -c "! grep -q 192.0.2.120 <<<'$t' && grep -q 192.0.2.121 <<<'$t'"
check "backup: the sync daemon runs as backup on hav-sync0, syncid 7, maxlen 1400, group 224.0.0.82, port 8849, ttl 2" \
  grep -Eq 'backup sync daemon \(mcast=hav-sync0, syncid=7, maxlen=1400, group=224\.0\.0\.82, port=8849, ttl=2\)' <<<"$d"
out=$(apply "$work/sync.conf" --master VI_1 2>&1); echo "$out" | grep -E '^apply'
t=$(table); d=$(ipvsadm -Ln --daemon); echo "$t"; echo "$d"
check "master: the ha_suspend service is installed" grep -q 192.0.2.120 <<<"$t"
check "master: the sync daemon runs as master, the backup one stopped" \
  bash -c "grep -Eq 'master sync daemon \(mcast=hav-sync0, syncid=7' <<<'$d' && ! grep -q backup <<<'$d'"
out=$(apply "$work/sync.conf" 2>&1)
t=$(table); d=$(ipvsadm -Ln --daemon)
check "backup again: the ha_suspend service is removed, sync back to backup" \
  bash -c "! grep -q 192.0.2.120 <<<'$t' && grep -q 'backup sync daemon' <<<'$d' && ! grep -q master <<<'$d'"
ipvsadm --stop-daemon backup 2>/dev/null; ipvsadm --stop-daemon master 2>/dev/null
ipvsadm -C

# ------------------------------------------------------------- 5. errors
section "a refused change names what it was about"
printf 'virtual_server 192.0.2.140 80 {\n    lb_algo nosuch\n    real_server 10.99.2.1 80 {\n    }\n}\n' >"$work/bad.conf"
out=$(apply "$work/bad.conf" 2>&1); rc=$?
echo "$out" | grep -v WARN
check "unknown scheduler: exit status 1" test "$rc" = 1
check "unknown scheduler: the error names the service and the scheduler" \
  grep -q 'IPVS NEW_SERVICE service TCP 192.0.2.140:80 (scheduler nosuch): no such scheduler' <<<"$out"
ipvsadm -C

# ------------------------------------------------------ 6. conformance
section "scheduler conformance: kernel IPVS vs hav-core, connection by connection"
ip link add hav-c type dummy && ip link set hav-c up
ip addr add 192.0.2.1/32 dev hav-c
for i in 1 2 3 4; do ip addr add "10.99.1.$i/32" dev hav-c; done
for i in $(seq 1 40); do ip addr add "10.98.0.$i/32" dev hav-c; done
while IFS= read -r line; do
  echo "$line"
  case "$line" in ok*) pass=$((pass + 1)) ;; "not ok"*) fail=$((fail + 1)) ;; esac
done < <("$CONFORM" --vip 192.0.2.1 --rs 10.99.1.1,10.99.1.2,10.99.1.3,10.99.1.4 --clients 10.98.0.1-40 \
  --conns "${HAV_CONFORM_CONNS:-120}" rr wrr lc wlc sed nq dh sh sh+port sh+fallback fo ovf mh mh+port mh+fallback lblc lblcr 2>&1)
ip link del hav-c
# The hashing schedulers fold IPv6 addresses differently: again over IPv6.
sysctl -qw net.ipv6.conf.all.disable_ipv6=0 2>/dev/null
ip link add hav-c6 type dummy && ip link set hav-c6 up
ip -6 addr add 2001:db8:ff::1/128 dev hav-c6 nodad
for i in 1 2 3 4; do ip -6 addr add "2001:db8:99::$i/128" dev hav-c6 nodad; done
for i in $(seq 1 40); do ip -6 addr add "2001:db8:98::$(printf %x "$i")/128" dev hav-c6 nodad; done
while IFS= read -r line; do
  echo "$line"
  case "$line" in ok*) pass=$((pass + 1)) ;; "not ok"*) fail=$((fail + 1)) ;; esac
done < <("$CONFORM" --vip 2001:db8:ff::1 --rs 2001:db8:99::1,2001:db8:99::2,2001:db8:99::3,2001:db8:99::4 \
  --clients 2001:db8:98::1-28 --base-port 8200 --conns "${HAV_CONFORM_CONNS:-120}" rr wrr wlc dh sh sh+port sh+fallback mh mh+port mh+fallback 2>&1)
ip link del hav-c6

# ------------------------------------------------------------ 7. daemon
section "the daemon: checkers drive the table"
if [[ -x "$here/ipvs-daemon.sh" ]]; then
  source "$here/ipvs-daemon.sh"
else
  bad "daemon checks: tests/vm/ipvs-daemon.sh is missing from the repository"
fi

# ------------------------------------------------- 8. daemon, ldirectord.cf
section "the daemon runs an ldirectord.cf: HTTP negotiate checks, quiescent"
until_ok() { local end=$((SECONDS + $1)); shift; while ((SECONDS < end)); do "$@" && return 0; sleep 0.2; done; "$@"; }
ld_pids=()
for n in 1 2; do
  ip addr add "10.99.3.$n/32" dev hav-d0
  mkdir -p "$work/ld$n"; echo "alive ld$n" >"$work/ld$n/index.html"
  busybox httpd -f -p "10.99.3.$n:80" -h "$work/ld$n" & ld_pids+=($!)
done
cat >"$work/ldirectord.cf" <<'EOF'
checkinterval=1
checktimeout=1
virtual=192.0.2.160:80
	real=10.99.3.1:80 masq 2
	real=10.99.3.2:80 masq 1
	service=http
	request="index.html"
	receive="^alive"
	scheduler=rr
EOF
"$HAV" -f "$work/ldirectord.cf" -n --control "$work/ld.sock" --pid "$work/ld.pid" 2>"$work/ld.log" & ld_daemon=$!
check "ldirectord.cf daemon: both real servers in the table" \
  until_ok 10 bash -c "ipvsadm -Ln | grep -q '10.99.3.1:80 .*Masq *2' && ipvsadm -Ln | grep -q '10.99.3.2:80 .*Masq *1'"
kill "${ld_pids[0]}"
check "ldirectord.cf daemon: a failed HTTP check sets weight 0 (quiescent=yes, the default)" \
  until_ok 10 bash -c "ipvsadm -Ln | grep -q '10.99.3.1:80 .*Masq *0 '"
kill "$ld_daemon"; wait "$ld_daemon" 2>/dev/null
check "ldirectord.cf daemon: SIGTERM removes its virtual service" bash -c "! ipvsadm -Ln | grep -q 192.0.2.160"
kill "${ld_pids[@]}" 2>/dev/null; wait "${ld_pids[@]}" 2>/dev/null

kill "${httpd_pids[@]}" 2>/dev/null; wait "${httpd_pids[@]}" 2>/dev/null
ipvsadm -C
echo
echo "$pass passed, $fail failed, $skip skipped"
((fail == 0))
