from cxruntime.migrations import run_env
from cxruntime.orm import metadata

run_env(metadata)
