"""A one-host Slurm 22.05 cluster on 127.0.0.1 from Debian's packages, for
the slurm suite (tests/slurm/test_slurm.py) and its benchmark: munged,
MariaDB with slurmdbd (accounting, job scripts and environments stored),
slurmctld and two slurmd (`-N n1`, `-N n2`: Debian builds Slurm with
--enable-multiple-slurmd), cgroup v1 tasks (memory enforced, so a job can
be killed out of memory), and the plugstack line given. Everything lives in
one directory under /tmp (the daemons and the job users must reach it) and
goes with it; jobs run as the unprivileged user `sttest` (accounts training,
its default, and vision) or `sttest2` (account nlp), accounts enforced.
Needs root.

  python cluster.py start DIR PLUGSTACK_LINE    (writes DIR/cluster.json)
  python cluster.py stop DIR
"""

import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

USER = "sttest"
USER2 = "sttest2"  # another user, in another account
NODES = ("n1", "n2")
# The states of a job that has not ended.
LIVE = ("PENDING", "CONFIGURING", "RUNNING", "SUSPENDED")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, check, timeout=60.0, log=None):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.2)
    tail = Path(log).read_text(errors="replace")[-3000:] if log and Path(log).exists() else ""
    raise SystemExit(f"{what} did not come up in {timeout:.0f} s\n{tail}")


def ensure_user(name=USER):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
        return pwd.getpwnam(name)


class Cluster:
    """The running cluster described by DIR/cluster.json."""

    def __init__(self, d):
        self.dir = Path(d)
        self.info = json.loads((self.dir / "cluster.json").read_text())
        self.env = dict(os.environ, SLURM_CONF=self.info["slurm_conf"])

    def as_user(self, *cmd, user=USER, **kw):
        """A Slurm command as a job user, in the work directory."""
        full = ["runuser", "-u", user, "--", "env", "SLURM_CONF=" + self.info["slurm_conf"], *cmd]
        return subprocess.run(full, cwd=self.info["work"], capture_output=True, text=True, timeout=60, **kw)

    def sbatch(self, script, *args, user=USER):
        """Submits `script` (text) with `args` as `user`; the job id. Its
        output goes to WORK/JOB.out."""
        path = Path(self.info["work"]) / f"job-{secrets.token_hex(4)}.sh"
        path.write_text(script)
        os.chmod(path, 0o755)
        r = self.as_user("sbatch", "--parsable", "-o", self.info["work"] + "/%j.out", *args, str(path), user=user)
        if r.returncode:
            raise AssertionError(f"sbatch {args}: {r.stderr}")
        return int(r.stdout.strip().split(";")[0])

    def state(self, job):
        r = subprocess.run(["scontrol", "-o", "show", "job", str(job)], env=self.env, capture_output=True,
                           text=True, timeout=30)
        for part in r.stdout.split():
            if part.startswith("JobState="):
                return part.split("=", 1)[1]
        return "GONE"

    def until(self, job, timeout, done):
        """Polls `job`'s state until `done(state)`: that state."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            s = self.state(job)
            if done(s):
                return s
            time.sleep(0.02)
        raise AssertionError(f"job {job} still {self.state(job)} after {timeout:.0f} s")

    def ended(self, job, timeout=240.0):
        """The monotonic time `job` is first seen ending (no longer pending
        or running), without waiting for its epilogs."""
        self.until(job, timeout, lambda s: s not in LIVE)
        return time.monotonic()

    def wait(self, job, timeout=120.0, states=("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT",
                                                 "OUT_OF_MEMORY", "NODE_FAIL")):
        """Waits until `job` is in one of `states` (its epilogs done): the state."""
        return self.until(job, timeout, lambda s: s in states)

    def output(self, job):
        p = Path(self.info["work"]) / f"{job}.out"
        return p.read_text(errors="replace") if p.exists() else ""

    def slurmd(self, node):
        return subprocess.Popen(["slurmd", "-N", node, "-f", self.info["slurm_conf"]], env=self.env)

    def restart_slurmd(self, node):
        """Kills node's slurmd (SIGKILL: its jobs' slurmstepd live on) and
        starts it again."""
        pid = int(Path(self.info["dir"], f"slurmd.{node}.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        subprocess.run(["slurmd", "-N", node, "-f", self.info["slurm_conf"]], env=self.env, check=True)

    def kill_batch(self, job, timeout=10.0):
        """Sends SIGKILL to the job's batch script (what its slurmstepd
        started: the shell, or a program it exec'd) once it runs."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            step = subprocess.run(["pgrep", "-f", rf"^slurmstepd: \[{job}\.batch\]"],
                                  capture_output=True, text=True).stdout.split()
            if step and subprocess.run(["pkill", "-KILL", "-u", USER, "-P", step[0]]).returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"job {job}: no batch script to kill")


