#!/usr/bin/env bash
# A two-node Slurm cluster on this machine, in a directory, for tests: munged, slurmctld and one
# slurmd per node (albion-node1, albion-node2) started as root with their config, state, sockets,
# logs and ports there, so nothing of the machine's own Slurm (if any) is read or touched. Clients
# reach it through SLURM_CONF=DIR/slurm.conf.
#   slurm_test_cluster.sh start DIR   # prints SLURM_CONF=... once the node is idle
#   slurm_test_cluster.sh stop DIR
set -euo pipefail
action=${1:?start or stop}
dir=$(realpath -m "${2:?directory}")
case $dir in *[[:space:]]*) echo "slurm_test_cluster: slurm.conf cannot hold the path '$dir'" >&2; exit 1 ;; esac
export SLURM_CONF=$dir/slurm.conf
# The two nodes share one host: PMIx's shared-memory data store (gds ds21, the default of PMIx 4)
# then crashed a rank in MPI_Init now and then (a null dereference; openpmix issue 1114 and open-mpi
# issue 7335 show the same). Its hash store keeps each process's data to itself; the slurmds (their
# steps' PMIx servers) and the jobs (the test's environment) both use it.
export PMIX_MCA_gds=hash

stop() {
  # Jobs first: a test that failed half-way may leave ranks training.
  if [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
    scancel --user="$(id -un)" 2>/dev/null || true
    for _ in $(seq 50); do
      [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  local pid_files=("$dir"/slurmd-*.pid "$dir/slurmctld.pid" "$dir/munged.pid")
  for pid_file in "${pid_files[@]}"; do
    [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null || true
  done
  for _ in $(seq 50); do
    alive=0
    for pid_file in "${pid_files[@]}"; do
      [ -f "$pid_file" ] && kill -0 "$(cat "$pid_file")" 2>/dev/null && alive=1
    done
    [ $alive = 0 ] && break
    sleep 0.1
  done
  # Whatever the cluster started and is still running: a job's processes have this cluster's
  # SLURM_CONF in their environment; slurmstepd, which has none, works in its log directory.
  for proc in /proc/[0-9]*; do
    pid=${proc#/proc/}
    [ "$pid" = $$ ] && continue
    cwd=$(readlink "$proc/cwd" 2>/dev/null) || continue
    if [[ $cwd == "$dir"/* ]] || grep -qsxz "SLURM_CONF=$SLURM_CONF" "$proc/environ"; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
}

if [ "$action" = stop ]; then
  stop
  exit 0
fi

for program in munged slurmctld slurmd sbatch; do
  command -v $program >/dev/null || { echo "slurm_test_cluster: $program is not installed" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "slurm_test_cluster: the daemons run as root; run as root" >&2; exit 1; }
mkdir -p "$dir/state" "$dir/spool" "$dir/log" "$dir/munge" "$dir/tmp"
chmod 700 "$dir/munge"
head -c 1024 /dev/urandom > "$dir/munge/munge.key"
chmod 600 "$dir/munge/munge.key"
read -r controller_port node1_port node2_port < <(python3 -c '
import socket
sockets = [socket.socket() for _ in range(3)]
for s in sockets: s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))')

cat > "$SLURM_CONF" <<EOF
ClusterName=albiontest
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$controller_port
AuthType=auth/munge
# cred_expire: how long a requeued job is held back (Slurm's default, 120 s, would slow the tests).
AuthInfo=socket=$dir/munge/munge.socket,cred_expire=5
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerParameters=sched_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
# Clusters of tests running side by side must not share job ids: a step's PMIx files are named
# after its job id, in TmpFS. The nodes share a host, so each slurmd gets its own TmpFS (its own
# copy of this file, which differs there alone: hence NO_CONF_HASH).
FirstJobId=$((1000 + (RANDOM * 32768 + RANDOM) % 1000000))
TmpFS=$dir/tmp
DebugFlags=NO_CONF_HASH
# How long ranks have between SIGTERM and SIGKILL when a job is cancelled or pre-empted.
KillWait=30
NodeName=DEFAULT CPUs=$(( $(nproc) > 1 ? $(nproc) / 2 : 1 )) RealMemory=1000 State=UNKNOWN
NodeName=albion-node1 NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 Port=$node1_port
NodeName=albion-node2 NodeHostname=$(hostname -s) NodeAddr=127.0.0.1 Port=$node2_port
# Pre-emption as HPC centres run it: a job in partition urgent takes the nodes from jobs in test,
# which Slurm signals (SIGTERM, then SIGKILL after KillWait) and requeues.
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
PartitionName=test Nodes=albion-node[1-2] Default=YES MaxTime=INFINITE State=UP PriorityTier=1
PartitionName=urgent Nodes=albion-node[1-2] MaxTime=INFINITE State=UP PriorityTier=2
EOF

munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed"
slurmctld -f "$SLURM_CONF"
for node in albion-node1 albion-node2; do
  mkdir -p "$dir/spool/$node" "$dir/tmp/$node"
  sed "s|^TmpFS=.*|TmpFS=$dir/tmp/$node|" "$SLURM_CONF" > "$dir/slurm-$node.conf"
  slurmd -f "$dir/slurm-$node.conf" -N "$node"
done
for _ in $(seq 100); do
  if [ "$(sinfo -h -o %t 2>/dev/null)" = idle ] && [ "$(sinfo -h -o %D 2>/dev/null)" = 2 ]; then
    echo "SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 0.2
done
echo "slurm_test_cluster: the nodes did not become idle in 20 s; logs in $dir/log" >&2
tail -n 5 "$dir"/log/*.log >&2 || true
stop
exit 1
