# bench.sh - shell pieces shared by the benchmarks of bench/ (sourced).
#
# A benchmark sets, before sourcing this file:
#   BENCH   its name, put before its messages ("smtp-accept")
#   here    the bench/ directory
#   PY      the Python interpreter (/usr/bin/python3)
# and, before it calls the server functions below:
#   W       its temporary directory (logs, the copy of the herald binary)
#   PF      the private Postfix's directory: config in $PF/conf, queue in
#           $PF/queue, data in $PF/data
#   HD      Herald's data directory; HPORT its submission port
#   HERALD  the herald binary; hset an array of --set options given to
#           every herald command (may be empty)
# The functions set PMASTER (Postfix's master), pf_started and HPID.

usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; }
say() { echo "$BENCH: $*" >&2; }
die() { echo "$BENCH: $*" >&2; exit 1; }

# free_port [PORT...]: a TCP port of 127.0.0.1 free now, none of PORT...
# It is taken below the ephemeral range (ip_local_port_range), where no
# outgoing connection gets its local port: a benchmark makes tens of
# thousands of connections, and a port of that range chosen now could be
# some connection's by the time a server binds it (or be held by its
# TIME_WAIT, which blocks the bind).  Falls back on a port the kernel picks.
free_port() {
	local p
	for _ in $(seq 50); do
		p=$("$PY" - <<'EOF' || true
import random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
tries = [random.randrange(10000, lo) for _ in range(100)] if lo > 11000 else []
for port in tries + [0]:
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        got = s.getsockname()[1]
    except OSError:
        continue
    finally:
        s.close()
    print(got)
    break
EOF
)
		[ -n "$p" ] || { sleep 0.2; continue; }
		case " $* " in *" $p "*) continue ;; esac
		echo "$p"
		return
	done
	die "no free TCP port on 127.0.0.1"
}

# wait_port PORT SECONDS: until something accepts connections on
# 127.0.0.1:PORT; status 1 when nothing did within SECONDS.
wait_port() {
	"$PY" - "$1" "$2" <<'EOF'
import socket, sys, time
port, limit = int(sys.argv[1]), float(sys.argv[2])
end = time.monotonic() + limit
while time.monotonic() < end:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
}

