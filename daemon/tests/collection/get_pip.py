"""Stand-in for ansible-test's pip bootstrap script.

ansible-test sanity --venv bootstraps pip in each of its virtual environments
with get-pip.py from ci-files.testing.ansible.com, which this project's test
machines cannot reach (PyPI they can). ansible-test looks for the script in
~/.ansible/test/cache/get_pip_<version>.py before downloading it, and the
collection sanity test puts this file there: it installs the pip that comes
with Python (ensurepip), then asks that pip, from PyPI, for what get-pip.py
would install (pip==<version>), with get-pip.py's command line.
"""

import subprocess
import sys

# get-pip.py's own switches; this pip installs neither setuptools nor wheel
# unless they are asked for by name.
OWN = ('--no-setuptools', '--no-wheel')

args = [a for a in sys.argv[1:] if a not in OWN]
# In a child: ensurepip points PIP_CONFIG_FILE at /dev/null for the rest of
# its process, which would hide the machine's pip.conf (index, CA) from pip.
rc = subprocess.call([sys.executable, '-m', 'ensurepip', '--upgrade'])
if rc == 0:
    rc = subprocess.call([sys.executable, '-m', 'pip', 'install', '--upgrade', '--force-reinstall'] + args)
sys.exit(rc)
