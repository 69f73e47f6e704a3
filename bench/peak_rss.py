"""Run a command; print its output and then the peak RSS of it and all its descendants.

python bench/peak_rss.py <command...>   ->  ...command output...  PEAK_RSS_MB <n>
"""

import resource
import subprocess
import sys

rc = subprocess.call(sys.argv[1:])
# ru_maxrss of RUSAGE_CHILDREN: the largest resident set among all waited-for descendants (KiB).
print(f"PEAK_RSS_MB {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f}", flush=True)
sys.exit(rc)
