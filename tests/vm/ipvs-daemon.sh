#!/usr/bin/env bash
# Sourced by tests/vm/ipvs-suite.sh (section 7), in the guest: the daemon
# (`hav-linux -f CONF -C`, checkers and IPVS only) with real TCP_CHECKs
# against the suite's busybox httpd real servers (10.99.2.1, .2 and the
# sorry server .9, pids in httpd_pids[0], [1], [4]).
#  - killing a real server's httpd removes it (weight 0 with inhibit_on_failure)
#  - with all killed, the sorry server appears and answers the VIP
#  - restarting them brings the table back; SIGTERM removes the services
#    and, with omega, runs quorum_down
#  - lvs_notify_fifo (created by the daemon) and its lvs_notify_fifo_script
#    reader get keepalived's RS and VS lines for each of those changes
[[ -n "${HAV:-}" && -n "${work:-}" ]] || { echo "ipvs-daemon.sh: sourced by ipvs-suite.sh" >&2; return 2 2>/dev/null || exit 2; }

wait_for() { # wait_for SECONDS COMMAND...: until COMMAND succeeds
  local end=$((SECONDS + $1)); shift
  while ((SECONDS < end)); do "$@" && return 0; sleep 0.2; done
  "$@"
}
has_line() { table | grep -Eq -- "$1"; }
lacks() { ! table | grep -q -- "$1"; }
gave_up() { # gave_up MESSAGE LOG PID: a daemon that did not come up: say so, show its log, stop it
  bad "$1"
  tail -20 "$2"
  kill -TERM "$3" 2>/dev/null; wait "$3" 2>/dev/null
}
start_httpd() { # start_httpd N: busybox httpd for 10.99.2.N, pid in httpd_pids[slot]
  busybox httpd -f -p "10.99.2.$1:80" -h "$work/www$1" & httpd_pids[$2]=$!
}

