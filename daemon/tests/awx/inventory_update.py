"""An inventory update as AWX runs one, without AWX: ansible-runner over a
private data directory laid out as AWX's RunInventoryUpdate lays it out
(awx/main/tasks/jobs.py: build_private_data_dir, build_args, build_env,
write_args_file), run as a non-root user with an unwritable HOME.

Usage: inventory_update.py SOURCE
  SOURCE  the inventory source file (copied into project/, as a "Sourced
          from a Project" source sits in the project checkout)
Environment: CRATON_URL, CRATON_TOKEN (what the custom credential type of
docs/awx.md injects), AWX_TEST_HOME (an existing directory the user
cannot write), AWX_TEST_USER (default nobody).
Exit: 0 with artifacts/<id>/output.json (what AWX imports) on stdout; 3
when the update failed, with the job's stdout on stderr.
"""

import json
import os
import pwd
import shutil
import sys
import tempfile

import ansible_runner

UPDATE_ID = 42
SOURCE_ID = 7


def main():
    source = sys.argv[1]
    user = pwd.getpwnam(os.environ.get("AWX_TEST_USER", "nobody"))
    # A private data dir only the job's user can enter, as AWX makes it (0700).
    pdd = tempfile.mkdtemp(prefix="awx_%d_" % UPDATE_ID)
    try:
        return update(source, user, pdd)
    finally:
        shutil.rmtree(pdd, ignore_errors=True)


def update(source, user, pdd):
    for sub in ("project", "inventory", "env"):
        os.mkdir(os.path.join(pdd, sub))
    project_source = os.path.join(pdd, "project", os.path.basename(source))
    shutil.copy(source, project_source)
    os.chmod(project_source, 0o755)
    for root, dirs, files in os.walk(pdd):
        for name in [root] + [os.path.join(root, f) for f in files]:
            os.chown(name, user.pw_uid, user.pw_gid)
    os.chmod(pdd, 0o700)

    # build_args: the command line, written to the `args` file that makes
    # ansible-runner run it as it is (RAW mode) instead of a playbook.
    artifact = os.path.join(pdd, "artifacts", str(UPDATE_ID), "output.json")
    args = [
        "ansible-inventory", "--list", "--export",
        "-i", project_source,
        "--output", artifact,
        "--playbook-dir", os.path.dirname(project_source),
    ]
    with open(os.path.join(pdd, "args"), "w") as f:
        f.write(" ".join(args))
    os.chown(os.path.join(pdd, "args"), user.pw_uid, user.pw_gid)

    # build_env: STANDARD_INVENTORY_UPDATE_ENV, the source ids, the
    # collections path, and the credential's injected variables. HOME is
    # one the job's user cannot write (an execution environment's image
    # is read-only for it).
    home = os.environ["AWX_TEST_HOME"]
    env = {
        "ANSIBLE_INVENTORY_UNPARSED_FAILED": "True",
        "ANSIBLE_INVENTORY_EXPORT": "True",
        "ANSIBLE_VERBOSE_TO_STDERR": "True",
        "ANSIBLE_HOST_PATTERN_MISMATCH": "error",
        "INVENTORY_SOURCE_ID": str(SOURCE_ID),
        "INVENTORY_UPDATE_ID": str(UPDATE_ID),
        "ANSIBLE_COLLECTIONS_PATHS": "~/.ansible/collections:/usr/share/ansible/collections:"
        "/usr/share/automation-controller/collections",
        "AWX_PRIVATE_DATA_DIR": pdd,
        "HOME": home,
        # ansible-core itself (not craton-inventory) creates its local temp
        # at start and fails when it cannot: an EE gives it a writable
        # runner directory, so does this.
        "ANSIBLE_LOCAL_TEMP": os.path.join(pdd, "tmp"),
        "PATH": os.environ["PATH"],
        "CRATON_URL": os.environ["CRATON_URL"],
        "CRATON_TOKEN": os.environ["CRATON_TOKEN"],
        "CRATON_CONFIG": "/dev/null",
    }

    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)
    assert os.getuid() != 0 and os.geteuid() != 0, "still root"
    assert not os.access(home, os.W_OK), "HOME %s is writable" % home
    assert os.access(sys.executable, os.X_OK), (
        "%s cannot run %s: make the venv from a python3 every user can run" % (user.pw_name, sys.executable))
    os.environ["HOME"] = home

    r = ansible_runner.run(
        private_data_dir=pdd,
        ident=str(UPDATE_ID),
        envvars=env,
        settings={"job_timeout": 120, "suppress_ansible_output": True, "suppress_output_file": False},
        quiet=True,
    )
    if r.status != "successful" or r.rc != 0:
        sys.stderr.write("inventory update %s (rc %s):\n%s\n" % (r.status, r.rc, r.stdout.read()))
        return 3
    st = os.stat(artifact)
    assert st.st_uid == user.pw_uid, "output.json was written by uid %d" % st.st_uid
    with open(artifact) as f:
        json.dump(json.load(f), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