def start(d, plugstack_line):
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o755)
    user = ensure_user()
    ensure_user(USER2)
    for sub in ("state", "log", "munge", "db", "spool/n1", "spool/n2"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    work = d / "work"
    work.mkdir(exist_ok=True)
    os.chown(work, user.pw_uid, user.pw_gid)
    os.chmod(work, 0o1777)  # both users' jobs write their output there
    ports = {k: free_port() for k in ("ctld", "slurmd", "n1", "n2", "dbd", "mysql")}
    munge = d / "munge"
    (munge / "munge.key").write_bytes(secrets.token_bytes(1024))
    os.chmod(munge / "munge.key", 0o400)
    subprocess.run(["munged", "--force", f"--socket={munge}/sock", f"--key-file={munge}/munge.key",
                    f"--log-file={munge}/log", f"--pid-file={munge}/pid", f"--seed-file={munge}/seed"],
                   check=True)
    wait_for("munged", lambda: (munge / "sock").exists(), log=munge / "log")

    # MariaDB for slurmdbd, on 127.0.0.1 only.
    db, dbpass = d / "db", secrets.token_hex(12)
    subprocess.run(["mariadb-install-db", "--user=root", f"--datadir={db}/data",
                    "--auth-root-authentication-method=socket", "--skip-test-db"],
                   check=True, capture_output=True)
    subprocess.Popen(["mariadbd", "--user=root", f"--datadir={db}/data", f"--socket={db}/sock",
                      "--bind-address=127.0.0.1", f"--port={ports['mysql']}", f"--pid-file={db}/pid",
                      f"--log-error={d}/log/mariadb.log", "--innodb-buffer-pool-size=32M"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for("MariaDB", lambda: (db / "sock").exists(), log=d / "log/mariadb.log")
    sql = (f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{dbpass}';"
           "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';")
    wait_for("MariaDB's socket", lambda: subprocess.run(
        ["mariadb", f"--socket={db}/sock", "-e", sql], capture_output=True).returncode == 0)

    auth = f"AuthType=auth/munge\nAuthInfo=socket={munge}/sock\n"
    dbd = d / "slurmdbd.conf"
    dbd.write_text(auth + f"""DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={ports['dbd']}
SlurmUser=root
LogFile={d}/log/slurmdbd.log
PidFile={d}/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={ports['mysql']}
StorageUser=slurm
StoragePass={dbpass}
StorageLoc=slurm_acct_db
""")
    os.chmod(dbd, 0o600)
    conf = d / "slurm.conf"
    nodes = "\n".join(
        f"NodeName={n} NodeHostname=localhost NodeAddr=127.0.0.1 Port={ports[n]} CPUs=8 RealMemory=2000"
        for n in NODES)
    conf.write_text(auth + f"""ClusterName=st
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ports['ctld']}
SlurmdPort={ports['slurmd']}
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool/%n
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.%n.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.%n.log
SlurmdParameters=config_overrides
ProctrackType=proctrack/cgroup
TaskPlugin=task/cgroup
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerNode=400
MpiDefault=none
PlugStackConfig={d}/plugstack.conf
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort={ports['dbd']}
AccountingStoragePass={munge}/sock
AccountingStoreFlags=job_script,job_env
AccountingStorageEnforce=associations
JobAcctGatherType=jobacct_gather/linux
KillWait=5
MinJobAge=600
ReturnToService=2
{nodes}
PartitionName=main Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
""")
    (d / "cgroup.conf").write_text("CgroupPlugin=cgroup/v1\nCgroupMountpoint=/sys/fs/cgroup\n"
                                   "ConstrainRAMSpace=yes\nConstrainSwapSpace=yes\nAllowedSwapSpace=0\n")
    (d / "plugstack.conf").write_text(plugstack_line + "\n")
    env = dict(os.environ, SLURM_CONF=str(conf))
    subprocess.run(["slurmdbd"], env=env, check=True)  # beside slurm.conf
    wait_for("slurmdbd", lambda: subprocess.run(["sacctmgr", "-n", "list", "cluster"], env=env,
                                                capture_output=True).returncode == 0,
             log=d / "log/slurmdbd.log")
    subprocess.run(["sacctmgr", "-i", "add", "cluster", "st"], env=env, capture_output=True)
    subprocess.run(["sacctmgr", "-i", "add", "account", "training,vision,nlp"], env=env, capture_output=True)
    subprocess.run(["sacctmgr", "-i", "add", "user", USER, "account=training,vision", "defaultaccount=training"],
                   env=env, capture_output=True)
    subprocess.run(["sacctmgr", "-i", "add", "user", USER2, "account=nlp"], env=env, capture_output=True)
    subprocess.run(["slurmctld", "-c", "-f", str(conf)], env=env, check=True)
    for n in NODES:
        subprocess.run(["slurmd", "-N", n, "-f", str(conf)], env=env, check=True)

    def idle():
        r = subprocess.run(["sinfo", "-h", "-o", "%t %D"], env=env, capture_output=True, text=True)
        return r.stdout.split() == ["idle", "2"]

    wait_for("both slurmd", idle, log=d / "log/slurmctld.log")
    info = {"dir": str(d), "slurm_conf": str(conf), "work": str(work), "state": str(d / "state"),
            "logs": str(d / "log"), "mysql_socket": str(db / "sock"), "user": USER, "uid": user.pw_uid}
    (d / "cluster.json").write_text(json.dumps(info))


def stop(d):
    d = Path(d)
    for pidfile in ("slurmctld.pid", "slurmd.n1.pid", "slurmd.n2.pid", "slurmdbd.pid", "db/pid",
                    "munge/pid"):
        try:
            os.kill(int((d / pidfile).read_text()), signal.SIGTERM)
        except (OSError, ValueError):
            pass
    time.sleep(1)
    # What is left of jobs: every process in the nodes' cgroups (slurmstepd
    # renames itself, so no command line names the cluster), the job user's,
    # and what a SIGKILLed `st-secrets run` of theirs left in /dev/shm.
    for procs in Path("/sys/fs/cgroup").glob("*/slurm_n[12]/**/cgroup.procs"):
        for pid in procs.read_text().split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass
    for user in (USER, USER2):
        subprocess.run(["pkill", "-KILL", "-u", user], capture_output=True)
    time.sleep(0.5)
    uids = {pwd.getpwnam(user).pw_uid for user in (USER, USER2)}
    for left in Path("/dev/shm").glob("st-secrets-run.*"):
        if left.lstat().st_uid in uids:
            shutil.rmtree(left, ignore_errors=True)
    for root in Path("/sys/fs/cgroup").glob("*/slurm_n[12]"):
        for sub in sorted(root.rglob("*"), key=lambda p: -len(p.parts)):
            if sub.is_dir():
                try:
                    sub.rmdir()
                except OSError:
                    pass
        try:
            root.rmdir()
        except OSError:
            pass
    # Slurm's logs kept for a failure's reading (the suite checks they hold no value).
    if os.environ.get("ST_SLURM_LOGS"):
        shutil.rmtree(os.environ["ST_SLURM_LOGS"], ignore_errors=True)
        shutil.copytree(d / "log", os.environ["ST_SLURM_LOGS"], dirs_exist_ok=True)
    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1] == "start":
        start(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "stop":
        stop(sys.argv[2])
    else:
        raise SystemExit(__doc__)