ip addr add 192.0.2.150/32 dev hav-d0 2>/dev/null
cat >"$work/daemon.conf" <<'EOF'
global_defs {
    router_id hav-ipvs-suite
    lvs_notify_fifo WORK/lvs.fifo
    lvs_notify_fifo_script WORK/lvs-reader.sh
}
virtual_server 192.0.2.150 80 {
    protocol TCP
    omega
    quorum_down "/bin/touch WORK/omega-quorum-down"
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    sorry_server 10.99.2.9 80
    real_server 10.99.2.1 80 {
        weight 2
        inhibit_on_failure
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
    real_server 10.99.2.2 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
EOF
sed -i "s|WORK|$work|" "$work/daemon.conf"
printf '%s\n' '#!/bin/sh' "trap 'echo term >> $work/lvs.out; exit 0' TERM" \
  "while read -r l; do echo \"\$l\" >> $work/lvs.out; done < \"\$1\"" >"$work/lvs-reader.sh"
chmod 755 "$work/lvs-reader.sh"
fifo_has() { grep -qxF -- "$1" "$work/lvs.out" 2>/dev/null; }
rs_line() { echo "RS [10.99.2.$1]:tcp:80 [192.0.2.150]:tcp:80 $2"; }
fifo_seq() { # fifo_seq LINE...: these lines, in this order, are what the FIFO got of them
  local want="" got
  for l in "$@"; do want+="$l|"; done
  got=$(grep -xF "${@/#/-e}" "$work/lvs.out" 2>/dev/null | tr '\n' '|')
  [[ "$got" == "$want" ]]
}
ipvsadm -C
"$HAV" -n -f "$work/daemon.conf" -C --log-level info -p "$work/hav.pid" --control "$work/hav.sock" >"$work/daemon.log" 2>&1 &
daemon=$!
if wait_for 15 has_line '^-> 10\.99\.2\.2:80 Masq 1$'; then
  ok "daemon: programs the virtual server with both real servers"
  table
  kill "${httpd_pids[1]}"; wait "${httpd_pids[1]}" 2>/dev/null
  check "daemon: killing 10.99.2.2's httpd removes it (TCP_CHECK fails)" wait_for 15 lacks '10.99.2.2:80'
  check "daemon: lvs_notify_fifo was created by the daemon" test -p "$work/lvs.fifo"
  check "daemon: its reader's first line is the virtual server starting with its quorum" \
    wait_for 5 bash -c "test \"\$(head -1 '$work/lvs.out')\" = 'VS [192.0.2.150]:tcp:80 UP'"
  check "daemon: its lvs_notify_fifo_script reader got: $(rs_line 2 DOWN)" wait_for 5 fifo_has "$(rs_line 2 DOWN)"
  kill "${httpd_pids[0]}"; wait "${httpd_pids[0]}" 2>/dev/null
  check "daemon: killing 10.99.2.1's httpd sets its weight to 0 (inhibit_on_failure)" \
    wait_for 15 has_line '^-> 10\.99\.2\.1:80 Masq 0$'
  check "daemon: with all real servers down the sorry server appears" wait_for 5 has_line '^-> 10\.99\.2\.9:80 Masq 1$'
  check "daemon: the FIFO says 10.99.2.1 DOWN, then the quorum lost (VS DOWN)" \
    wait_for 5 fifo_seq "$(rs_line 1 DOWN)" "VS [192.0.2.150]:tcp:80 DOWN"
  table
  check "daemon: the VIP is answered by the sorry server" test "$(fetch http://192.0.2.150/)" = sorry
  start_httpd 1 0; start_httpd 2 1
  check "daemon: restarted real servers come back at their weights" \
    wait_for 15 bash -c "$(declare -f table has_line); has_line '^-> 10\.99\.2\.1:80 Masq 2$' && has_line '^-> 10\.99\.2\.2:80 Masq 1$'"
  check "daemon: quorum regained, the sorry server leaves" wait_for 5 lacks '10.99.2.9:80'
  check "daemon: the FIFO says both real servers UP and the quorum regained (VS UP)" \
    wait_for 5 bash -c "$(declare -f fifo_has rs_line); work='$work'; fifo_has \"\$(rs_line 1 UP)\" && fifo_has \"\$(rs_line 2 UP)\" && fifo_has 'VS [192.0.2.150]:tcp:80 UP'"
  table
  check "daemon: quorum_down ran when all real servers were down" test -e "$work/omega-quorum-down"
  rm -f "$work/omega-quorum-down"
  kill -TERM "$daemon"; wait "$daemon" 2>/dev/null
  check "daemon: SIGTERM removes its virtual server" lacks '192.0.2.150:80'
  check "daemon: omega: SIGTERM ran quorum_down" wait_for 3 test -e "$work/omega-quorum-down"
  want="$(rs_line 1 DOWN)|$(rs_line 2 DOWN)|VS [192.0.2.150]:tcp:80 DOWN|term|"
  check "daemon: omega: at SIGTERM the reader got both real servers and the virtual server DOWN, then SIGTERM" \
    test "$(tail -4 "$work/lvs.out" | tr '\n' '|')" = "$want"
  check "daemon: the FIFO the daemon created is removed at stop" test ! -e "$work/lvs.fifo"
  cat "$work/lvs.out"
  # -I (--dont-release-ipvs): the services outlive the daemon, as keepalived's -I leaves them.
  "$HAV" -n -I -f "$work/daemon.conf" -C --log-level info -p "$work/hav.pid" --control "$work/hav.sock" >"$work/daemon-I.log" 2>&1 &
  daemon=$!
  if wait_for 15 has_line '^-> 10\.99\.2\.2:80 Masq 1$'; then
    kill -TERM "$daemon"; wait "$daemon" 2>/dev/null
    check "daemon: with -I, SIGTERM leaves its virtual server and real servers in place" \
      bash -c "$(declare -f table has_line); has_line '^-> 10\.99\.2\.1:80 Masq 2$' && has_line '^-> 10\.99\.2\.2:80 Masq 1$'"
    check "daemon: with -I, the log says the services were left" grep -q 'left in place (--dont-release-ipvs)' "$work/daemon-I.log"
  else
    gave_up "daemon: -I run did not program 192.0.2.150:80 within 15 s" "$work/daemon-I.log" "$daemon"
  fi
  ipvsadm -C
else
  bad "daemon: did not program 192.0.2.150:80 within 15 s"
  table
  tail -20 "$work/daemon.log"
  kill -TERM "$daemon" 2>/dev/null; wait "$daemon" 2>/dev/null
fi
grep -E 'IPVS|verdict|ERROR' "$work/daemon.log" | tail -12

# keepalived's checker on the same config: the FIFO lines hav writes are keepalived's. Its
# checker writes each line with a trailing NUL byte (stripped here; hav writes none). At stop,
# keepalived's reader was not seen to get omega's lines (hav lets its reader read them first),
# so the lines are compared up to the stop.
if command -v keepalived >/dev/null; then
  rm -f "$work/lvs.out"
  ipvsadm -C
  keepalived -n -C -G -f "$work/daemon.conf" -p "$work/ka.pid" -c "$work/ka-check.pid" >"$work/keepalived.log" 2>&1 &
  ka=$!
  ka_lines() { tr -d '\000' <"$work/lvs.out" 2>/dev/null | grep -v '^term$'; }
  ka_has() { ka_lines | grep -qxF -- "$1"; }
  if wait_for 20 has_line '^-> 10\.99\.2\.2:80 Masq 1$'; then
    check "keepalived: its reader's first line is the virtual server starting with its quorum" \
      wait_for 10 ka_has 'VS [192.0.2.150]:tcp:80 UP'
    kill "${httpd_pids[1]}"; wait "${httpd_pids[1]}" 2>/dev/null
    check "keepalived: its lvs_notify_fifo_script reader got: $(rs_line 2 DOWN)" wait_for 20 ka_has "$(rs_line 2 DOWN)"
    start_httpd 2 1
    check "keepalived: and $(rs_line 2 UP)" wait_for 20 ka_has "$(rs_line 2 UP)"
    want="VS [192.0.2.150]:tcp:80 UP|$(rs_line 2 DOWN)|$(rs_line 2 UP)|"
    check "keepalived: these lines, in this order, as hav writes them" test "$(ka_lines | tr '\n' '|')" = "$want"
    ka_lines
    kill -TERM "$ka"; wait "$ka" 2>/dev/null
  else
    gave_up "keepalived: did not program 192.0.2.150:80 within 20 s" "$work/keepalived.log" "$ka"
  fi
  ipvsadm -C
else
  bad "keepalived is not installed (scripts/install-deps installs it)"
fi