# stop_pid PID [SECONDS]: SIGTERM, wait up to SECONDS (default 10) for it to
# go, then SIGKILL.  For processes this script started.
stop_pid() {
	local pid=$1 n=$((${2:-10} * 10))
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || return 0
	for _ in $(seq "$n"); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -9 "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

now() { date +%s.%N; }

# Other work on the machine skews the figures: how busy the CPUs are over
# 2 s, in percent (the load average lags by a minute).
cpu_busy() {
	local a b
	a=($(head -1 /proc/stat)); sleep 2; b=($(head -1 /proc/stat))
	awk -v u=$((b[1]+b[2]+b[3]+b[6]+b[7]+b[8] - a[1]-a[2]-a[3]-a[6]-a[7]-a[8])) \
	    -v i=$((b[4]+b[5] - a[4]-a[5])) 'BEGIN { printf "%.0f", 100 * u / (u + i) }'
}

# fs_describe DIR: the device and type of DIR's file system ("/dev/vda
# ext4").  An ext4 without a journal (some VMs' root file system) behaves
# unlike a server's disk: fsync writes the parent directory, and new
# inodes skip those deleted in the last minutes (up to 6), which costs much
# CPU after a big rm -rf; says so, with a warning.
fs_describe() {
	local dev desc jt
	dev=$(findmnt -no SOURCE -T "$1" 2>/dev/null || df -P "$1" | awk 'NR==2 {print $1}')
	desc="$dev $(findmnt -no FSTYPE -T "$1" 2>/dev/null)"
	jt=/sys/fs/ext4/$(basename "$dev")/journal_task
	if [ -r "$jt" ] && grep -q none "$jt"; then
		desc="$desc without journal"
		say "warning: $dev is an ext4 without journal: figures depend on what was deleted there in the last minutes${FS_HINT:+; $FS_HINT}"
	fi
	echo "$desc"
}

# fs_loop_mount MB: a fresh ext4 (with its journal, default options) of MB
# megabytes in an image file $W/fs.img on the host file system, loop-mounted
# on $W/fs: the same state at every run, whatever was created or deleted on
# the host before.  Sets mounted; fs_loop_umount undoes it.
fs_loop_mount() {
	command -v mkfs.ext4 >/dev/null || die "--fs loop needs mkfs.ext4 (e2fsprogs)"
	truncate -s "${1}M" "$W/fs.img"
	timeout "${STEP_TIMEOUT:-900}" mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0,nodiscard \
		"$W/fs.img" >"$W/mkfs.log" 2>&1 || { cat "$W/mkfs.log" >&2; die "mkfs.ext4 failed"; }
	mkdir "$W/fs"
	mount -o loop "$W/fs.img" "$W/fs" 2>"$W/mount.log" ||
		{ cat "$W/mount.log" >&2; die "cannot mount a loop device (--fs loop); try --fs host"; }
	mounted=$W/fs
	chmod 755 "$W/fs"
}

# fs_loop_umount: unmount what fs_loop_mount mounted (for cleanup: never
# fails); the image goes too unless KEEP=1.
fs_loop_umount() {
	[ -n "${mounted:-}" ] || return 0
	# mount -o loop detaches the loop device on umount
	umount "$mounted" 2>/dev/null || umount -l "$mounted" 2>/dev/null || true
	[ "${KEEP:-0}" = 1 ] || rm -f "$W/fs.img"
	mounted=""
}

# ratio A B: A/B as "1.23x", or "-" when either is not a number (a
# trailing '?' is ignored).
ratio() {
	"$PY" -c "import sys
try: print('%.2fx' % (float(sys.argv[1].rstrip('?')) / float(sys.argv[2].rstrip('?'))))
except (ValueError, ZeroDivisionError): print('-')" "$1" "$2"
}

# ---------------------------------------------------------------- Postfix
# A private instance: own main.cf/master.cf, queue and data directories
# under $PF, no chroot, smtpd on 127.0.0.1 only.

# pf_main_cf_common: the main.cf settings every benchmark's instance has;
# the benchmark appends its own (what to do with accepted mail).
pf_main_cf_common() {
	cat <<EOF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
myhostname = bench.localdomain
mydomain = localdomain
myorigin = \$myhostname
mydestination =
relay_domains =
local_recipient_maps =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
smtpd_recipient_restrictions = permit_mynetworks, reject
# No throttling of one client address, no reverse DNS look-up, and no
# in-flow delay (it waits for tokens from the queue manager).
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_peername_lookup = no
in_flow_delay = 0
default_process_limit = 150
biff = no
EOF
}

# pf_master_cf_common: the internal services of master.cf (no chroot);
# the benchmark appends its smtpd listeners (and qmgr, smtp if it
# delivers).
pf_master_cf_common() {
	cat <<EOF
# service type  private unpriv  chroot  wakeup  maxproc command
cleanup   unix  n       -       n       -       0       cleanup
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

# pf_start PORT: check and start the instance whose config is in $PF/conf,
# wait until its smtpd listens on 127.0.0.1:PORT; sets PMASTER.
pf_start() {
	mkdir -p "$PF/queue" "$PF/data"
	chown postfix "$PF/data"
	timeout 60 postfix -c "$PF/conf" check >"$W/postfix-check.log" 2>&1 ||
		{ cat "$W/postfix-check.log" "$PF/maillog" 2>/dev/null >&2; die "postfix check failed"; }
	pf_started=1
	timeout 60 postfix -c "$PF/conf" start >"$W/postfix-start.log" 2>&1 ||
		{ cat "$W/postfix-start.log" "$PF/maillog" 2>/dev/null >&2; die "postfix start failed"; }
	wait_port "$1" 30 || { cat "$PF/maillog" >&2; die "Postfix does not listen on 127.0.0.1:$1"; }
	PMASTER=$(tr -dc 0-9 <"$PF/queue/pid/master.pid")
}

# pf_stop: stop the instance (for cleanup: never fails).
pf_stop() {
	[ "${pf_started:-0}" = 1 ] || return 0
	local mpid=""
	[ -r "$PF/queue/pid/master.pid" ] && mpid=$(tr -dc 0-9 <"$PF/queue/pid/master.pid")
	timeout 30 postfix -c "$PF/conf" stop >/dev/null 2>&1 || true
	if [ -n "$mpid" ]; then
		for _ in $(seq 100); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.1; done
		# master stops its children; if it did not go, end it
		kill -9 "$mpid" 2>/dev/null || true
	fi
	pf_started=0
}

# pf_queued: the number of messages in the instance's queue.
pf_queued() {
	find "$PF/queue/incoming" "$PF/queue/active" "$PF/queue/deferred" \
		"$PF/queue/hold" "$PF/queue/maildrop" -type f | wc -l
}

# pf_log_summary: the most frequent warnings and errors of the maillog.
pf_log_summary() {
	local n
	n=$(grep -cE 'warning:|error:|fatal:|panic:' "$PF/maillog" 2>/dev/null || true)
	[ "${n:-0}" -gt 0 ] || return 0
	say "postfix logged $n warnings or errors; the most frequent:"
	grep -E 'warning:|error:|fatal:|panic:' "$PF/maillog" |
		sed -E 's/^.*\]: //; s/[0-9A-F]{10,}/ID/g' | sort | uniq -c | sort -rn | head -5 >&2
}

# ----------------------------------------------------------------- Herald
# herald_copy: run a copy of $HERALD, so that a rebuild during the run
# cannot swap the binary.
herald_copy() {
	cp "$HERALD" "$W/herald-bin"
	HERALD=$W/herald-bin
}

# h ARGS...: a herald command on $HD.
h() { timeout 60 "$HERALD" --data "$HD" "${hset[@]}" "$@"; }

# herald_has_setting NAME: whether this herald knows the setting NAME.
herald_has_setting() {
	h config dump 2>/dev/null | awk -v n="$1" '$1 == n { f = 1 } END { exit !f }'
}

# herald_setting NAME: its effective value.
herald_setting() { h config dump | awk -v n="$1" '$1 == n {print $3}'; }

# herald_setup: a fresh data directory $HD: account acme, sender domain
# example.com, 127.0.0.1 allowed to send without AUTH.
herald_setup() {
	{
		h init
		h account create acme
		h domain add --account acme example.com
		h account allow-ip acme 127.0.0.1
	} >>"$W/herald-setup.log" 2>&1 || { cat "$W/herald-setup.log" >&2; die "herald setup failed"; }
}

# herald_start LOG-SUFFIX [ARGS...]: herald serve on $HD, submission on
# 127.0.0.1:$HPORT (no other listener), log.level=warn, ARGS added;
# output in $W/herald<LOG-SUFFIX>.out and .err.  Sets HPID.  When the port
# was taken meanwhile (a free port is only free when looked at: another
# program's connection may get it as its local port), tries another one
# (HPORT changes), three times at most.
herald_start() {
	local sfx=$1 try
	shift
	for try in 1 2 3; do
		"$HERALD" --data "$HD" serve \
			--set smtpd.submission_listen=127.0.0.1:$HPORT \
			--set smtpd.submissions_listen= --set smtpd.mx_listen= \
			--set smtpd.max_connections_per_ip=5000 \
			--set smtpd.max_connections=10000 \
			--set log.level=warn "${hset[@]}" "$@" \
			>"$W/herald$sfx.out" 2>"$W/herald$sfx.err" &
		HPID=$!
		for _ in $(seq 300); do
			grep -q '^listening:' "$W/herald$sfx.out" 2>/dev/null && return 0
			kill -0 "$HPID" 2>/dev/null || break
			sleep 0.1
		done
		if ! kill -0 "$HPID" 2>/dev/null; then
			wait "$HPID" 2>/dev/null || true
			HPID=""
			if [ $try -lt 3 ] && grep -q 'Address already in use' "$W/herald$sfx.err"; then
				say "127.0.0.1:$HPORT was taken meanwhile; herald tries another port"
				HPORT=$(free_port "$HPORT")
				continue
			fi
			cat "$W/herald$sfx.out" "$W/herald$sfx.err" >&2
			die "herald serve exited"
		fi
		cat "$W/herald$sfx.err" >&2
		die "herald not listening after 30s"
	done
}

herald_stop() {
	stop_pid "$HPID" 10
	HPID=""
}

# herald_queued: the number of messages in Herald's spool.
herald_queued() { find "$HD/spool/queue" -maxdepth 1 -type f | wc -l; }

# herald_log_summary: the most frequent lines Herald logged ($W/herald*.err).
herald_log_summary() {
	local n
	n=$(cat "$W"/herald*.err 2>/dev/null | grep -c . || true)
	[ "${n:-0}" -gt 0 ] || return 0
	say "herald wrote $n log lines (level warn and above); the most frequent:"
	cat "$W"/herald*.err | sed -E 's/^[0-9TZ:.+-]+ //' | sort | uniq -c | sort -rn | head -5 >&2
}
