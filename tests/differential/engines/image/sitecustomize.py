"""The KFP engine's components run as in pipegen's runtime image: without what the image lacks (PYTHONPATH).

KFP components run in the runtime image's `kfp` target (deploy/runtime.Dockerfile): `pipegen-ml[runtime,aws,sql]`
and kfp, so mlflow-skinny with no pandas, numpy nor pyspark (`.venv-runtime` holds the same set). The
components kfp.local starts here run in `.venv-kfp`, which has full mlflow, pandas, numpy and pyspark (for
other tests), and `import mlflow` imports each of them whenever it is installed (its dataset registry, its
schema types): about a third of each component's CPU, in each of the suite's ~80 KFP tasks. Python imports
this module at start-up (site) when it is on PYTHONPATH: the KFP engine module puts it there for its
components. It leaves PYTHONPATH as it found it for the processes a component starts (a `local` job is the
user's program, not the image's Python).
"""

import os
import sys

# Not in the runtime image (tests/differential/test_engines.py checks .venv-runtime): `import pandas` fails.
ABSENT = ("pandas", "numpy", "pyspark")
for _name in ABSENT:
    sys.modules.setdefault(_name, None)  # type: ignore[assignment]
_HERE = os.path.dirname(os.path.abspath(__file__))
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and os.path.abspath(p) != _HERE
)
